package funcs

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/shmkit/shmkit/internal/codec"
	"github.com/shmkit/shmkit/internal/layout"
)

// The first byte of an encoded slice says how the rest is encoded.
const (
	formatCBOR = 'C' // Wire's encoding of the []T
	formatRaw  = 'R' // the elements' memory, for a fixed-size T without pointers
)

// rawSize returns the size of T if a []T is copied as its memory between
// processes of one program (T is fixed-size, not empty, and holds no
// pointer, slice, map, string, interface, channel or function), and 0 if
// it is encoded with Wire.
func rawSize[T any]() int {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface || t.Size() == 0 || layout.Check(t) != nil {
		return 0
	}
	return int(t.Size())
}

// EncodeSlice returns the encoding of xs that DecodeSlice reads: the
// elements' memory for a fixed-size T without pointers (the same program
// runs on both sides, so the layout is the same), Wire's CBOR otherwise.
func EncodeSlice[T any](xs []T) ([]byte, error) {
	if size := rawSize[T](); size > 0 {
		if len(xs) > (MaxValue-1)/size {
			return nil, fmt.Errorf("%w: %d elements of %d bytes are more than %d bytes", codec.ErrTooLarge, len(xs), size, MaxValue)
		}
		b := make([]byte, 1, 1+len(xs)*size)
		b[0] = formatRaw
		// A T holds no pointer (rawSize), so its memory is plain data.
		return append(b, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(xs))), len(xs)*size)...), nil
	}
	b, err := Wire.Marshal(xs)
	if err != nil {
		return nil, err
	}
	return append([]byte{formatCBOR}, b...), nil
}

// ErrFormat reports an encoded slice that EncodeSlice did not make for
// this type.
var ErrFormat = errors.New("funcs: encoded slice of another format")

// DecodeSlice decodes what EncodeSlice encoded.
func DecodeSlice[T any](b []byte) ([]T, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrFormat)
	}
	size := rawSize[T]()
	switch {
	case b[0] == formatRaw && size > 0:
		b = b[1:]
		if len(b)%size != 0 {
			return nil, fmt.Errorf("%w: %d bytes of %d-byte elements", ErrFormat, len(b), size)
		}
		xs := make([]T, len(b)/size)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(xs))), len(b)), b)
		return xs, nil
	case b[0] == formatCBOR && size == 0:
		var xs []T
		if err := Wire.Unmarshal(b[1:], &xs); err != nil {
			return nil, err
		}
		return xs, nil
	}
	return nil, fmt.Errorf("%w: format %q for %s", ErrFormat, b[0], reflect.TypeFor[T]())
}
