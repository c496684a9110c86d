package manager

import (
	"bytes"
	"math"
	"testing"
)

// TestFastCodecMatchesGeneral checks that the fast paths write and read
// exactly what the general codec does.
func TestFastCodecMatchesGeneral(t *testing.T) {
	vals := []any{"", "a", "héllo", string(make([]byte, 300)), 0, 1, -1, 23, 24, -25, 255, 256, 65535, 65536,
		math.MaxInt64, math.MinInt64, int32(-7), uint64(math.MaxUint64), uint32(7), uint(9), true, false}
	for _, v := range vals {
		var fast, slow frameWriter
		switch x := v.(type) {
		case string:
			must(t, appendItem(&fast, x))
		case int:
			must(t, appendItem(&fast, x))
		case int32:
			must(t, appendItem(&fast, x))
		case uint64:
			must(t, appendItem(&fast, x))
		case uint32:
			must(t, appendItem(&fast, x))
		case uint:
			must(t, appendItem(&fast, x))
		case bool:
			must(t, appendItem(&fast, x))
		}
		must(t, slow.value(v))
		if !bytes.Equal(fast.buf, slow.buf) {
			t.Errorf("%T %v: fast % x, general % x", v, v, fast.buf, slow.buf)
		}
	}
	for _, v := range []string{"", "abc", "ünï", string(make([]byte, 70000))} {
		b, _ := encMode.Marshal(v)
		var got string
		if s, ok := fastText(b); !ok || s != v {
			t.Errorf("fastText(%q) = %q, %v", v, s, ok)
		}
		must(t, decodeItem(b, &got))
	}
	for _, v := range []int64{0, 1, -1, 24, -24, 1 << 40, math.MaxInt64, math.MinInt64} {
		b, _ := encMode.Marshal(v)
		if n, ok := fastInt(b); !ok || n != v {
			t.Errorf("fastInt(%d) = %d, %v", v, n, ok)
		}
	}
	// What the fast paths must leave to the general codec.
	for _, b := range [][]byte{
		{0x7f, 0x61, 0x61, 0xff},          // indefinite-length text
		{0x62, 0xff, 0xfe},                // invalid UTF-8
		{0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0}, // 2^63 does not fit int64
		{0x18},                            // truncated
		{0x61, 0x61, 0x00},                // trailing byte
	} {
		if _, ok := fastText(b); ok {
			t.Errorf("fastText accepted % x", b)
		}
		if _, ok := fastInt(b); ok {
			t.Errorf("fastInt accepted % x", b)
		}
		var s string
		var n int64
		if decodeItem(b, &s) == nil && decodeItem(b, &n) == nil {
			t.Errorf("% x decoded as both a string and an int", b)
		}
	}
}
