package manager

import (
	"fmt"
	"time"
)

// args walks a request's arguments, remembering the first error so that a
// handler can read all its arguments and check once.
type args struct {
	it  items
	err error
}

func (a *args) fail(format string, v ...any) {
	if a.err == nil {
		a.err = failf(statusBadRequest, fmt.Sprintf(format, v...))
	}
}

// raw returns the next item unchecked: the caller stores it only after
// value() or compares it as bytes.
func (a *args) raw() []byte {
	if a.err != nil {
		return nil
	}
	if len(a.it) == 0 {
		a.fail("missing argument")
		return nil
	}
	var b []byte
	b, a.it = a.it.next()
	return b
}

// value returns the next item after checking that it is one well-formed
// CBOR data item within the decoding limits: the server stores only such.
func (a *args) value() []byte {
	b := a.raw()
	if a.err == nil {
		if err := wellformed(b); err != nil {
			a.fail("argument is not well-formed CBOR: %v", err)
			return nil
		}
	}
	return b
}

// arg decodes the next argument into a T; what names the type expected,
// for the error.
func arg[T any](a *args, what string) T {
	var v T
	if b := a.raw(); a.err == nil {
		if err := decMode.Unmarshal(b, &v); err != nil {
			a.fail("argument is not %s: %v", what, err)
		}
	}
	return v
}

func (a *args) int() int64   { return argNumber(a, decodeInt, "an integer") }
func (a *args) uint() uint64 { return argNumber(a, decodeUint, "an unsigned integer") }

func argNumber[T int64 | uint64](a *args, decode func([]byte) (T, error), what string) T {
	var v T
	if b := a.raw(); a.err == nil {
		var err error
		if v, err = decode(b); err != nil {
			a.fail("argument is not %s: %v", what, err)
		}
	}
	return v
}
func (a *args) text() string { return arg[string](a, "a text string") }

func (a *args) timeout() time.Duration { return time.Duration(a.int()) }

// numType returns the optional last argument of an Add, the type its sum
// must fit, or numAny if there is none.
func (a *args) numType() numType {
	if a.err != nil || len(a.it) == 0 {
		return numAny
	}
	t := a.uint()
	if a.err == nil && (t == uint64(numAny) || t >= uint64(numTypes)) {
		a.fail("unknown number type %d", t)
	}
	return numType(t)
}

// rest returns the remaining items, each checked with value().
func (a *args) rest() [][]byte {
	var out [][]byte
	for a.err == nil && len(a.it) > 0 {
		out = append(out, a.value())
	}
	return out
}

// done reports the first error, or an error if arguments are left over.
func (a *args) done() error {
	if a.err == nil && len(a.it) > 0 {
		a.fail("%d unexpected arguments", a.it.count())
	}
	if a.err != nil {
		return a.err
	}
	return nil
}
