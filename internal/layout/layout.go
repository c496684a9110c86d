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
	return fmt.Sprintf("type %s cannot live in shared memory: %s is a %s", e.Type, where, e.Kind)
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
	return nil
}

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

// Leaf is one scalar inside a type: its byte offset and kind.
type Leaf struct {
	Off  uintptr
	Kind reflect.Kind
}

// Leaves lists the scalars of t in memory order, expanding arrays and
// structs, and reports whether all of them are numbers (integers, floats or
// complex numbers), which is what field-wise addition needs.
func Leaves(t reflect.Type) (leaves []Leaf, numeric bool) {
	numeric = true
	var walk func(t reflect.Type, off uintptr)
	walk = func(t reflect.Type, off uintptr) {
		switch t.Kind() {
		case reflect.Array:
			for i := range t.Len() {
				walk(t.Elem(), off+uintptr(i)*t.Elem().Size())
			}
		case reflect.Struct:
			for i := range t.NumField() {
				walk(t.Field(i).Type, off+t.Field(i).Offset)
			}
		default:
			if t.Kind() == reflect.Bool {
				numeric = false
			}
			leaves = append(leaves, Leaf{Off: off, Kind: t.Kind()})
		}
	}
	walk(t, 0)
	return leaves, numeric
}
