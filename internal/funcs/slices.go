package funcs

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
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
func EncodeSlice[T any](xs []T) ([]byte, error) { return AppendSlice(nil, xs) }

// AppendSlice appends the encoding of xs that EncodeSlice returns to dst
// and returns the extended slice; on an error, dst is returned unchanged.
func AppendSlice[T any](dst []byte, xs []T) ([]byte, error) {
	if size := rawSize[T](); size > 0 {
		if len(xs) > (MaxValue-1)/size {
			return dst, fmt.Errorf("%w: %d elements of %d bytes are more than %d bytes", codec.ErrTooLarge, len(xs), size, MaxValue)
		}
		dst = append(slices.Grow(dst, 1+len(xs)*size), formatRaw)
		// A T holds no pointer (rawSize), so its memory is plain data.
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(xs))), len(xs)*size)...), nil
	}
	b, err := Wire.Marshal(xs)
	if err != nil {
		return dst, err
	}
	return append(append(dst, formatCBOR), b...), nil
}

// ErrFormat reports an encoded slice that EncodeSlice did not make for
// this type.
var ErrFormat = errors.New("funcs: encoded slice of another format")

// DecodeSliceInto decodes what EncodeSlice encoded into the start of dst
// and returns how many elements it held: more than dst has room for fail
// with ErrFormat (and may have overwritten dst). dst holds nothing of b
// afterwards: what it decoded is copied.
func DecodeSliceInto[T any](b []byte, dst []T) (int, error) {
	if size := rawSize[T](); size > 0 && len(b) > 0 && b[0] == formatRaw {
		b = b[1:]
		switch {
		case len(b)%size != 0:
			return 0, fmt.Errorf("%w: %d bytes of %d-byte elements", ErrFormat, len(b), size)
		case len(b)/size > len(dst):
			return 0, fmt.Errorf("%w: %d elements for room for %d", ErrFormat, len(b)/size, len(dst))
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), len(b)), b)
		return len(b) / size, nil
	}
	xs, err := DecodeSlice[T](b)
	if err != nil {
		return 0, err
	}
	if len(xs) > len(dst) {
		return 0, fmt.Errorf("%w: %d elements for room for %d", ErrFormat, len(xs), len(dst))
	}
	return copy(dst, xs), nil
}

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
