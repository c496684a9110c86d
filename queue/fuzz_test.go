package queue

import (
	"errors"
	"testing"
)

type fuzzRecord struct {
	Name  string
	Tags  []string
	Attrs map[string]int
	Next  *fuzzRecord
}

// FuzzDecode feeds arbitrary bytes, as a buggy or hostile process could
// leave in a slot, to the decoder of CBOR messages: an error matching
// ErrCorrupt or a value, never a panic or a hang. What decodes encodes
// again within the limits.
func FuzzDecode(f *testing.F) {
	c, err := newCoder[fuzzRecord](DefaultMaxMessage)
	if err != nil {
		f.Fatal(err)
	}
	seed := fuzzRecord{Name: "a", Tags: []string{"x"}, Attrs: map[string]int{"k": 1}, Next: &fuzzRecord{Name: "b"}}
	if b, err := c.encode(&seed); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x9f, 0x9f, 0x9f, 0x9f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > DefaultMaxMessage {
			return // a slot never holds more
		}
		var v fuzzRecord
		if err := c.decode(b, &v); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not match ErrCorrupt", err)
			}
			return
		}
		if _, err := c.encode(&v); err != nil && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("a decoded value does not encode again: %v", err)
		}
	})
}
