package codec

import (
	"encoding"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// maxIndirect is the most pointers and interfaces a value may have in a
// row, with no array or map between them. Real values have one or two;
// only a loop of pointers and interfaces has more than a few.
const maxIndirect = 16

// shape is what the check knows of a type before it sees a value.
type shape struct {
	// fixed reports that every value of the type nests at most depth
	// levels, holds no array or map of more than width elements, and
	// holds a cbor.Marshaler only if custom is set: the type has no
	// slice, map or interface and does not recurse, so values need not
	// be visited. Of a struct that is not fixed, depth, width and custom
	// say the same of its fixed fields, and fields lists the others.
	fixed  bool
	depth  int
	width  int
	custom bool
	text   bool // a string or byte string, written whole: as long as its value at least

	err    error   // the type cannot be encoded
	fields []field // of a struct that is not fixed: the fields to visit
}

// field is a struct field the encoder may write.
type field struct {
	index []int // for reflect.Value.FieldByIndexErr, through embedded structs
	typ   reflect.Type
}

var (
	typeTag             = reflect.TypeFor[cbor.Tag]()
	typeMarshaler       = reflect.TypeFor[cbor.Marshaler]()
	typeBinaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// shapes caches the shape of every type checked so far, as encoding/json
// caches its encoders: a shape is a function of the type alone, so the
// cache changes nothing a caller can see but the cost.
var shapes sync.Map // reflect.Type → *shape

func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	return analyse(t, make(map[reflect.Type]bool))
}

// analyse computes and caches t's shape. open holds the types whose shapes
// are being computed further up: meeting one of them again means that t
// recurses, so it is not fixed. Every type found so is on a cycle (it
// reaches a type that reaches it), so the shape cached for it, not fixed,
// is right; only the fields of not-fixed shapes, which values are
// visited for, are used.
func analyse(t reflect.Type, open map[reflect.Type]bool) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	if open[t] {
		return &shape{}
	}
	open[t] = true
	defer delete(open, t)
	s, _ := shapes.LoadOrStore(t, compute(t, open))
	return s.(*shape)
}

// compute works out t's shape, taking the encoder's view of the type:
// the order of the cases is the order of getEncodeFuncInternal in
// fxamacker/cbor (encode.go).
func compute(t reflect.Type, open map[reflect.Type]bool) *shape {
	if t.Kind() == reflect.Pointer {
		// The encoder follows pointers to the first value that is not
		// one, and writes null for a nil pointer on the way.
		base, err := pointee(t)
		if err != nil {
			return &shape{err: err}
		}
		return analyse(base, open)
	}
	switch {
	case t == typeTag:
		return &shape{} // its Content is an interface
	case selfEncoding(t):
		return &shape{fixed: true, custom: reflect.PointerTo(t).Implements(typeMarshaler)}
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Map:
		s := &shape{}
		if t.Kind() == reflect.Map {
			s.err = firstErr(analyse(t.Key(), open), analyse(t.Elem(), open))
		}
		return s
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &shape{fixed: true, text: true} // a byte string
		}
		e := analyse(t.Elem(), open)
		if t.Kind() == reflect.Slice {
			return &shape{err: e.err}
		}
		return &shape{fixed: e.fixed, depth: 1 + e.depth, width: max(t.Len(), e.width), custom: e.custom, err: e.err}
	case reflect.Struct:
		fs := fieldsOf(t)
		s := &shape{fixed: true, depth: 1, width: len(fs)}
		for _, f := range fs {
			fsh := analyse(f.typ, open)
			s.err = firstErr(s, fsh)
			if !fsh.fixed {
				s.fixed = false
				s.fields = append(s.fields, f)
				continue
			}
			s.depth = max(s.depth, 1+fsh.depth)
			s.width = max(s.width, fsh.width)
			s.custom = s.custom || fsh.custom
		}
		if s.err != nil {
			s.fixed = false
		}
		return s
	}
	// A number, a string, a bool; the encoder reports the rest.
	return &shape{fixed: true, text: t.Kind() == reflect.String}
}

func firstErr(a, b *shape) error {
	if a.err != nil {
		return a.err
	}
	return b.err
}

// selfEncoding reports whether the encoder writes t's values by a method
// or a rule of its own rather than by t's kind.
func selfEncoding(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[time.Time](), reflect.TypeFor[big.Int]():
		return true
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(typeMarshaler) || pt.Implements(typeBinaryMarshaler)
}

// pointee returns the first type along t's chain of pointer types that is
// not a pointer. A type that is a pointer to itself (type P *P) has none,
// and the encoder would loop for ever looking for it.
func pointee(t reflect.Type) (reflect.Type, error) {
	seen := map[reflect.Type]bool{}
	for t.Kind() == reflect.Pointer {
		if seen[t] {
			return nil, fmt.Errorf("codec: type %v cannot be encoded: it is a pointer to itself", t)
		}
		seen[t] = true
		t = t.Elem()
	}
	return t, nil
}

// fieldsOf returns the fields of struct type t that the encoder may
// write: exported fields and those of embedded structs, which it writes as
// t's own, less the fields tagged "-". The encoder writes only one of
// several fields with the same name; checking them all may refuse a value
// for a field that would not be written, never the reverse.
func fieldsOf(t reflect.Type) []field {
	type embedded struct {
		t     reflect.Type
		index []int
	}
	var fs []field
	seen := map[reflect.Type]bool{t: true}
	for level := []embedded{{t: t}}; len(level) > 0; {
		var next []embedded
		for _, e := range level {
			for i := range e.t.NumField() {
				f := e.t.Field(i)
				ft, err := pointee(f.Type)
				if err != nil {
					ft = f.Type // checked, and refused, as a field
				}
				isStruct := ft.Kind() == reflect.Struct
				if !f.IsExported() && !(f.Anonymous && isStruct) {
					continue
				}
				tag := f.Tag.Get("cbor")
				if tag == "" {
					tag = f.Tag.Get("json")
				}
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				index := append(e.index[:len(e.index):len(e.index)], i)
				switch {
				case !f.Anonymous || !isStruct || name != "":
					fs = append(fs, field{index: index, typ: f.Type})
				case !seen[ft]:
					seen[ft] = true
					next = append(next, embedded{t: ft, index: index})
				}
			}
		}
		level = next
	}
	return fs
}

// walker checks one value.
type walker struct {
	limits Limits
	typ    reflect.Type // of the value checked, for errors
	size   int          // bytes the encoding takes at least
	custom bool         // a cbor.Marshaler was met
	visits int          // values visited
}

// walk checks v, which sits inside level arrays and maps, after hops
// pointers and interfaces.
func (w *walker) walk(v reflect.Value, level, hops int) error {
	w.visits++
	if v.Kind() == reflect.Interface { // never fixed: no need of its shape
		return w.indirect(v, level, hops)
	}
	s := shapeOf(v.Type())
	switch {
	case s.err != nil:
		return s.err
	case s.fixed:
		n := 1
		if s.text && v.Kind() != reflect.Pointer {
			n = max(v.Len(), 1)
		}
		return w.fixed(s, level, n)
	case v.Kind() == reflect.Pointer:
		return w.indirect(v, level, hops)
	}
	level++
	if level > w.limits.Depth {
		return w.tooDeep()
	}
	if err := w.grow(1); err != nil {
		return err
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		n := v.Len()
		if n > w.limits.Elements {
			return fmt.Errorf("codec: value of type %v holds an array of %d elements, at most %d", w.typ, n, w.limits.Elements)
		}
		if e := shapeOf(v.Type().Elem()); e.fixed {
			return w.fixed(e, level, n)
		}
		for i := range n {
			if err := w.walk(v.Index(i), level, 0); err != nil {
				return err
			}
		}
	case reflect.Map:
		n := v.Len()
		if n > w.limits.Elements {
			return fmt.Errorf("codec: value of type %v holds a map of %d pairs, at most %d", w.typ, n, w.limits.Elements)
		}
		k, e := shapeOf(v.Type().Key()), shapeOf(v.Type().Elem())
		for _, s := range []*shape{k, e} {
			if s.fixed {
				if err := w.fixed(s, level, n); err != nil {
					return err
				}
			}
		}
		if k.fixed && e.fixed {
			return nil
		}
		for it := v.MapRange(); it.Next(); {
			if !k.fixed {
				if err := w.walk(it.Key(), level, 0); err != nil {
					return err
				}
			}
			if !e.fixed {
				if err := w.walk(it.Value(), level, 0); err != nil {
					return err
				}
			}
		}
	case reflect.Struct:
		if v.Type() == typeTag {
			return w.walk(v.FieldByName("Content"), level, 0)
		}
		if err := w.fixed(s, level-1, 0); err != nil { // the fixed fields
			return err
		}
		for _, f := range s.fields {
			fv, err := v.FieldByIndexErr(f.index)
			if err != nil {
				continue // through a nil embedded pointer: not written
			}
			if err := w.walk(fv, level, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// indirect checks what the pointer or interface v holds.
func (w *walker) indirect(v reflect.Value, level, hops int) error {
	if v.IsNil() {
		return w.grow(1)
	}
	if hops == maxIndirect {
		return fmt.Errorf("codec: value of type %v has more than %d pointers and interfaces in a row (is it cyclic?)", w.typ, maxIndirect)
	}
	return w.walk(v.Elem(), level, hops+1)
}

// fixed checks values of the fixed shape s inside level arrays and maps,
// which take n bytes at least (one each, or a string's length).
func (w *walker) fixed(s *shape, level, n int) error {
	if level+s.depth > w.limits.Depth {
		return w.tooDeep()
	}
	if s.width > w.limits.Elements {
		return fmt.Errorf("codec: value of type %v holds an array or map of %d elements, at most %d", w.typ, s.width, w.limits.Elements)
	}
	w.custom = w.custom || s.custom
	return w.grow(n)
}

// grow counts n more bytes of the encoding.
func (w *walker) grow(n int) error {
	w.size += n
	if w.limits.Size > 0 && w.size > w.limits.Size {
		return fmt.Errorf("%w: value of type %v: %d bytes or more, at most %s", ErrTooLarge, w.typ, w.size, sizeText(w.limits.Size))
	}
	return nil
}

func (w *walker) tooDeep() error {
	return fmt.Errorf("codec: value of type %v nested deeper than %d levels (is it cyclic?)", w.typ, w.limits.Depth)
}
