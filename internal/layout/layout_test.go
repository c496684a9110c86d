package layout

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

type point struct {
	X, Y int32
	Z    float64
}

type mixed struct {
	A    bool
	B    int16
	C    [3]uint8
	D    complex64
	P    point
	E    [2]struct{ F float32 }
	Last [0]int64
}

type badInner struct {
	OK   int64
	Name string
}

type badOuter struct {
	N     int
	Inner badInner
}

func TestCheckRefusesPointerTypes(t *testing.T) {
	tests := []struct {
		typ  reflect.Type
		want string // substring of the error
	}{
		{reflect.TypeFor[*int](), "it is a ptr"},
		{reflect.TypeFor[string](), "it is a string"},
		{reflect.TypeFor[[]int](), "it is a slice"},
		{reflect.TypeFor[map[int]int](), "it is a map"},
		{reflect.TypeFor[any](), "it is an interface"},
		{reflect.TypeFor[chan int](), "it is a chan"},
		{reflect.TypeFor[func()](), "it is a func"},
		{reflect.TypeFor[unsafe.Pointer](), "it is an unsafe.Pointer"},
		{reflect.TypeFor[badOuter](), "field Inner.Name is a string"},
		{reflect.TypeFor[[4]*int](), "element [i] is a ptr (*int)"},
		{reflect.TypeFor[struct{ A [2]struct{ M map[string]int } }](), "field A[i].M is a map"},
		{reflect.TypeFor[struct{}](), "zero-size"},
	}
	for _, tt := range tests {
		err := Check(tt.typ)
		if err == nil {
			t.Errorf("Check(%v) = nil, want error containing %q", tt.typ, tt.want)
			continue
		}
		if !errors.Is(err, ErrUnshareable) {
			t.Errorf("Check(%v) = %v, want errors.Is ErrUnshareable", tt.typ, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%v) = %q, want it to contain %q", tt.typ, err, tt.want)
		}
	}
}

func TestCheckAcceptsPlainTypes(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[int64](), reflect.TypeFor[bool](), reflect.TypeFor[uintptr](),
		reflect.TypeFor[complex128](), reflect.TypeFor[point](), reflect.TypeFor[mixed](),
		reflect.TypeFor[[16]float64](),
	} {
		if err := Check(typ); err != nil {
			t.Errorf("Check(%v) = %v, want nil", typ, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	type myInt int
	tests := []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[int](), "int64"},
		{reflect.TypeFor[myInt](), "int64"},
		{reflect.TypeFor[uintptr](), "uint64"},
		{reflect.TypeFor[[2][3]int8](), "[2][3]int8"},
		{reflect.TypeFor[point](), "struct { X int32; Y int32; Z float64 }"},
		{reflect.TypeFor[struct{}](), "struct {}"},
	}
	for _, tt := range tests {
		if got := Describe(tt.typ); got != tt.want {
			t.Errorf("Describe(%v) = %q, want %q", tt.typ, got, tt.want)
		}
	}
	if Fingerprint(Describe(reflect.TypeFor[int64]())) == Fingerprint(Describe(reflect.TypeFor[uint64]())) {
		t.Error("int64 and uint64 have the same fingerprint")
	}
}

// TestParseMatchesCompiler checks that offsets and sizes computed from a
// descriptor agree with the compiler's, which is what lets the CLI read
// values it has no Go type for.
func TestParseMatchesCompiler(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[int8](), reflect.TypeFor[complex64](), reflect.TypeFor[point](),
		reflect.TypeFor[mixed](), reflect.TypeFor[[5]mixed](), reflect.TypeFor[struct {
			A int8
			B [0]int64
		}](),
	} {
		pt, err := Parse(Describe(typ))
		if err != nil {
			t.Fatalf("Parse(Describe(%v)): %v", typ, err)
		}
		compare(t, typ.String(), typ, pt)
	}
}

func compare(t *testing.T, path string, typ reflect.Type, pt *Type) {
	t.Helper()
	if pt.Size != int(typ.Size()) || pt.Align != typ.Align() {
		t.Errorf("%s: parsed size/align %d/%d, compiler %d/%d", path, pt.Size, pt.Align, typ.Size(), typ.Align())
	}
	switch typ.Kind() {
	case reflect.Struct:
		if len(pt.Fields) != typ.NumField() {
			t.Fatalf("%s: parsed %d fields, want %d", path, len(pt.Fields), typ.NumField())
		}
		for i, f := range pt.Fields {
			sf := typ.Field(i)
			if f.Name != sf.Name || f.Off != int(sf.Offset) {
				t.Errorf("%s: field %d parsed %s@%d, compiler %s@%d", path, i, f.Name, f.Off, sf.Name, sf.Offset)
			}
			compare(t, path+"."+sf.Name, sf.Type, f.Type)
		}
	case reflect.Array:
		compare(t, path+"[i]", typ.Elem(), pt.Elem)
	}
}

func TestFormatMatchesFmt(t *testing.T) {
	v := mixed{A: true, B: -3, C: [3]uint8{1, 2, 3}, D: complex(1.5, -2), P: point{X: -1, Y: 7, Z: 0.25},
		E: [2]struct{ F float32 }{{F: 1}, {F: -0.5}}}
	pt, err := Parse(Describe(reflect.TypeFor[mixed]()))
	if err != nil {
		t.Fatal(err)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v))
	got := pt.Format(b)
	want := fmt.Sprintf("%+v", v)
	if got != want {
		t.Errorf("Format = %s\nwant      %s", got, want)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "int63", "[x]int8", "[3", "struct { A int8", "struct { A int8 B int8 }",
		"int8 trailing", strings.Repeat("[1]", 100) + "int8", "[2147483647][2147483647]int64"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = nil error", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("struct { X int32; Y [4]float64 }")
	f.Add("[3]complex64")
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := Parse(s)
		if err != nil {
			return
		}
		if pt.Size < 0 || pt.Size > MaxSize {
			t.Fatalf("Parse(%q) size %d", s, pt.Size)
		}
		if pt.Size <= 1<<16 {
			pt.Format(make([]byte, pt.Size+16))
		}
	})
}

func TestRuns(t *testing.T) {
	type row struct {
		A int8
		F [3]int64
	}
	tests := []struct {
		typ     reflect.Type
		want    []Run
		numeric bool
	}{
		{reflect.TypeFor[point](), []Run{{0, reflect.Int32, nil}, {4, reflect.Int32, nil}, {8, reflect.Float64, nil}}, true},
		{reflect.TypeFor[[1 << 20]byte](), []Run{{0, reflect.Uint8, []Dim{{1 << 20, 1}}}}, true},
		// Rows back to back collapse into one dimension.
		{reflect.TypeFor[[3][4]int32](), []Run{{0, reflect.Int32, []Dim{{12, 4}}}}, true},
		{reflect.TypeFor[[1000][1000][1000]uint8](), []Run{{0, reflect.Uint8, []Dim{{1e9, 1}}}}, true},
		// A field of every element: a run per field, not per element.
		{reflect.TypeFor[[100]row](), []Run{
			{0, reflect.Int8, []Dim{{100, 32}}},
			{8, reflect.Int64, []Dim{{100, 32}, {3, 8}}},
		}, true},
		{reflect.TypeFor[[1]int64](), []Run{{0, reflect.Int64, nil}}, true},
		{reflect.TypeFor[struct {
			A [0]bool
			B uint16
		}](), []Run{{0, reflect.Uint16, nil}}, true},
		{reflect.TypeFor[[7]struct{}](), nil, true},
	}
	for _, tt := range tests {
		runs, numeric := Runs(tt.typ)
		if !reflect.DeepEqual(runs, tt.want) || numeric != tt.numeric {
			t.Errorf("Runs(%v) = %v, %v; want %v, %v", tt.typ, runs, numeric, tt.want, tt.numeric)
		}
	}
	if _, numeric := Runs(reflect.TypeFor[mixed]()); numeric {
		t.Error("Runs(mixed) numeric = true, want false (it has a bool)")
	}
}

// TestDescribingLargeTypesIsCheap checks that describing a type costs in
// proportion to its distinct fields, not its bytes: a 1 GB array is one
// run and a few allocations.
func TestDescribingLargeTypesIsCheap(t *testing.T) {
	typ := reflect.TypeFor[[1 << 10][1 << 20]struct {
		A uint8
		B [3]float32
	}]()
	allocs := testing.AllocsPerRun(10, func() {
		if err := Check(typ); err != nil {
			t.Fatal(err)
		}
		Describe(typ)
		if runs, _ := Runs(typ); len(runs) != 2 {
			t.Fatalf("Runs: %d runs, want 2", len(runs))
		}
	})
	if allocs > 40 {
		t.Errorf("checking and describing a %d-byte type made %v allocations", typ.Size(), allocs)
	}
}

func TestParseAcceptsWhatCheckAccepts(t *testing.T) {
	for _, s := range []string{"[100000000]int64", "[1000000000][1000000000]struct {}", "[1099511627776]uint8",
		"[70000][1000]struct { A [0]int8 }"} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	for _, s := range []string{"[1099511627777]uint8", "[549755813889]uint16", "struct { A [1099511627776]uint8; B uint8 }"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted a type larger than MaxSize", s)
		}
	}
	if err := Check(reflect.TypeFor[[MaxSize + 1]byte]()); err == nil {
		t.Error("Check accepted a type larger than MaxSize")
	}
}

func TestFormatIsBounded(t *testing.T) {
	pt, err := Parse("[1000000000][1000000000]struct {}")
	if err != nil {
		t.Fatal(err)
	}
	if s := pt.Format(nil); !strings.HasSuffix(s, "…") || len(s) > 4*MaxFormat {
		t.Errorf("Format of 10^18 empty structs: %d bytes ending %q, want at most %d ending in …", len(s), s[max(0, len(s)-10):], 4*MaxFormat)
	}
	pt, err = Parse("[1000][1000]int8")
	if err != nil {
		t.Fatal(err)
	}
	if s := pt.Format(make([]byte, pt.Size)); strings.Contains(s, "…") {
		t.Error("Format of a million bytes was cut short")
	}
}
