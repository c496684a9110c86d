package manager

import "context"

// A List is a proxy for a list held by the server, like the proxy Python's
// Manager().list() returns. Indexes may be negative, counting from the end
// as in Python. Each method is one atomic operation on the server.
type List[T any] struct{ r *ref }

// OpenList returns a proxy for the list named name on c's server, creating
// an empty one if there is none.
func OpenList[T any](ctx context.Context, c *Client, name string) (*List[T], error) {
	return openProxy(ctx, c, kindList, name, 0, func(r *ref) *List[T] { return &List[T]{r} })
}

// Name returns the list's name.
func (l *List[T]) Name() string { return l.r.name }

// Append adds v at the end and returns the new length.
func (l *List[T]) Append(ctx context.Context, v T) (int, error) {
	return l.r.lenOp(ctx, opListAppend, func(w *frameWriter) error { return appendItem(w, v) })
}

// Extend adds vs at the end, in one atomic operation, and returns the new
// length.
func (l *List[T]) Extend(ctx context.Context, vs ...T) (int, error) {
	return l.r.lenOp(ctx, opListExtend, func(w *frameWriter) error {
		for _, v := range vs {
			if err := appendItem(w, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Get returns the element at index i; an index out of range is ErrIndex.
func (l *List[T]) Get(ctx context.Context, i int) (T, error) {
	return valueOp[T](ctx, l.r, opListGet, func(w *frameWriter) error { w.int(int64(i)); return nil })
}

// Set replaces the element at index i.
func (l *List[T]) Set(ctx context.Context, i int, v T) error {
	return l.r.noResult(ctx, opListSet, func(w *frameWriter) error {
		w.int(int64(i))
		return appendItem(w, v)
	})
}

// Insert inserts v before index i. As in Python, an index past either end
// inserts at that end.
func (l *List[T]) Insert(ctx context.Context, i int, v T) error {
	return l.r.noResult(ctx, opListInsert, func(w *frameWriter) error {
		w.int(int64(i))
		return appendItem(w, v)
	})
}

// Pop removes and returns the element at index i (-1 for the last).
func (l *List[T]) Pop(ctx context.Context, i int) (T, error) {
	return keptValueOp[T](ctx, l.r, opListPop, func(w *frameWriter) error { w.int(int64(i)); return nil })
}

// Remove removes the first element that encodes equal to v and reports
// whether there was one.
func (l *List[T]) Remove(ctx context.Context, v T) (bool, error) {
	return l.r.boolOp(ctx, opListRemove, func(w *frameWriter) error { return appendItem(w, v) })
}

// Len returns the number of elements.
func (l *List[T]) Len(ctx context.Context) (int, error) { return l.r.lenOp(ctx, opListLen, nil) }

// Slice returns the elements from index i up to j, clipped to the list as
// Python's l[i:j] is.
func (l *List[T]) Slice(ctx context.Context, i, j int) ([]T, error) {
	return listOp[T](ctx, l.r, opListSlice, func(w *frameWriter) error {
		w.int(int64(i))
		w.int(int64(j))
		return nil
	})
}

// Index returns the index of the first element that encodes equal to v, or
// -1 if there is none.
func (l *List[T]) Index(ctx context.Context, v T) (int, error) {
	cl, err := l.r.call(ctx, opListIndex, func(w *frameWriter) error { return appendItem(w, v) })
	if err != nil {
		return -1, err
	}
	var i int64
	err = decodeResults(cl, func(r *results) { r.int(&i) })
	return int(i), l.r.wrapErr(err)
}

// Clear removes every element.
func (l *List[T]) Clear(ctx context.Context) error { return l.r.noResult(ctx, opListClear, nil) }
