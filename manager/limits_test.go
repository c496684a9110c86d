//go:build linux

package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/process"
)

// link is a value type that can hold a pointer, and so a cycle.
type link struct {
	N    int
	Next *link
}

// sendBeyondLimits dials the server at address and sends, through each
// kind of proxy call, values the server's decoder refuses: cyclic ones,
// nested deeper than 32 levels, and with more than 1<<20 elements. It
// returns each call's error text. It runs in a worker process, so that a
// stack overflow in the encoder fails the test rather than ending it.
var sendBeyondLimits = process.Register("manager-test/sendBeyondLimits", func(ctx context.Context, address string) (map[string]string, error) {
	c, err := Dial(ctx, "unix", address, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d, err := OpenDict[string, any](ctx, c, "any")
	if err != nil {
		return nil, err
	}
	links, err := OpenList[*link](ctx, c, "links")
	if err != nil {
		return nil, err
	}
	v, err := OpenValue[*link](ctx, c, "link")
	if err != nil {
		return nil, err
	}
	self := &link{N: 1}
	self.Next = self
	loop := map[string]any{}
	loop["loop"] = loop
	var deep any = 1
	for range 33 {
		deep = []any{deep}
	}
	out := map[string]string{}
	note := func(name string, err error) {
		switch {
		case err == nil:
			out[name] = "<nil>"
		case errors.Is(err, ErrBadRequest):
			out[name] = "the server refused it: " + err.Error()
		default:
			out[name] = err.Error()
		}
	}
	note("Dict.Set cyclic map", d.Set(ctx, "k", loop))
	note("Dict.Set 33 levels", d.Set(ctx, "k", deep))
	note("Dict.Set 1<<20+1 elements", d.Set(ctx, "k", make([]int, 1<<20+1)))
	_, err = links.Append(ctx, self)
	note("List.Append cyclic", err)
	note("Value.Store cyclic", v.Store(ctx, self))
	b := c.NewBatch()
	f := v.StoreIn(b, self)
	if err := b.Do(ctx); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	_, err = f.Result()
	note("Value.StoreIn cyclic", err)
	// The connection works on, and nothing was stored.
	n, err := d.Len(ctx)
	note("Dict.Len", err)
	out["Dict entries"] = fmt.Sprint(n)
	return out, nil
})

// TestSendBeyondLimits: the client refuses, before sending, what the
// server's decoder would refuse, and a cyclic value fails its call instead
// of overflowing the encoder's stack.
func TestSendBeyondLimits(t *testing.T) {
	ts := startServer(t, transport{name: "unix", network: "unix", client: Options{NoSharedMemory: true}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := sendBeyondLimits.Run(ctx, ts.address)
	if err != nil {
		t.Fatalf("client worker: %v", err)
	}
	for name, want := range map[string]string{
		"Dict.Set cyclic map":       "nested deeper than 32 levels (is it cyclic?)",
		"Dict.Set 33 levels":        "nested deeper than 32 levels",
		"Dict.Set 1<<20+1 elements": "array of 1048577 elements, at most 1048576",
		"List.Append cyclic":        "nested deeper than 32 levels (is it cyclic?)",
		"Value.Store cyclic":        "nested deeper than 32 levels (is it cyclic?)",
		"Value.StoreIn cyclic":      "nested deeper than 32 levels (is it cyclic?)",
		"Dict.Len":                  "<nil>",
		"Dict entries":              "0",
	} {
		if !strings.Contains(got[name], want) || strings.HasPrefix(got[name], "the server") {
			t.Errorf("%s: %s; want the client's error saying %q", name, got[name], want)
		}
	}
}
