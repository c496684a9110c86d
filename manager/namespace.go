package manager

import (
	"context"
	"fmt"
	"io/fs"
)

// A Namespace is a proxy for a set of named fields held by the server, like
// Python's Manager().Namespace(). Fields may hold values of different
// types; Get decodes into whatever the caller points to.
type Namespace struct{ r *ref }

// OpenNamespace returns a proxy for the namespace named name on c's
// server, creating an empty one if there is none.
func OpenNamespace(ctx context.Context, c *Client, name string) (*Namespace, error) {
	return openProxy(ctx, c, kindNamespace, name, 0, func(r *ref) *Namespace { return &Namespace{r} })
}

// Name returns the namespace's name.
func (n *Namespace) Name() string { return n.r.name }

// Get decodes the field into the value ptr points to. A field that was
// never set is an error matching fs.ErrNotExist.
func (n *Namespace) Get(ctx context.Context, field string, ptr any) error {
	cl, err := n.r.call(ctx, opMapGet, func(w *frameWriter) error { return appendItem(w, field) })
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("%s %q: no field %q: %w", n.r.k, n.r.name, field, fs.ErrNotExist)
		}
		return err
	}
	return n.r.wrapErr(decodeResults(cl, func(r *results) { r.value(ptr) }))
}

// Set sets the field to v.
func (n *Namespace) Set(ctx context.Context, field string, v any) error {
	return n.r.versionOp(ctx, opMapSet, func(w *frameWriter) error { return put2(w, field, v) })
}

// Delete removes the field and reports whether it was set.
func (n *Namespace) Delete(ctx context.Context, field string) (bool, error) {
	return n.r.boolOp(ctx, opMapDelete, func(w *frameWriter) error { return appendItem(w, field) })
}

// Fields returns the names of the fields that are set, in the order they
// were first set.
func (n *Namespace) Fields(ctx context.Context) ([]string, error) {
	return listOp[string](ctx, n.r, opMapKeys, nil)
}
