package manager

import (
	"context"
	"iter"
)

// A Dict is a proxy for a dictionary held by the server, like the proxy
// Python's Manager().dict() returns. Keys and values travel CBOR-encoded,
// so they may be anything github.com/fxamacker/cbor/v2 encodes; keys are
// encoded deterministically, and two keys are the same key when their
// encodings are equal. Keys keep the order in which they were first set.
//
// Every method is one atomic operation on the server. Read-modify-write
// goes through Add, CompareAndSwap or Update, never through Get then Set,
// which loses updates when processes race (as `d[k] += 1` through a
// Python proxy does).
type Dict[K comparable, V any] struct{ r *ref }

// OpenDict returns a proxy for the dict named name on c's server, creating
// an empty one if there is none. It fails with ErrKind if the name is
// taken by an object of another kind.
func OpenDict[K comparable, V any](ctx context.Context, c *Client, name string) (*Dict[K, V], error) {
	return openProxy(ctx, c, kindDict, name, 0, func(r *ref) *Dict[K, V] { return &Dict[K, V]{r} })
}

// Name returns the dict's name.
func (d *Dict[K, V]) Name() string { return d.r.name }

// Get returns the value under key, and whether there was one.
func (d *Dict[K, V]) Get(ctx context.Context, key K) (V, bool, error) {
	var v V
	cl, err := d.r.call(ctx, opMapGet, func(w *frameWriter) error { return appendItem(w, key) })
	if err != nil {
		if isNotFound(err) {
			return v, false, nil
		}
		return v, false, err
	}
	err = decodeResults(cl, func(r *results) { into(r, &v) })
	return v, err == nil, d.r.wrapErr(err)
}

// Set stores val under key.
func (d *Dict[K, V]) Set(ctx context.Context, key K, val V) error {
	return d.r.versionOp(ctx, opMapSet, func(w *frameWriter) error { return put2(w, key, val) })
}

// Delete removes key and reports whether it was present.
func (d *Dict[K, V]) Delete(ctx context.Context, key K) (bool, error) {
	return d.r.boolOp(ctx, opMapDelete, func(w *frameWriter) error { return appendItem(w, key) })
}

// Len returns the number of keys.
func (d *Dict[K, V]) Len(ctx context.Context) (int, error) { return d.r.lenOp(ctx, opMapLen, nil) }

// Keys returns the keys, in the order they were first set.
func (d *Dict[K, V]) Keys(ctx context.Context) ([]K, error) {
	return listOp[K](ctx, d.r, opMapKeys, nil)
}

// Items returns a snapshot of the dict's keys and values, in the order the
// keys were first set (as Keys).
func (d *Dict[K, V]) Items(ctx context.Context) ([]Item[K, V], error) {
	cl, err := d.r.call(ctx, opMapItems, nil)
	if err != nil {
		return nil, err
	}
	var items []Item[K, V]
	err = decodeResults(cl, func(r *results) {
		for r.more() {
			var it Item[K, V]
			into(r, &it.Key)
			into(r, &it.Value)
			items = append(items, it)
		}
	})
	return items, d.r.wrapErr(err)
}

// An Item is a key and its value.
type Item[K, V any] struct {
	Key   K
	Value V
}

// All returns an iterator over a snapshot of the dict taken by the call:
// one round trip, however many items.
func (d *Dict[K, V]) All(ctx context.Context) (iter.Seq2[K, V], error) {
	items, err := d.Items(ctx)
	if err != nil {
		return nil, err
	}
	return func(yield func(K, V) bool) {
		for _, it := range items {
			if !yield(it.Key, it.Value) {
				return
			}
		}
	}, nil
}

// Clear removes every key.
func (d *Dict[K, V]) Clear(ctx context.Context) error { return d.r.noResult(ctx, opMapClear, nil) }

// SetDefault returns the value under key, first storing def there if the
// key is absent.
func (d *Dict[K, V]) SetDefault(ctx context.Context, key K, def V) (V, error) {
	return valueOp[V](ctx, d.r, opMapSetDefault, func(w *frameWriter) error { return put2(w, key, def) })
}

// Pop removes key and returns its value, and whether it was present.
func (d *Dict[K, V]) Pop(ctx context.Context, key K) (V, bool, error) {
	v, err := keptValueOp[V](ctx, d.r, opMapPop, func(w *frameWriter) error { return appendItem(w, key) })
	if isNotFound(err) {
		return v, false, nil
	}
	return v, err == nil, err
}

// SetMany stores every key and value of m in one atomic operation, like
// Python's dict.update.
func (d *Dict[K, V]) SetMany(ctx context.Context, m map[K]V) error {
	return d.r.noResult(ctx, opMapUpdate, func(w *frameWriter) error {
		for k, v := range m {
			if err := appendItem(w, k); err != nil {
				return err
			}
			if err := appendItem(w, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Add atomically adds delta to the number under key (a missing key counts
// as zero) and returns the sum. V must be a number type; integers add
// exactly. A stored value that is not a number, and a sum that V cannot
// hold (an int8 past 127, a float32 overflowing to infinity, a float for
// an integer type), are ErrType, and then nothing is stored.
func (d *Dict[K, V]) Add(ctx context.Context, key K, delta V) (V, error) {
	return valueOp[V](ctx, d.r, opMapAdd, addArgs[V](func(w *frameWriter) error { return put2(w, key, delta) }))
}

// CompareAndSwap stores new under key if the value there encodes equal to
// old, and reports whether it did. A missing key never matches.
func (d *Dict[K, V]) CompareAndSwap(ctx context.Context, key K, old, new V) (bool, error) {
	return d.r.boolOp(ctx, opMapCAS, func(w *frameWriter) error { return put3(w, key, old, new) })
}

// Update atomically replaces the value under key with f's result and
// returns it. f gets the current value and whether the key is present; it
// runs in the caller, and again whenever another client changed the key in
// between (optimistic concurrency with per-key versions), so it must have
// no side effects. An error from f is returned as is and nothing is
// stored.
func (d *Dict[K, V]) Update(ctx context.Context, key K, f func(old V, ok bool) (V, error)) (V, error) {
	load := func() (old V, ver uint64, err error) {
		cl, err := d.r.call(ctx, opMapGetVersion, func(w *frameWriter) error { return appendItem(w, key) })
		if err != nil {
			return old, 0, err
		}
		err = decodeResults(cl, func(r *results) {
			r.uint(&ver)
			if ver != 0 {
				into(r, &old)
			}
		})
		return old, ver, d.r.wrapErr(err)
	}
	store := func(val V, ver uint64) (bool, error) {
		return d.r.setIf(ctx, opMapSetIf, func(w *frameWriter) error { return put2(w, key, val) }, ver)
	}
	return optimistic(ctx, load, func(old V, ver uint64) (V, error) { return f(old, ver != 0) }, store)
}

// optimistic is the loop of the Update methods: it loads a value and its
// version, computes the new value with f, and stores it if the version is
// unchanged, until a store succeeds, f or a call fails, or ctx ends.
func optimistic[T any](ctx context.Context, load func() (T, uint64, error),
	f func(T, uint64) (T, error), store func(T, uint64) (bool, error)) (T, error) {
	var zero T
	for {
		old, ver, err := load()
		if err != nil {
			return zero, err
		}
		val, err := f(old, ver)
		if err != nil {
			return zero, err
		}
		if ok, err := store(val, ver); ok || err != nil {
			if err != nil {
				return zero, err
			}
			return val, nil
		}
		if err := ctx.Err(); err != nil {
			return zero, err
		}
	}
}

// setIf runs a conditional store (opMapSetIf, opValueSetIf): build appends
// the arguments before the version, and the store happens only if the
// version is still ver.
func (r *ref) setIf(ctx context.Context, o op, build func(*frameWriter) error, ver uint64) (bool, error) {
	cl, err := r.call(ctx, o, func(w *frameWriter) error {
		if err := build(w); err != nil {
			return err
		}
		w.uint(ver)
		return nil
	})
	if err != nil {
		return false, err
	}
	var swapped bool
	var cur uint64
	err = decodeResults(cl, func(res *results) { res.bool(&swapped); res.uint(&cur) })
	return swapped, r.wrapErr(err)
}

// Helpers shared by the proxies.

// isNotFound reports whether err is the server's "no such key".
func isNotFound(err error) bool { return isStatus(err, statusNoKey) }

func (r *ref) wrapErr(err error) error {
	if err == nil {
		return nil
	}
	return r.wrap(err)
}

// valueOp runs an operation whose one result is a stored value.
func valueOp[V any](ctx context.Context, r *ref, o op, build func(*frameWriter) error) (V, error) {
	cl, err := r.call(ctx, o, build)
	return decodeValue[V](r, cl, err)
}

// keptValueOp is valueOp for an operation whose result must not be lost
// (a Pop): it waits for the answer even after ctx ends (see session.keep).
func keptValueOp[V any](ctx context.Context, r *ref, o op, build func(*frameWriter) error) (V, error) {
	cl, err := r.keep(ctx, o, build)
	return decodeValue[V](r, cl, err)
}

// listOp runs an operation whose results are stored values (keys, list
// elements) and returns them in order.
func listOp[T any](ctx context.Context, r *ref, o op, build func(*frameWriter) error) ([]T, error) {
	cl, err := r.call(ctx, o, build)
	if err != nil {
		return nil, err
	}
	var out []T
	err = decodeResults(cl, func(res *results) {
		for res.more() {
			var v T
			into(res, &v)
			out = append(out, v)
		}
	})
	return out, r.wrapErr(err)
}

// decodeValue decodes the one stored value a call returned.
func decodeValue[V any](r *ref, cl *call, err error) (V, error) {
	var v V
	if err != nil {
		return v, err
	}
	err = decodeResults(cl, func(res *results) { into(res, &v) })
	return v, r.wrapErr(err)
}

func (r *ref) boolOp(ctx context.Context, o op, build func(*frameWriter) error) (bool, error) {
	cl, err := r.call(ctx, o, build)
	if err != nil {
		return false, err
	}
	var b bool
	err = decodeResults(cl, func(res *results) { res.bool(&b) })
	return b, r.wrapErr(err)
}

// lenOp runs an operation whose one result is a length.
func (r *ref) lenOp(ctx context.Context, o op, build func(*frameWriter) error) (int, error) {
	cl, err := r.call(ctx, o, build)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = decodeResults(cl, func(res *results) { res.uint(&n) })
	return int(n), r.wrapErr(err)
}

// versionOp runs an operation whose one result is a version, unused.
func (r *ref) versionOp(ctx context.Context, o op, build func(*frameWriter) error) error {
	cl, err := r.call(ctx, o, build)
	if err != nil {
		return err
	}
	var ver uint64
	return r.wrapErr(decodeResults(cl, func(res *results) { res.uint(&ver) }))
}

func (r *ref) noResult(ctx context.Context, o op, build func(*frameWriter) error) error {
	cl, err := r.call(ctx, o, build)
	if err != nil {
		return err
	}
	return r.wrapErr(decodeResults(cl, func(*results) {}))
}
