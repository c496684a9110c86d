package manager

import "math/bits"

// addNumbers returns the CBOR encoding of old + delta, for the atomic Add
// operations. Both must be CBOR numbers; a missing or null old value counts
// as zero. Integers add exactly and fail when the sum leaves CBOR's integer range
// [-2^64, 2^64-1] (a proxy decoding it into a narrower Go type reports
// ErrType);
// if either is a float the sum is a float.
func addNumbers(old, delta []byte) ([]byte, error) {
	d, err := decodeNumber(delta)
	if err != nil {
		return nil, failf(statusType, "delta is not a number")
	}
	if old == nil || (len(old) == 1 && old[0] == 0xf6) {
		return delta, nil
	}
	o, err := decodeNumber(old)
	if err != nil {
		return nil, failf(statusType, "stored value is not a number")
	}
	if o.isFloat || d.isFloat {
		return encMode.Marshal(o.float() + d.float())
	}
	sum, ok := addInts(o, d)
	if !ok {
		return nil, failf(statusType, "integer overflow")
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
