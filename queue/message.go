package queue

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/fxamacker/cbor/v2"

	"github.com/shmkit/shmkit/internal/codec"
	"github.com/shmkit/shmkit/internal/layout"
)

// format is how a queue's or pipe's messages are laid out.
type format uint32

const (
	// formatRaw: T is fixed-size and pointer-free; a message is T's
	// bytes.
	formatRaw format = 1
	// formatBytes: T is []byte; a message is the slice's bytes.
	formatBytes format = 2
	// formatCBOR: any other T; a message is its CBOR encoding.
	formatCBOR format = 3
)

// maxDepth bounds the nesting of CBOR messages, on both sides.
const maxDepth = 32

// coder turns values of T into messages and back.
type coder[T any] struct {
	format format
	size   int          // raw: the size of T; otherwise the maximum message
	codec  *codec.Codec // formatCBOR only
	typ    reflect.Type
}

func newCoder[T any](maxMessage int) (*coder[T], error) {
	t := reflect.TypeFor[T]()
	c := &coder[T]{typ: t}
	switch {
	case t == reflect.TypeFor[[]byte]():
		c.format, c.size = formatBytes, maxMessage
	case t.Kind() != reflect.Interface && layout.Check(t) == nil:
		c.format, c.size = formatRaw, int(t.Size())
	default:
		cd, err := codec.New(codec.Limits{Depth: maxDepth, Elements: max(16, maxMessage), Size: maxMessage},
			cbor.EncOptions{Sort: cbor.SortNone}, cbor.DecOptions{})
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		c.format, c.size, c.codec = formatCBOR, maxMessage, cd
	}
	return c, nil
}

// layoutOf describes the messages for the segment's directory, so that a
// queue opened with another type is refused: a raw type by its layout, the
// others by their Go type.
func (c *coder[T]) layoutOf() string {
	switch c.format {
	case formatRaw:
		return "raw " + layout.Describe(c.typ)
	case formatBytes:
		return "bytes"
	}
	return "cbor " + c.typ.String()
}

// encode returns the message for v, for formats other than raw. The slice
// for formatBytes is v itself.
func (c *coder[T]) encode(v *T) ([]byte, error) {
	if c.format == formatBytes {
		b := *(*[]byte)(unsafe.Pointer(v))
		if len(b) > c.size {
			return nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, len(b), c.size)
		}
		return b, nil
	}
	b, err := c.codec.Marshal(*v)
	if err != nil {
		if errors.Is(err, codec.ErrTooLarge) {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return nil, fmt.Errorf("queue: encode %s: %w", c.typ, err)
	}
	return b, nil
}

// decode sets *v from the message b, which the caller owns from now on
// (formatBytes returns it as the value).
func (c *coder[T]) decode(b []byte, v *T) error {
	switch c.format {
	case formatBytes:
		*(*[]byte)(unsafe.Pointer(v)) = b
		return nil
	case formatRaw:
		if len(b) != c.size {
			return fmt.Errorf("%w: %d-byte message for %d-byte %s", ErrCorrupt, len(b), c.size, c.typ)
		}
		*v = *(*T)(unsafe.Pointer(unsafe.SliceData(b)))
		return nil
	}
	var zero T
	*v = zero
	if err := c.codec.DecMode().Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decode %s: %v", ErrCorrupt, c.typ, err)
	}
	return nil
}
