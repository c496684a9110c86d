package manager

import (
	"encoding/binary"
	"unicode/utf8"
)

// Fast paths of the codec for the scalar types most keys and values have.
// They write and accept exactly the bytes the general codec (fxamacker/cbor
// with the modes in wire.go) would, so which path ran is invisible: CBOR's
// deterministic encoding of a string or an integer is its shortest head
// and, for a string, its bytes. Anything else takes the general path.

// appendItem appends v to w as one CBOR item.
func appendItem[T any](w *frameWriter, v T) error {
	switch x := any(v).(type) {
	case string:
		w.text(x)
	case int:
		w.int(int64(x))
	case int64:
		w.int(x)
	case int32:
		w.int(int64(x))
	case uint64:
		w.uint(x)
	case uint32:
		w.uint(uint64(x))
	case uint:
		w.uint(uint64(x))
	case bool:
		w.bool(x)
	default:
		return w.value(v)
	}
	return nil
}

// decodeItem decodes the CBOR item b into *v.
func decodeItem[T any](b []byte, v *T) error {
	switch p := any(v).(type) {
	case *string:
		if s, ok := fastText(b); ok {
			*p = s
			return nil
		}
	case *int:
		if n, ok := fastInt(b); ok {
			*p = int(n)
			return nil
		}
	case *int64:
		if n, ok := fastInt(b); ok {
			*p = n
			return nil
		}
	}
	return decMode.Unmarshal(b, v)
}

// head parses the head of a CBOR item whose argument is given in the head
// (no indefinite length), returning its major type, argument and length.
func head(b []byte) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	major, info := b[0]>>5, b[0]&31
	switch {
	case info < 24:
		return major, uint64(info), 1, true
	case info == 24 && len(b) >= 2:
		return major, uint64(b[1]), 2, true
	case info == 25 && len(b) >= 3:
		return major, uint64(binary.BigEndian.Uint16(b[1:])), 3, true
	case info == 26 && len(b) >= 5:
		return major, uint64(binary.BigEndian.Uint32(b[1:])), 5, true
	case info == 27 && len(b) >= 9:
		return major, binary.BigEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, 0, false
}

// fastText decodes a definite-length text string that is the whole item.
func fastText(b []byte) (string, bool) {
	major, n, h, ok := head(b)
	if !ok || major != 3 || uint64(len(b)-h) != n || !utf8.Valid(b[h:]) {
		return "", false
	}
	return string(b[h:]), true
}

// fastInt decodes an integer within int64 that is the whole item.
func fastInt(b []byte) (int64, bool) {
	major, n, h, ok := head(b)
	if !ok || h != len(b) || n > 1<<63-1 {
		return 0, false
	}
	switch major {
	case 0:
		return int64(n), true
	case 1:
		return -1 - int64(n), true
	}
	return 0, false
}

// put2 appends a and b as two items.
func put2[A, B any](w *frameWriter, a A, b B) error {
	if err := appendItem(w, a); err != nil {
		return err
	}
	return appendItem(w, b)
}

// put3 appends a, b and c as three items.
func put3[A, B, C any](w *frameWriter, a A, b B, c C) error {
	if err := put2(w, a, b); err != nil {
		return err
	}
	return appendItem(w, c)
}
