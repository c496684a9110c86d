// Package layout decides which Go types may live in shared memory and
// describes their memory layout in a form other processes can check and
// read.
//
// A type may be shared when it is fixed-size and holds no pointers: booleans,
// integers, floats, complex numbers, and arrays and structs of those. The
// garbage collector does not scan shared memory, so a pointer stored there
// would dangle, and it would mean nothing in another process anyway.
//
// A descriptor is Go syntax for the type's shape with names of defined
// types resolved to their underlying types and int, uint and uintptr spelled
// with their sizes: "int64", "[4]float64", "struct { N int64; Sum float64 }".
// Two types with equal descriptors have identical layouts; the fingerprint
// is a hash of the descriptor.
package layout

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
)

// ErrUnshareable reports a type that cannot live in shared memory.
var ErrUnshareable = errors.New("type cannot live in shared memory")

// TypeError explains why a type cannot be shared: Path names the offending
// field or element within Type ("" when it is Type itself).
type TypeError struct {
	Type string
	Path string
	Kind string
}

func (e *TypeError) Error() string {
	where := "it"
	switch {
	case strings.HasPrefix(e.Path, "["):
		where = "element " + e.Path
	case e.Path != "":
		where = "field " + e.Path
	}
	return fmt.Sprintf("type %s cannot live in shared memory: %s is %s", e.Type, where, Article(e.Kind))
}

// Article returns noun with "a" or "an" before it, as its first letter
// asks: "an interface", "a map", "an array".
func Article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// Unwrap makes errors.Is(err, ErrUnshareable) hold.
func (e *TypeError) Unwrap() error { return ErrUnshareable }

// Check reports whether values of t may live in shared memory. The error
// names the first field or element that holds a pointer, slice, map, string,
// interface, channel or function.
func Check(t reflect.Type) error {
	if path, bad := firstUnshareable(t, ""); bad != nil {
		kind := bad.Kind().String()
		if bad.String() != kind {
			kind += " (" + bad.String() + ")"
		}
		return &TypeError{Type: t.String(), Path: path, Kind: kind}
	}
	if t.Size() == 0 {
		return &TypeError{Type: t.String(), Kind: "zero-size type"}
	}
	if t.Size() > MaxSize {
		return &TypeError{Type: t.String(), Kind: fmt.Sprintf("type of %d bytes, larger than the %d a segment holds", t.Size(), int64(MaxSize))}
	}
	return nil
}

// MaxSize bounds the types Check and Parse accept: 1 TiB, the largest
// segment.
const MaxSize = 1 << 40

// firstUnshareable returns the path to the first part of t that cannot be
// shared, and that part's type, or a nil type when all of t can be shared.
func firstUnshareable(t reflect.Type, path string) (string, reflect.Type) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return "", nil
	case reflect.Array:
		return firstUnshareable(t.Elem(), path+"[i]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			p := f.Name
			if path != "" {
				p = path + "." + f.Name
			}
			if fp, bad := firstUnshareable(f.Type, p); bad != nil {
				return fp, bad
			}
		}
		return "", nil
	default:
		return path, t
	}
}

// Describe returns the canonical descriptor of t, which must pass Check.
func Describe(t reflect.Type) string {
	var b strings.Builder
	describe(&b, t)
	return b.String()
}

func describe(b *strings.Builder, t reflect.Type) {
	switch t.Kind() {
	case reflect.Int, reflect.Uint, reflect.Uintptr:
		prefix := "int"
		if t.Kind() != reflect.Int {
			prefix = "uint"
		}
		b.WriteString(prefix + strconv.Itoa(int(t.Size())*8))
	case reflect.Array:
		b.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		describe(b, t.Elem())
	case reflect.Struct:
		b.WriteString("struct {")
		for i := range t.NumField() {
			if i > 0 {
				b.WriteString(";")
			}
			f := t.Field(i)
			b.WriteString(" " + f.Name + " ")
			describe(b, f.Type)
		}
		if t.NumField() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("}")
	default:
		b.WriteString(t.Kind().String())
	}
}

// Fingerprint hashes a descriptor.
func Fingerprint(desc string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(desc))
	return h.Sum64()
}

// A Run is a set of scalars of one kind inside a type, found by a
// rectangular walk: the scalar at Off plus i0*Dims[0].Stride +
// i1*Dims[1].Stride + ... for every 0 <= ik < Dims[k].Count. A lone
// scalar has no Dims; the elements of a [1<<20]uint8 are one run of one
// dimension; field F of every element of a [100]struct{ A int8; F
// [3]int64 } is one run of two dimensions.
type Run struct {
	Off  uintptr
	Kind reflect.Kind
	Dims []Dim // outermost first
}

// A Dim is one dimension of a Run.
type Dim struct{ Count, Stride uintptr }

// Runs describes the scalars of t as runs, one per scalar field of t's
// structs however deep (so as many as t has distinct fields, not as many
// as it has scalars: arrays cost a dimension, not a run per element, and
// an array of arrays whose elements lie back to back is one dimension),
// and reports whether all scalars are numbers (integers, floats or
// complex numbers), which is what field-wise addition needs. Zero-length
// arrays hold no runs.
func Runs(t reflect.Type) (runs []Run, numeric bool) {
	numeric = true
	var walk func(t reflect.Type, off uintptr, dims []Dim)
	walk = func(t reflect.Type, off uintptr, dims []Dim) {
		switch t.Kind() {
		case reflect.Array:
			switch t.Len() {
			case 0:
			case 1:
				walk(t.Elem(), off, dims)
			default:
				walk(t.Elem(), off, append(dims[:len(dims):len(dims)], Dim{uintptr(t.Len()), t.Elem().Size()}))
			}
		case reflect.Struct:
			for i := range t.NumField() {
				walk(t.Field(i).Type, off+t.Field(i).Offset, dims)
			}
		default:
			if t.Kind() == reflect.Bool {
				numeric = false
			}
			runs = append(runs, Run{Off: off, Kind: t.Kind(), Dims: collapse(dims)})
		}
	}
	walk(t, 0, nil)
	return runs, numeric
}

// collapse merges the dimensions of a run wherever an outer dimension's
// stride spans exactly the inner one, as the rows of a [3][4]int32 do, and
// returns a copy.
func collapse(dims []Dim) []Dim {
	var out []Dim
	for _, d := range dims {
		out = append(out, d)
		for n := len(out); n >= 2 && out[n-2].Stride == out[n-1].Count*out[n-1].Stride; n-- {
			out[n-2] = Dim{out[n-2].Count * out[n-1].Count, out[n-1].Stride}
			out = out[:n-1]
		}
	}
	return out
}
