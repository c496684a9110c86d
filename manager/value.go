package manager

import "context"

// A Value is a proxy for a single value held by the server. A new Value
// holds the zero value of T.
type Value[T any] struct{ r *ref }

// OpenValue returns a proxy for the value named name on c's server,
// creating one if there is none.
func OpenValue[T any](ctx context.Context, c *Client, name string) (*Value[T], error) {
	return openProxy(ctx, c, kindValue, name, 0, func(r *ref) *Value[T] { return &Value[T]{r} })
}

// Name returns the value's name.
func (v *Value[T]) Name() string { return v.r.name }

// Load returns the value.
func (v *Value[T]) Load(ctx context.Context) (T, error) {
	x, _, err := v.load(ctx)
	return x, err
}

func (v *Value[T]) load(ctx context.Context) (T, uint64, error) {
	var x T
	var ver uint64
	cl, err := v.r.call(ctx, opValueLoad, nil)
	if err != nil {
		return x, 0, err
	}
	err = decodeResults(cl, func(r *results) { r.uint(&ver); into(r, &x) })
	return x, ver, v.r.wrapErr(err)
}

// Store sets the value.
func (v *Value[T]) Store(ctx context.Context, x T) error {
	return v.r.versionOp(ctx, opValueStore, func(w *frameWriter) error { return appendItem(w, x) })
}

// Swap sets the value and returns the old one.
func (v *Value[T]) Swap(ctx context.Context, x T) (T, error) {
	return valueOp[T](ctx, v.r, opValueSwap, func(w *frameWriter) error { return appendItem(w, x) })
}

// CompareAndSwap sets the value to new if it encodes equal to old, and
// reports whether it did.
func (v *Value[T]) CompareAndSwap(ctx context.Context, old, new T) (bool, error) {
	return v.r.boolOp(ctx, opValueCAS, func(w *frameWriter) error { return put2(w, old, new) })
}

// Add atomically adds delta and returns the sum. T must be a number type;
// integers add exactly. A stored value that is not a number, and a sum
// that T cannot hold (an int8 past 127, a float32 overflowing to
// infinity, a float for an integer type), are ErrType, and then nothing is
// stored.
func (v *Value[T]) Add(ctx context.Context, delta T) (T, error) {
	return valueOp[T](ctx, v.r, opValueAdd, addArgs[T](func(w *frameWriter) error { return appendItem(w, delta) }))
}

// Update atomically replaces the value with f's result and returns it. f
// runs in the caller, again whenever another client changed the value in
// between, so it must have no side effects. An error from f is returned as
// is and nothing is stored.
func (v *Value[T]) Update(ctx context.Context, f func(old T) (T, error)) (T, error) {
	load := func() (T, uint64, error) { return v.load(ctx) }
	store := func(x T, ver uint64) (bool, error) {
		return v.r.setIf(ctx, opValueSetIf, func(w *frameWriter) error { return appendItem(w, x) }, ver)
	}
	return optimistic(ctx, load, func(old T, _ uint64) (T, error) { return f(old) }, store)
}
