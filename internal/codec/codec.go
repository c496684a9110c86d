// Package codec is the project's CBOR encoding with stated limits. A Codec
// pairs an encoder with a decoder whose nesting and size limits it also
// enforces on the encoding side, so that what one process encodes, the
// process at the other end decodes: a value beyond the limits fails
// Marshal with an error that names the limit, before it is sent, instead
// of failing the receiver's decode or, for a cyclic value, overflowing the
// encoder's stack (a fatal error no recover catches).
//
// # What the check counts
//
// The check counts what fxamacker/cbor's decoder counts. Arrays and maps
// are levels: a number is 0 levels deep, a slice of numbers 1, a struct
// (a map) of slices 2. The check also counts, more strictly than the
// decoder:
//   - a cbor.Tag as a level (the decoder counts a tag only inside a tag);
//   - a nil slice or map as the empty one (the encoder writes null);
//   - pointers and interfaces: at most 16 of them in a row, with
//     no array or map between. A cyclic value either nests without end or
//     loops through pointers and interfaces, so the check refuses every
//     cyclic value.
//
// Each array and map may hold at most Limits.Elements elements or pairs,
// and the whole encoding may take at most Limits.Size bytes.
//
// # Cost
//
// The check looks at a type once and caches what it found. A type that
// can hold no slice, map or interface and does not recurse (numbers,
// strings, byte slices, fixed arrays and structs of those) is checked from
// the cache alone; a slice, array or map whose elements are of such a type
// is checked from its length alone, so a []int of ten million elements
// costs what a []int of one does. Only the parts of a value that can
// nest, or hold containers, are visited.
//
// # Custom encodings
//
// The check does not look inside values that encode themselves:
// cbor.Marshaler (cbor.RawMessage and cbor.RawTag included),
// encoding.BinaryMarshaler (a byte string), time.Time and big.Int. Marshal
// checks the output of a cbor.Marshaler with the decoder, so that a
// custom encoding beyond the limits fails there too.
package codec

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// ErrTooLarge reports a value whose encoding would exceed Limits.Size.
var ErrTooLarge = errors.New("codec: encoding too large")

// Limits bound one encoded item, as its decoder counts.
type Limits struct {
	// Depth is the most levels of arrays and maps an item nests: the
	// decoder's MaxNestedLevels, 4 to 65535.
	Depth int

	// Elements is the most elements one array, and the most pairs one
	// map, holds: the decoder's MaxArrayElements and MaxMapPairs, 16 to
	// 2^31-1.
	Elements int

	// Size, when not 0, is the most bytes an encoding takes.
	Size int
}

// Codec encodes and decodes with one set of limits. It is safe for
// concurrent use.
type Codec struct {
	limits Limits
	enc    cbor.EncMode
	dec    cbor.DecMode
}

// New returns a codec that encodes with eo and decodes with do, whose
// limits it sets from l. It refuses encoding options that change the shape
// of an encoding in ways the check does not follow (byte arrays as arrays,
// BinaryMarshaler, TextMarshaler or json.Marshaler encodings).
func New(l Limits, eo cbor.EncOptions, do cbor.DecOptions) (*Codec, error) {
	switch {
	case l.Depth < 4 || l.Depth > 65535:
		return nil, fmt.Errorf("codec: depth limit %d out of range [4, 65535]", l.Depth)
	case l.Elements < 16 || l.Elements > 1<<31-1:
		return nil, fmt.Errorf("codec: element limit %d out of range [16, 2^31-1]", l.Elements)
	case l.Size < 0:
		return nil, fmt.Errorf("codec: negative size limit %d", l.Size)
	case eo.ByteArray != cbor.ByteArrayToByteSlice, eo.BinaryMarshaler != cbor.BinaryMarshalerByteString,
		eo.TextMarshaler != cbor.TextMarshalerNone, eo.JSONMarshalerTranscoder != nil:
		return nil, errors.New("codec: encoding options change encodings the check does not follow")
	}
	do.MaxNestedLevels = l.Depth
	do.MaxArrayElements = l.Elements
	do.MaxMapPairs = l.Elements
	c := &Codec{limits: l}
	var err error
	if c.enc, err = eo.EncMode(); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	if c.dec, err = do.DecMode(); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	return c, nil
}

// Limits returns the codec's limits.
func (c *Codec) Limits() Limits { return c.limits }

// EncMode returns the codec's encoder, which does not check values: use it
// only for values Check has passed, or that cannot nest.
func (c *Codec) EncMode() cbor.EncMode { return c.enc }

// DecMode returns the codec's decoder.
func (c *Codec) DecMode() cbor.DecMode { return c.dec }

// Check returns an error naming the limit if encoding v would give an
// item beyond the codec's limits, or could not end (v is cyclic). It does
// not see inside custom encodings; see the package documentation.
func (c *Codec) Check(v any) error {
	_, err := c.check(v)
	return err
}

func (c *Codec) check(v any) (w walker, err error) {
	if v == nil {
		return w, nil
	}
	rv := reflect.ValueOf(v)
	w = walker{limits: c.limits, typ: rv.Type()}
	return w, w.walk(rv, 0, 0)
}

// Marshal checks v and encodes it. An error means nothing was encoded; a
// result is an item the codec's decoder accepts.
func (c *Codec) Marshal(v any) ([]byte, error) {
	w, err := c.check(v)
	if err != nil {
		return nil, err
	}
	b, err := c.enc.Marshal(v)
	if err != nil {
		return nil, err
	}
	if c.limits.Size > 0 && len(b) > c.limits.Size {
		return nil, fmt.Errorf("%w: value of type %v: %d bytes, at most %s", ErrTooLarge, w.typ, len(b), sizeText(c.limits.Size))
	}
	if w.custom {
		if err := c.dec.Wellformed(b); err != nil {
			return nil, fmt.Errorf("codec: the custom encoding in a value of type %v is beyond the limits: %w", w.typ, err)
		}
	}
	return b, nil
}

// Unmarshal decodes the CBOR item b into the value v points to.
func (c *Codec) Unmarshal(b []byte, v any) error { return c.dec.Unmarshal(b, v) }

// sizeText formats a size, in MiB when it is a whole number of them.
func sizeText(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
