package codec

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestCheckSkipsFixedElements: the check visits no element of a slice or
// map whose element type cannot nest, so its cost does not grow with the
// number of such elements.
func TestCheckSkipsFixedElements(t *testing.T) {
	c, err := New(Limits{Depth: 32, Elements: 1 << 24}, cbor.EncOptions{}, cbor.DecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type point struct {
		X, Y int
		Name string
		Pad  [4]float64
	}
	byID := map[int]point{}
	for i := range 100_000 {
		byID[i] = point{X: i}
	}
	rows := make([][]int, 1000)
	for i := range rows {
		rows[i] = make([]int, 1000)
	}
	for _, tt := range []struct {
		name   string
		v      any
		visits int
	}{
		{"a point", point{}, 1},
		{"10M ints", make([]int, 10_000_000), 1},
		{"1M points", make([]point, 1_000_000), 1},
		{"a map of 100k points", byID, 1},
		{"1000 rows of 1000 ints", rows, 1 + len(rows)},
		{"a pointer to a slice of ints", &[]int{9: 0}, 2},
	} {
		w, err := c.check(tt.v)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if w.visits != tt.visits {
			t.Errorf("%s: the check visited %d values, want %d", tt.name, w.visits, tt.visits)
		}
	}
}
