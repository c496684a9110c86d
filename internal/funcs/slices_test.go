package funcs

import (
	"errors"
	"slices"
	"testing"
)

type point struct{ X, Y int32 }

type named struct {
	Name string
	N    int
}

func roundTrip[T comparable](t *testing.T, xs []T, raw bool) {
	t.Helper()
	b, err := EncodeSlice(xs)
	if err != nil {
		t.Fatal(err)
	}
	if (b[0] == formatRaw) != raw {
		t.Fatalf("%T encoded in format %q", xs, b[0])
	}
	got, err := DecodeSlice[T](b)
	if err != nil || !slices.Equal(got, xs) {
		t.Fatalf("round trip of %v = %v, %v", xs, got, err)
	}
	a, err := AppendSlice([]byte("head"), xs)
	if err != nil || string(a[:4]) != "head" || string(a[4:]) != string(b) {
		t.Fatalf("AppendSlice(%v) = %q, %v; want head%q", xs, a, err, b)
	}
	into := make([]T, len(xs)+1)
	if n, err := DecodeSliceInto(b, into); err != nil || n != len(xs) || !slices.Equal(into[:n], xs) {
		t.Fatalf("DecodeSliceInto of %v = %v, %d, %v", xs, into, n, err)
	}
	if len(xs) > 0 {
		if _, err := DecodeSliceInto(b, into[:len(xs)-1]); !errors.Is(err, ErrFormat) {
			t.Fatalf("DecodeSliceInto of %d elements into room for %d: %v", len(xs), len(xs)-1, err)
		}
	}
}

func TestSlices(t *testing.T) {
	roundTrip(t, []int{1, -2, 3}, true)
	roundTrip(t, []point{{1, 2}, {3, 4}}, true)
	roundTrip(t, []int{}, true)
	roundTrip(t, []string{"a", "bc"}, false)
	roundTrip(t, []named{{"x", 1}}, false)
	roundTrip(t, []struct{}{{}, {}}, false) // empty elements: no raw bytes to count them by

	b, _ := EncodeSlice([]int{1, 2})
	if _, err := DecodeSlice[int](b[:len(b)-1]); !errors.Is(err, ErrFormat) {
		t.Fatalf("a torn raw slice decoded: %v", err)
	}
	if _, err := DecodeSlice[string](b); !errors.Is(err, ErrFormat) {
		t.Fatalf("raw ints decoded as strings: %v", err)
	}
	if _, err := DecodeSlice[int](nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("nothing decoded: %v", err)
	}
	c, _ := EncodeSlice([]string{"a"})
	if _, err := DecodeSlice[int](c); !errors.Is(err, ErrFormat) {
		t.Fatalf("CBOR strings decoded as raw ints: %v", err)
	}
}
