package manager

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// The forms of keys and values in Redis (docs/redis.md, "Values"): an
// integer as its decimal digits, a float as the shortest decimal that
// reads back as the same float64, a text or byte string as its bytes, and
// anything else as its CBOR encoding behind the CBOR self-describe tag
// (55799, the bytes D9 D9 F7), which cannot begin a UTF-8 text. So
// redis-cli and programs in other languages see numbers and strings as
// themselves, and HINCRBY and INCRBYFLOAT work on what a proxy stored.

// cborMagic prefixes a CBOR-encoded value stored in Redis.
const cborMagic = "\xd9\xd9\xf7"

// toRedis returns the Redis form of the CBOR item b (checked well-formed
// by the caller).
func toRedis(b []byte) string {
	major, arg, n, ok := head(b)
	if ok && n == len(b) || ok && (major == 2 || major == 3) && uint64(len(b)-n) == arg {
		switch major {
		case 0:
			return strconv.FormatUint(arg, 10)
		case 1:
			if arg <= math.MaxInt64 {
				return strconv.FormatInt(-1-int64(arg), 10)
			}
		case 2, 3:
			// Bytes that would read back as CBOR (not valid UTF-8, so
			// only a byte string's or a Go string's) stay CBOR.
			if !bytes.HasPrefix(b[n:], []byte(cborMagic)) {
				return string(b[n:])
			}
		case 7:
			if f, ok := cborFloat(b); ok {
				return strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
	}
	return cborMagic + string(b)
}

// cborFloat decodes a CBOR float item of any width.
func cborFloat(b []byte) (float64, bool) {
	switch {
	case len(b) == 3 && b[0] == 0xf9:
		var f float64
		if err := decMode.Unmarshal(b, &f); err != nil {
			return 0, false
		}
		return f, true
	case len(b) == 5 && b[0] == 0xfa:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b[1:]))), true
	case len(b) == 9 && b[0] == 0xfb:
		return math.Float64frombits(binary.BigEndian.Uint64(b[1:])), true
	}
	return 0, false
}

// fromRedis decodes s, a value in its Redis form, into *v, by v's type: a
// CBOR-encoded value is decoded as CBOR; other bytes are parsed as the
// number a number type asks for, or taken as they are by a string or byte
// slice. Into an empty interface, an integer's digits give an int64, a
// decimal with a point or an exponent a float64, and other bytes a
// string.
func fromRedis(s []byte, v any) error {
	if bytes.HasPrefix(s, []byte(cborMagic)) {
		return decMode.Unmarshal(s[len(cborMagic):], v)
	}
	switch p := v.(type) {
	case *string:
		*p = string(s)
		return nil
	case *[]byte:
		*p = bytes.Clone(s)
		return nil
	case *int:
		n, err := strconv.ParseInt(string(s), 10, strconv.IntSize)
		*p = int(n)
		return parseErr(s, "int", err)
	case *int64:
		n, err := strconv.ParseInt(string(s), 10, 64)
		*p = n
		return parseErr(s, "int64", err)
	case *float64:
		f, err := strconv.ParseFloat(string(s), 64)
		*p = f
		return parseErr(s, "float64", err)
	case *any:
		*p = guessNative(s)
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("cannot decode into %T", v)
	}
	e := rv.Elem()
	text := string(s)
	switch e.Kind() {
	case reflect.String:
		e.SetString(text)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(text, 10, e.Type().Bits())
		if err != nil {
			return nativeErr(s, e.Type().String(), err)
		}
		e.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(text, 10, e.Type().Bits())
		if err != nil {
			return nativeErr(s, e.Type().String(), err)
		}
		e.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(text, e.Type().Bits())
		if err != nil {
			return nativeErr(s, e.Type().String(), err)
		}
		e.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nativeErr(s, "bool", err)
		}
		e.SetBool(b)
	case reflect.Slice:
		if e.Type().Elem().Kind() != reflect.Uint8 {
			return nativeErr(s, e.Type().String(), nil)
		}
		e.SetBytes(bytes.Clone(s))
	case reflect.Interface:
		if e.NumMethod() != 0 {
			return nativeErr(s, e.Type().String(), nil)
		}
		e.Set(reflect.ValueOf(guessNative(s)))
	default:
		return nativeErr(s, e.Type().String(), nil)
	}
	return nil
}

// guessNative reads bytes stored without a type: see fromRedis.
func guessNative(s []byte) any {
	text := string(s)
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n
	}
	if len(s) > 0 && len(bytes.Trim(s, "0123456789+-.eE")) == 0 && bytes.ContainsAny(s, "0123456789") {
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f
		}
	}
	return text
}

// parseErr is nativeErr for a parse that may have succeeded.
func parseErr(s []byte, typ string, err error) error {
	if err == nil {
		return nil
	}
	return nativeErr(s, typ, err)
}

func nativeErr(s []byte, typ string, err error) error {
	if err == nil {
		return fmt.Errorf("stored value %.40q is not CBOR and cannot be read as a %s", s, typ)
	}
	return fmt.Errorf("stored value %.40q is not CBOR and cannot be read as a %s: %w", s, typ, err)
}

// nativeItem returns the Redis bytes that item b carries, when the item
// (of a Redis engine's results) is one: a CBOR byte string. Other items of
// such results are CBOR (a null for a value never stored).
func nativeItem(b []byte) ([]byte, bool) {
	major, arg, n, ok := head(b)
	if !ok || major != 2 || uint64(len(b)-n) != arg {
		return nil, false
	}
	return b[n:], true
}

// raw appends the Redis bytes s as an item of a Redis engine's results.
func (w *frameWriter) raw(s string) {
	at := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	w.buf = appendCBORHead(w.buf, 2, uint64(len(s)))
	w.buf = append(w.buf, s...)
	binary.BigEndian.PutUint32(w.buf[at:], uint32(len(w.buf)-at-itemLenSize))
}
