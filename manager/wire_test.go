package manager

import (
	"math"
	"testing"
)

// TestDecodeIntFastPath checks the integer decoders' fast path against
// the general decoder on every head length, and that what the fast path
// leaves (other types, trailing bytes, out of range) still fails or
// decodes as the general decoder does.
func TestDecodeIntFastPath(t *testing.T) {
	for _, n := range []int64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64, -1, -24, -25, -256, -257, -65537, math.MinInt64} {
		var w frameWriter
		w.int(n)
		b := w.buf[itemLenSize:]
		if got, err := decodeInt(b); got != n || err != nil {
			t.Errorf("decodeInt(% x) = %d, %v; want %d", b, got, err, n)
		}
		u, err := decodeUint(b)
		if n >= 0 && (u != uint64(n) || err != nil) {
			t.Errorf("decodeUint(% x) = %d, %v; want %d", b, u, err, n)
		}
		if n < 0 && err == nil {
			t.Errorf("decodeUint(% x) = %d, want an error", b, u)
		}
	}
	var w frameWriter
	w.uint(math.MaxUint64)
	if _, err := decodeInt(w.buf[itemLenSize:]); err == nil {
		t.Error("decodeInt of MaxUint64 succeeded")
	}
	for _, b := range [][]byte{nil, {0x18}, {0x19, 1}, {0x01, 0x01}, {0x1c}, {0x61, 'a'}, {0xf5}} {
		if v, err := decodeInt(b); err == nil {
			t.Errorf("decodeInt(% x) = %d, want an error", b, v)
		}
		if v, err := decodeUint(b); err == nil {
			t.Errorf("decodeUint(% x) = %d, want an error", b, v)
		}
	}
}
