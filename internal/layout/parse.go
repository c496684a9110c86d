package layout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a parsed descriptor: enough to find every scalar in a value's
// bytes without the Go type at hand (the CLI reads segments written by other
// programs). Sizes and offsets follow the gc compiler's rules for 64-bit
// platforms.
type Type struct {
	Kind   string // a scalar kind ("int64", "bool", ...), "array" or "struct"
	Size   int
	Align  int
	Len    int     // arrays
	Elem   *Type   // arrays
	Fields []Field // structs
}

// Field is one field of a struct Type.
type Field struct {
	Name string
	Off  int
	Type *Type
}

var scalarSize = map[string]int{
	"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
	"int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8,
	"complex64": 8, "complex128": 16,
}

// maxParseDepth bounds nesting, since descriptors come from files that any
// process with write access may have scribbled on.
const maxParseDepth = 32

// Parse parses a descriptor produced by Describe. It accepts the types
// Check accepts, and rejects nesting deeper than 32 levels below the top
// and types larger than MaxSize bytes.
func Parse(desc string) (*Type, error) {
	p := parser{s: desc}
	t, err := p.typ(0)
	if err != nil {
		return nil, fmt.Errorf("layout: bad descriptor %q: %w", desc, err)
	}
	if p.s != "" {
		return nil, fmt.Errorf("layout: bad descriptor %q: trailing %q", desc, p.s)
	}
	return t, nil
}

type parser struct{ s string }

func (p *parser) skipSpace() { p.s = strings.TrimLeft(p.s, " ") }

func (p *parser) ident() string {
	i := 0
	for i < len(p.s) && (p.s[i] == '_' || p.s[i] >= '0' && p.s[i] <= '9' ||
		p.s[i] >= 'a' && p.s[i] <= 'z' || p.s[i] >= 'A' && p.s[i] <= 'Z' || p.s[i] >= 0x80) {
		i++
	}
	id := p.s[:i]
	p.s = p.s[i:]
	return id
}

func (p *parser) typ(depth int) (*Type, error) {
	if depth > maxParseDepth {
		return nil, errors.New("nested too deeply")
	}
	p.skipSpace()
	switch {
	case strings.HasPrefix(p.s, "["):
		end := strings.IndexByte(p.s, ']')
		if end < 0 {
			return nil, errors.New("unclosed [")
		}
		n, err := strconv.Atoi(p.s[1:end])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad array length %q", p.s[1:end])
		}
		p.s = p.s[end+1:]
		elem, err := p.typ(depth + 1)
		if err != nil {
			return nil, err
		}
		if elem.Size != 0 && n > MaxSize/elem.Size {
			return nil, errors.New("array too large")
		}
		return &Type{Kind: "array", Len: n, Elem: elem, Size: n * elem.Size, Align: elem.Align}, nil
	case strings.HasPrefix(p.s, "struct {"):
		p.s = p.s[len("struct {"):]
		t := &Type{Kind: "struct", Align: 1}
		off := 0
		for {
			p.skipSpace()
			if strings.HasPrefix(p.s, "}") {
				p.s = p.s[1:]
				break
			}
			if len(t.Fields) > 0 {
				if !strings.HasPrefix(p.s, ";") {
					return nil, errors.New("expected ; between fields")
				}
				p.s = p.s[1:]
				p.skipSpace()
			}
			name := p.ident()
			if name == "" {
				return nil, errors.New("expected field name")
			}
			ft, err := p.typ(depth + 1)
			if err != nil {
				return nil, err
			}
			off = alignUp(off, ft.Align)
			t.Fields = append(t.Fields, Field{Name: name, Off: off, Type: ft})
			off += ft.Size
			if off > MaxSize {
				return nil, errors.New("struct too large")
			}
			t.Align = max(t.Align, ft.Align)
		}
		// gc pads a struct whose last field has size zero, so that a pointer
		// to that field cannot point past the struct.
		if n := len(t.Fields); n > 0 && t.Fields[n-1].Type.Size == 0 && off > 0 {
			off++
		}
		t.Size = alignUp(off, t.Align)
		return t, nil
	default:
		name := p.ident()
		size, ok := scalarSize[name]
		if !ok {
			return nil, fmt.Errorf("unknown type %q", name)
		}
		align := size
		if strings.HasPrefix(name, "complex") {
			align = size / 2
		}
		return &Type{Kind: name, Size: size, Align: align}, nil
	}
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

// MaxFormat bounds the values (scalars, arrays and structs) that Format
// writes: an array of a billion empty structs has size zero but is no
// quick print.
const MaxFormat = 1 << 20

// Format renders b, the little-endian bytes of a value of type t, the way
// fmt's %+v renders Go values, up to MaxFormat values, then "…". b must be
// at least t.Size bytes long.
func (t *Type) Format(b []byte) string {
	var sb strings.Builder
	budget := MaxFormat
	t.format(&sb, b, &budget)
	return sb.String()
}

// format writes b as t to sb while budget lasts, and reports whether it
// did not run out.
func (t *Type) format(sb *strings.Builder, b []byte, budget *int) bool {
	le := binary.LittleEndian
	if *budget--; *budget < 0 {
		sb.WriteString("…")
		return false
	}
	switch t.Kind {
	case "array":
		sb.WriteByte('[')
		for i := range t.Len {
			if i > 0 {
				sb.WriteByte(' ')
			}
			if !t.Elem.format(sb, b[i*t.Elem.Size:], budget) {
				return false
			}
		}
		sb.WriteByte(']')
	case "struct":
		sb.WriteByte('{')
		for i, f := range t.Fields {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(f.Name + ":")
			if !f.Type.format(sb, b[f.Off:], budget) {
				return false
			}
		}
		sb.WriteByte('}')
	case "bool":
		sb.WriteString(strconv.FormatBool(b[0] != 0))
	case "int8":
		sb.WriteString(strconv.FormatInt(int64(int8(b[0])), 10))
	case "int16":
		sb.WriteString(strconv.FormatInt(int64(int16(le.Uint16(b))), 10))
	case "int32":
		sb.WriteString(strconv.FormatInt(int64(int32(le.Uint32(b))), 10))
	case "int64":
		sb.WriteString(strconv.FormatInt(int64(le.Uint64(b)), 10))
	case "uint8":
		sb.WriteString(strconv.FormatUint(uint64(b[0]), 10))
	case "uint16":
		sb.WriteString(strconv.FormatUint(uint64(le.Uint16(b)), 10))
	case "uint32":
		sb.WriteString(strconv.FormatUint(uint64(le.Uint32(b)), 10))
	case "uint64":
		sb.WriteString(strconv.FormatUint(le.Uint64(b), 10))
	case "float32":
		sb.WriteString(strconv.FormatFloat(float64(math.Float32frombits(le.Uint32(b))), 'g', -1, 32))
	case "float64":
		sb.WriteString(strconv.FormatFloat(math.Float64frombits(le.Uint64(b)), 'g', -1, 64))
	case "complex64":
		c := complex(math.Float32frombits(le.Uint32(b)), math.Float32frombits(le.Uint32(b[4:])))
		sb.WriteString(strconv.FormatComplex(complex128(c), 'g', -1, 64))
	case "complex128":
		c := complex(math.Float64frombits(le.Uint64(b)), math.Float64frombits(le.Uint64(b[8:])))
		sb.WriteString(strconv.FormatComplex(c, 'g', -1, 128))
	}
	return true
}
