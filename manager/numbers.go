package manager

import (
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"strconv"
)

// A numType is the Go number type an Add's result must fit: the proxy's
// type, sent as the Add's optional last argument (docs/protocol.md, 8.2).
// A sum that the type cannot hold is refused before anything is stored,
// so an Add that reports ErrType has had no effect.
type numType uint8

const (
	numAny numType = iota // no type sent: any CBOR integer or a float64
	numInt8
	numInt16
	numInt32
	numInt64
	numUint8
	numUint16
	numUint32
	numUint64
	numFloat32
	numTypes // the first code that is not a type
)

var numTypeNames = [numTypes]string{"", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32"}

func (t numType) String() string { return numTypeNames[t] }

// intBits returns the width of an integer type and whether it is signed.
func (t numType) intBits() (n int, signed bool) {
	switch t {
	case numInt8, numInt16, numInt32, numInt64:
		return 8 << (t - numInt8), true
	case numUint8, numUint16, numUint32, numUint64:
		return 8 << (t - numUint8), false
	}
	return 0, false
}

// holds reports whether the integer x is in t's range, t being an integer
// type.
func (t numType) holds(x number) bool {
	n, signed := t.intBits()
	if signed {
		// -2^(n-1) <= x <= 2^(n-1)-1; a negative x is -1-x.n.
		return x.n <= 1<<(n-1)-1
	}
	return !x.neg && (n == 64 || x.n <= 1<<n-1)
}

// numTypeOf returns the numType of T, found by kind so that named types
// count: a fixed-size integer type or float32. Sums for float64 and for
// types that are not numbers (interfaces, *big.Int) are not narrowed:
// numAny.
func numTypeOf[T any]() numType {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Int8:
		return numInt8
	case reflect.Int16:
		return numInt16
	case reflect.Int32:
		return numInt32
	case reflect.Int64:
		return numInt64
	case reflect.Int:
		if strconv.IntSize == 32 {
			return numInt32
		}
		return numInt64
	case reflect.Uint8:
		return numUint8
	case reflect.Uint16:
		return numUint16
	case reflect.Uint32:
		return numUint32
	case reflect.Uint64:
		return numUint64
	case reflect.Uint, reflect.Uintptr:
		if strconv.IntSize == 32 {
			return numUint32
		}
		return numUint64
	case reflect.Float32:
		return numFloat32
	}
	return numAny
}

// addArgs returns the builder of an Add request for a proxy of type V:
// args appends the operands, and V's number type follows, unless it is
// numAny.
func addArgs[V any](args func(*frameWriter) error) func(*frameWriter) error {
	return func(w *frameWriter) error {
		if err := args(w); err != nil {
			return err
		}
		if t := numTypeOf[V](); t != numAny {
			w.uint(uint64(t))
		}
		return nil
	}
}

// addNumbers returns the CBOR encoding of old + delta, for the atomic Add
// operations. Both must be CBOR numbers; a missing or null old value counts
// as zero. Without a type (numAny), integers add exactly and fail when the
// sum leaves CBOR's integer range [-2^64, 2^64-1], and if either is a
// float the sum is a float64. With a type, the sum must be a number of
// that type: an integer in its range, or for float32 the float64 sum
// rounded to float32, which must not overflow to an infinity that neither
// operand is. Every failure is a statusType error, and the caller stores
// nothing then.
func addNumbers(old, delta []byte, t numType) ([]byte, error) {
	d, err := decodeNumber(delta)
	if err != nil {
		return nil, failf(statusType, "delta is not a number")
	}
	missing := old == nil || (len(old) == 1 && old[0] == 0xf6)
	if missing && t == numAny {
		return delta, nil
	}
	o := number{} // a missing value: an integer zero
	if !missing {
		if o, err = decodeNumber(old); err != nil {
			return nil, failf(statusType, "stored value is not a number")
		}
	}
	switch {
	case t == numFloat32:
		sum := d.float()
		if !missing {
			sum += o.float()
		}
		f := float32(sum)
		if math.IsInf(float64(f), 0) && !math.IsInf(o.float(), 0) && !math.IsInf(d.float(), 0) {
			return nil, failf(statusType, fmt.Sprintf("sum %g overflows float32", sum))
		}
		return encMode.Marshal(f)
	case o.isFloat || d.isFloat:
		if t != numAny {
			return nil, failf(statusType, fmt.Sprintf("a float does not add into %s", t))
		}
		return encMode.Marshal(o.float() + d.float())
	}
	sum := d
	if !missing {
		var ok bool
		if sum, ok = addInts(o, d); !ok {
			return nil, failf(statusType, "integer overflow")
		}
	}
	if t != numAny && !t.holds(sum) {
		return nil, failf(statusType, fmt.Sprintf("sum %v overflows %s", sum, t))
	}
	return appendInt(nil, sum), nil
}

// number is a decoded CBOR number: a float, or an integer held as a sign
// and a magnitude (CBOR's own representation: -1-n for negative n).
type number struct {
	isFloat bool
	f       float64
	neg     bool
	n       uint64 // the CBOR argument: the value, or -1-value when neg
}

func (x number) float() float64 {
	switch {
	case x.isFloat:
		return x.f
	case x.neg:
		return -1 - float64(x.n)
	}
	return float64(x.n)
}

// String formats x in decimal.
func (x number) String() string {
	switch {
	case x.isFloat:
		return strconv.FormatFloat(x.f, 'g', -1, 64)
	case !x.neg:
		return strconv.FormatUint(x.n, 10)
	case x.n == math.MaxUint64:
		return "-18446744073709551616"
	}
	return "-" + strconv.FormatUint(x.n+1, 10)
}
func decodeNumber(b []byte) (number, error) {
	if len(b) > 0 && b[0]>>5 <= 1 {
		var v any
		if err := decMode.Unmarshal(b, &v); err != nil {
			return number{}, err
		}
		switch v := v.(type) {
		case uint64:
			return number{n: v}, nil
		case int64:
			return number{neg: true, n: uint64(-1 - v)}, nil
		}
		// Integers beyond int64 decode as *big.Int or fail; read the head.
		return number{neg: b[0]>>5 == 1, n: cborArg(b)}, nil
	}
	var f float64
	if len(b) == 0 || b[0] < 0xf9 || b[0] > 0xfb { // half, single or double float
		return number{}, errNotNumber
	}
	if err := decMode.Unmarshal(b, &f); err != nil {
		return number{}, err
	}
	return number{isFloat: true, f: f}, nil
}

var errNotNumber = failf(statusType, "not a number")

// cborArg returns the argument of a well-formed integer item's head.
func cborArg(b []byte) uint64 {
	switch info := b[0] & 31; {
	case info < 24:
		return uint64(info)
	case info == 24:
		return uint64(b[1])
	case info == 25:
		return uint64(b[1])<<8 | uint64(b[2])
	case info == 26:
		return uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
	}
	var v uint64
	for _, c := range b[1:9] {
		v = v<<8 | uint64(c)
	}
	return v
}

// addInts adds two CBOR integers, each in [-2^64, 2^64-1], reporting
// whether the sum fits in that range.
func addInts(a, b number) (number, bool) {
	switch {
	case !a.neg && !b.neg:
		s, carry := bits.Add64(a.n, b.n, 0)
		return number{n: s}, carry == 0
	case a.neg && b.neg:
		// (-1-x) + (-1-y) = -1-(x+y+1)
		s, carry := bits.Add64(a.n, b.n, 1)
		return number{neg: true, n: s}, carry == 0
	case a.neg:
		a, b = b, a
	}
	// a >= 0, b = -1-y: a - 1 - y
	if a.n > b.n {
		return number{n: a.n - b.n - 1}, true
	}
	return number{neg: true, n: b.n - a.n}, true
}

func appendInt(b []byte, x number) []byte {
	if x.neg {
		return appendCBORHead(b, 1, x.n)
	}
	return appendCBORHead(b, 0, x.n)
}
