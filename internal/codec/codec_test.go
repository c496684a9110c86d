package codec_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/internal/codec"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// small has the smallest limits the decoder takes, so that tests reach
// them with small values.
var small = codec.Limits{Depth: 4, Elements: 16}

func newCodec(t testing.TB, l codec.Limits) *codec.Codec {
	t.Helper()
	c, err := codec.New(l, cbor.EncOptions{}, cbor.DecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nest returns a value of levels nested []any.
func nest(levels int) any {
	var v any = 1
	for range levels {
		v = []any{v}
	}
	return v
}

// wantErr fails the test unless Marshal's err says want, or is nil when
// want is "".
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("Marshal = %v, want success", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("Marshal = %v, want an error saying %q", err, want)
	}
}

type inner struct{ A [][][]int }

type outer struct {
	inner // written as outer's own fields: no level of its own
	B     int
}

type tree struct {
	Kids   []*tree
	Parent *tree `cbor:"-"` // a cycle the encoder does not follow
}

type deepMarshaler struct{}

func (deepMarshaler) MarshalCBOR() ([]byte, error) { return cbor.Marshal(nest(5)) }

type pointerToItself *pointerToItself

func TestCheckAgreesWithDecoder(t *testing.T) {
	c := newCodec(t, small)
	root := &tree{}
	root.Kids = []*tree{{Parent: root}}
	ints := func(n int) []int { return make([]int, n) }
	pairs := func(n int) map[int]int {
		m := map[int]int{}
		for i := range n {
			m[i] = i
		}
		return m
	}
	tests := []struct {
		name string
		v    any
		want string // in Marshal's error; "" for none
		// strict marks a value the decoder takes but the check refuses,
		// as the package documentation says it may.
		strict bool
	}{
		{name: "int", v: 7},
		{name: "nil", v: nil},
		{name: "nil pointer", v: (*outer)(nil)},
		{name: "string", v: strings.Repeat("s", 100)},
		{name: "bytes", v: make([]byte, 1000)},
		{name: "16 ints", v: ints(16)},
		{name: "17 ints", v: ints(17), want: "array of 17 elements, at most 16"},
		{name: "17-int array", v: [17]int{}, want: "of 17 elements, at most 16"},
		{name: "16 pairs", v: pairs(16)},
		{name: "17 pairs", v: pairs(17), want: "map of 17 pairs, at most 16"},
		{name: "17 ints inside", v: map[string][]int{"a": ints(17)}, want: "array of 17 elements"},
		{name: "4 levels", v: nest(4)},
		{name: "5 levels", v: nest(5), want: "nested deeper than 4 levels"},
		{name: "5 levels of a fixed type", v: [1][1][1][1][1]int{}, want: "nested deeper than 4 levels"},
		{name: "embedded struct", v: outer{inner: inner{A: [][][]int{{{1}}}}}},
		{name: "field not written", v: root},
		{name: "nil embedded pointer", v: struct {
			*inner
			B int
		}{B: 1}},
		{name: "time", v: time.Unix(1, 0)},
		{name: "big.Int", v: new(big.Int).Lsh(big.NewInt(1), 100)},
		{name: "raw message", v: cbor.RawMessage{0x81, 0x81, 0x81, 0x81, 0x81, 0x01}, want: "custom encoding"},
		{name: "Marshaler", v: []any{deepMarshaler{}}, want: "custom encoding"},
		{name: "tag", v: cbor.Tag{Number: 100, Content: nest(4)}, want: "nested deeper", strict: true},
		{name: "nil slice at the limit", v: [1][1][1]struct{ S []int }{}, want: "nested deeper", strict: true},
		{name: "pointer to itself", v: pointerToItself(nil), want: "pointer to itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.Marshal(tt.v)
			wantErr(t, err, tt.want)
			if err == nil {
				if derr := c.DecMode().Wellformed(b); derr != nil {
					t.Fatalf("the decoder refuses what Marshal encoded: %v", derr)
				}
				if cerr := c.Check(tt.v); cerr != nil {
					t.Errorf("Check = %v after Marshal succeeded", cerr)
				}
				return
			}
			if tt.name == "pointer to itself" {
				return // the encoder cannot encode it at all
			}
			b, encErr := c.EncMode().Marshal(tt.v)
			if encErr != nil {
				t.Fatalf("the bare encoder fails too: %v", encErr)
			}
			if derr := c.DecMode().Wellformed(b); (derr == nil) != tt.strict {
				t.Errorf("decoder on the refused value: %v; the check should be strict (%v) here", derr, tt.strict)
			}
		})
	}
}

func TestSize(t *testing.T) {
	c := newCodec(t, codec.Limits{Depth: 4, Elements: 1 << 10, Size: 1 << 20})
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"bytes", make([]byte, 1<<20+1), "1048577 bytes or more, at most 1 MiB"},
		{"strings", []string{strings.Repeat("s", 1<<19), strings.Repeat("s", 1<<19)}, "at most 1 MiB"},
		{"ints", make([]int64, 1000), ""},
		{"encoded", []int64{1 << 62, 1 << 62}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Marshal(tt.v)
			wantErr(t, err, tt.want)
		})
	}
	// The check counts a byte for an integer; the encoder writes nine.
	tight := newCodec(t, codec.Limits{Depth: 4, Elements: 1 << 10, Size: 4096})
	if _, err := tight.Marshal(func() []int64 {
		v := make([]int64, 1000)
		for i := range v {
			v[i] = 1 << 62
		}
		return v
	}()); err == nil || !strings.Contains(err.Error(), "9003 bytes, at most 4096 bytes") {
		t.Errorf("Marshal of 9003 bytes with a limit of 4096 = %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    codec.Limits
		eo   cbor.EncOptions
	}{
		{"depth", codec.Limits{Depth: 3, Elements: 16}, cbor.EncOptions{}},
		{"deep", codec.Limits{Depth: 65536, Elements: 16}, cbor.EncOptions{}},
		{"elements", codec.Limits{Depth: 4, Elements: 15}, cbor.EncOptions{}},
		{"size", codec.Limits{Depth: 4, Elements: 16, Size: -1}, cbor.EncOptions{}},
		{"byte arrays", small, cbor.EncOptions{ByteArray: cbor.ByteArrayToArray}},
		{"text marshalers", small, cbor.EncOptions{TextMarshaler: cbor.TextMarshalerTextString}},
	} {
		if _, err := codec.New(tt.l, tt.eo, cbor.DecOptions{}); err == nil {
			t.Errorf("New with bad %s succeeded", tt.name)
		}
	}
	c := newCodec(t, small)
	if got := c.Limits(); got != small {
		t.Errorf("Limits = %+v, want %+v", got, small)
	}
	o := c.DecMode().DecOptions()
	if o.MaxNestedLevels != 4 || o.MaxArrayElements != 16 || o.MaxMapPairs != 16 {
		t.Errorf("decoder limits %d, %d, %d; want 4, 16, 16", o.MaxNestedLevels, o.MaxArrayElements, o.MaxMapPairs)
	}
}

// cyclicValues are values the encoder, unchecked, recurses on until the
// stack overflows.
func cyclicValues() map[string]any {
	type node struct {
		Next *node
	}
	n := &node{}
	n.Next = n
	m := map[string]any{}
	m["self"] = m
	s := []any{nil}
	s[0] = s
	p := new(any)
	*p = p
	tag := &cbor.Tag{Number: 100}
	tag.Content = tag
	type holder struct{ V any }
	h := &holder{}
	h.V = h
	return map[string]any{"pointers": n, "map": m, "slice": s, "interface": p, "tag": tag, "interface field": h}
}

// marshalCyclic runs Marshal on each cyclic value in a worker process, so
// that a stack overflow fails the test rather than ending its binary, and
// returns the errors' texts.
var marshalCyclic = process.Register("codec-test/marshalCyclic", func(ctx context.Context, depth int) (map[string]string, error) {
	c, err := codec.New(codec.Limits{Depth: depth, Elements: 1 << 20}, cbor.EncOptions{}, cbor.DecOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, v := range cyclicValues() {
		if _, err := c.Marshal(v); err != nil {
			out[name] = err.Error()
		} else {
			out[name] = "<nil>"
		}
	}
	return out, nil
})

func TestCyclicRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, depth := range []int{32, 65535} {
		got, err := marshalCyclic.Run(ctx, depth)
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		for name := range cyclicValues() {
			if msg := got[name]; !strings.Contains(msg, "(is it cyclic?)") {
				t.Errorf("depth %d: Marshal of a cyclic %s = %s, want an error asking whether it is cyclic", depth, name, msg)
			}
		}
	}
}

func TestUnsupportedType(t *testing.T) {
	c := newCodec(t, small)
	_, err := c.Marshal(struct{ C chan int }{})
	var ute *cbor.UnsupportedTypeError
	if !errors.As(err, &ute) {
		t.Errorf("Marshal of a channel = %v, want the encoder's UnsupportedTypeError", err)
	}
}

// BenchmarkMarshal times Marshal, the check and the encoding, against the
// bare encoder in the same run (x-base is the quotient).
func BenchmarkMarshal(b *testing.B) {
	type point struct {
		X, Y  int
		Label string
		Tags  []string
	}
	c := newCodec(b, codec.Limits{Depth: 32, Elements: 1 << 20})
	for _, bm := range []struct {
		name string
		v    any
	}{
		{"fixed", struct {
			X, Y  int
			Label string
		}{1, 2, "p"}},
		{"point", point{X: 1, Y: 2, Label: "p", Tags: []string{"a", "b"}}},
		{"ints=10000", make([]int, 10000)},
		{"nested-maps", map[string]any{"a": map[string]any{"b": []any{1, "x", map[string]any{"c": 2.5}}}}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			benchtest.Ratio(b, func(n int) {
				for range n {
					c.EncMode().Marshal(bm.v)
				}
			}, func(n int) {
				for range n {
					c.Marshal(bm.v)
				}
			})
		})
	}
}
