package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shmkit/shmkit/internal/shmtest"
)

type point struct {
	X, Y int
	Tag  string
}

func TestDict(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		d, err := OpenDict[string, point](ctx, c, "points")
		must(t, err)
		if d.Name() != "points" {
			t.Errorf("Name = %q", d.Name())
		}
		if _, ok, err := d.Get(ctx, "a"); ok || err != nil {
			t.Fatalf("Get of a missing key = %v, %v; want false, nil", ok, err)
		}
		must(t, d.Set(ctx, "b", point{1, 2, "b"}))
		must(t, d.Set(ctx, "a", point{3, 4, "a"}))
		must(t, d.Set(ctx, "c", point{5, 6, "c"}))
		got, ok, err := d.Get(ctx, "a")
		if err != nil || !ok || got != (point{3, 4, "a"}) {
			t.Fatalf("Get = %v, %v, %v", got, ok, err)
		}
		if n, err := d.Len(ctx); n != 3 || err != nil {
			t.Errorf("Len = %d, %v; want 3", n, err)
		}
		keys, err := d.Keys(ctx)
		must(t, err)
		if diff := cmp.Diff([]string{"b", "a", "c"}, keys); diff != "" {
			t.Errorf("Keys not in insertion order (-want +got):\n%s", diff)
		}
		// Re-setting a key keeps its place.
		must(t, d.Set(ctx, "b", point{7, 8, "b2"}))
		items, err := d.Items(ctx)
		must(t, err)
		want := []Item[string, point]{{"b", point{7, 8, "b2"}}, {"a", point{3, 4, "a"}}, {"c", point{5, 6, "c"}}}
		if diff := cmp.Diff(want, items); diff != "" {
			t.Errorf("Items (-want +got):\n%s", diff)
		}
		seq, err := d.All(ctx)
		must(t, err)
		var n int
		for k, v := range seq {
			if k != want[n].Key || v != want[n].Value {
				t.Errorf("All item %d = %v, %v", n, k, v)
			}
			n++
		}
		if n != 3 {
			t.Errorf("All yielded %d items", n)
		}
		if ok, err := d.Delete(ctx, "a"); !ok || err != nil {
			t.Errorf("Delete = %v, %v", ok, err)
		}
		if ok, err := d.Delete(ctx, "a"); ok || err != nil {
			t.Errorf("second Delete = %v, %v; want false", ok, err)
		}
		v, err := d.SetDefault(ctx, "c", point{})
		if err != nil || v != (point{5, 6, "c"}) {
			t.Errorf("SetDefault of a present key = %v, %v", v, err)
		}
		v, err = d.SetDefault(ctx, "d", point{9, 9, "d"})
		if err != nil || v != (point{9, 9, "d"}) {
			t.Errorf("SetDefault of a missing key = %v, %v", v, err)
		}
		v, ok, err = d.Pop(ctx, "d")
		if err != nil || !ok || v != (point{9, 9, "d"}) {
			t.Errorf("Pop = %v, %v, %v", v, ok, err)
		}
		if _, ok, err := d.Pop(ctx, "d"); ok || err != nil {
			t.Errorf("Pop of a missing key = %v, %v", ok, err)
		}
		must(t, d.SetMany(ctx, map[string]point{"x": {1, 1, "x"}, "y": {2, 2, "y"}}))
		if n, _ := d.Len(ctx); n != 4 {
			t.Errorf("Len after SetMany = %d, want 4", n)
		}
		swapped, err := d.CompareAndSwap(ctx, "x", point{1, 1, "x"}, point{10, 10, "x"})
		if !swapped || err != nil {
			t.Errorf("CompareAndSwap with the right old value = %v, %v", swapped, err)
		}
		swapped, err = d.CompareAndSwap(ctx, "x", point{1, 1, "x"}, point{20, 20, "x"})
		if swapped || err != nil {
			t.Errorf("CompareAndSwap with a stale old value = %v, %v", swapped, err)
		}
		up, err := d.Update(ctx, "x", func(old point, ok bool) (point, error) {
			if !ok {
				t.Error("Update: key reported missing")
			}
			old.X++
			return old, nil
		})
		if err != nil || up.X != 11 {
			t.Errorf("Update = %v, %v", up, err)
		}
		boom := errors.New("boom")
		if _, err := d.Update(ctx, "x", func(point, bool) (point, error) { return point{}, boom }); err != boom {
			t.Errorf("Update with a failing f = %v, want boom", err)
		}
		must(t, d.Clear(ctx))
		if n, _ := d.Len(ctx); n != 0 {
			t.Errorf("Len after Clear = %d", n)
		}
		// Add on numbers; a non-number is ErrType.
		nums, err := OpenDict[string, float64](ctx, c, "nums")
		must(t, err)
		if v, err := nums.Add(ctx, "f", 1.5); v != 1.5 || err != nil {
			t.Errorf("Add to a missing key = %v, %v", v, err)
		}
		if v, err := nums.Add(ctx, "f", 2); v != 3.5 || err != nil {
			t.Errorf("Add = %v, %v", v, err)
		}
		strs, err := OpenDict[string, string](ctx, c, "nums")
		must(t, err)
		must(t, strs.Set(ctx, "s", "text"))
		if _, err := strs.Add(ctx, "s", "more"); !errors.Is(err, ErrType) {
			t.Errorf("Add of strings = %v, want ErrType", err)
		}
		anys, err := OpenDict[string, any](ctx, c, "nums")
		must(t, err)
		if _, err := anys.Add(ctx, "f", nil); !errors.Is(err, ErrType) {
			t.Errorf("Add of null = %v, want ErrType", err)
		}
		if _, err := anys.Add(ctx, "f", true); !errors.Is(err, ErrType) {
			t.Errorf("Add of a bool = %v, want ErrType", err)
		}
		// A stored value that does not decode into V is ErrType.
		if _, _, err := nums.Get(ctx, "s"); !errors.Is(err, ErrType) {
			t.Errorf("Get of a string as float64 = %v, want ErrType", err)
		}
	})
}

func TestDictNonStringKeys(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	c := ts.dial(t)
	d, err := OpenDict[point, []int](ctx, c, "by-point")
	must(t, err)
	must(t, d.Set(ctx, point{1, 2, "p"}, []int{1, 2, 3}))
	v, ok, err := d.Get(ctx, point{1, 2, "p"})
	if err != nil || !ok || !slices.Equal(v, []int{1, 2, 3}) {
		t.Errorf("Get = %v, %v, %v", v, ok, err)
	}
	if _, ok, _ := d.Get(ctx, point{1, 2, "q"}); ok {
		t.Error("Get of another struct key found a value")
	}
}

func TestList(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		l, err := OpenList[string](ctx, c, "words")
		must(t, err)
		if n, err := l.Append(ctx, "b"); n != 1 || err != nil {
			t.Fatalf("Append = %d, %v", n, err)
		}
		if n, err := l.Extend(ctx, "c", "d", "e"); n != 4 || err != nil {
			t.Fatalf("Extend = %d, %v", n, err)
		}
		must(t, l.Insert(ctx, 0, "a"))   // a b c d e
		must(t, l.Insert(ctx, 100, "z")) // a b c d e z
		must(t, l.Insert(ctx, -1, "y"))  // a b c d e y z
		must(t, l.Set(ctx, -3, "E"))     // a b c d E y z
		check := func(want ...string) {
			t.Helper()
			got, err := l.Slice(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("list (-want +got):\n%s", diff)
			}
		}
		check("a", "b", "c", "d", "E", "y", "z")
		if v, err := l.Get(ctx, -1); v != "z" || err != nil {
			t.Errorf("Get(-1) = %q, %v", v, err)
		}
		if _, err := l.Get(ctx, 7); !errors.Is(err, ErrIndex) {
			t.Errorf("Get(7) = %v, want ErrIndex", err)
		}
		if _, err := l.Get(ctx, -8); !errors.Is(err, ErrIndex) {
			t.Errorf("Get(-8) = %v, want ErrIndex", err)
		}
		if err := l.Set(ctx, 7, "x"); !errors.Is(err, ErrIndex) {
			t.Errorf("Set(7) = %v, want ErrIndex", err)
		}
		if v, err := l.Pop(ctx, -1); v != "z" || err != nil {
			t.Errorf("Pop(-1) = %q, %v", v, err)
		}
		if v, err := l.Pop(ctx, 0); v != "a" || err != nil {
			t.Errorf("Pop(0) = %q, %v", v, err)
		}
		check("b", "c", "d", "E", "y")
		if ok, err := l.Remove(ctx, "d"); !ok || err != nil {
			t.Errorf("Remove = %v, %v", ok, err)
		}
		if ok, err := l.Remove(ctx, "nope"); ok || err != nil {
			t.Errorf("Remove of a missing value = %v, %v", ok, err)
		}
		if i, err := l.Index(ctx, "E"); i != 2 || err != nil {
			t.Errorf("Index = %d, %v", i, err)
		}
		if i, err := l.Index(ctx, "nope"); i != -1 || err != nil {
			t.Errorf("Index of a missing value = %d, %v", i, err)
		}
		if got, _ := l.Slice(ctx, -2, 100); !slices.Equal(got, []string{"E", "y"}) {
			t.Errorf("Slice(-2, 100) = %q", got)
		}
		if got, _ := l.Slice(ctx, 3, 1); len(got) != 0 {
			t.Errorf("Slice(3, 1) = %q, want empty", got)
		}
		if n, err := l.Len(ctx); n != 4 || err != nil {
			t.Errorf("Len = %d, %v", n, err)
		}
		must(t, l.Clear(ctx))
		if _, err := l.Pop(ctx, -1); !errors.Is(err, ErrIndex) {
			t.Errorf("Pop of an empty list = %v, want ErrIndex", err)
		}
	})
}

func TestNamespace(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		ns, err := OpenNamespace(ctx, c, "config")
		must(t, err)
		must(t, ns.Set(ctx, "workers", 8))
		must(t, ns.Set(ctx, "name", "run-1"))
		must(t, ns.Set(ctx, "origin", point{1, 2, "o"}))
		var n int
		var name string
		var p point
		must(t, ns.Get(ctx, "workers", &n))
		must(t, ns.Get(ctx, "name", &name))
		must(t, ns.Get(ctx, "origin", &p))
		if n != 8 || name != "run-1" || p != (point{1, 2, "o"}) {
			t.Errorf("fields = %d, %q, %v", n, name, p)
		}
		if err := ns.Get(ctx, "missing", &n); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get of an unset field = %v, want fs.ErrNotExist", err)
		}
		if err := ns.Get(ctx, "name", &n); !errors.Is(err, ErrType) {
			t.Errorf("Get of a string field into an int = %v, want ErrType", err)
		}
		fields, err := ns.Fields(ctx)
		must(t, err)
		if diff := cmp.Diff([]string{"workers", "name", "origin"}, fields); diff != "" {
			t.Errorf("Fields (-want +got):\n%s", diff)
		}
		if ok, err := ns.Delete(ctx, "name"); !ok || err != nil {
			t.Errorf("Delete = %v, %v", ok, err)
		}
	})
}

func TestValue(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		v, err := OpenValue[int64](ctx, c, "counter")
		must(t, err)
		if x, err := v.Load(ctx); x != 0 || err != nil {
			t.Errorf("Load of a new value = %d, %v", x, err)
		}
		must(t, v.Store(ctx, 40))
		if x, err := v.Add(ctx, 2); x != 42 || err != nil {
			t.Errorf("Add = %d, %v", x, err)
		}
		if x, err := v.Add(ctx, -50); x != -8 || err != nil {
			t.Errorf("Add of a negative = %d, %v", x, err)
		}
		if old, err := v.Swap(ctx, 7); old != -8 || err != nil {
			t.Errorf("Swap = %d, %v", old, err)
		}
		if ok, err := v.CompareAndSwap(ctx, 7, 8); !ok || err != nil {
			t.Errorf("CompareAndSwap = %v, %v", ok, err)
		}
		if ok, err := v.CompareAndSwap(ctx, 7, 9); ok || err != nil {
			t.Errorf("stale CompareAndSwap = %v, %v", ok, err)
		}
		if x, err := v.Update(ctx, func(old int64) (int64, error) { return old * 10, nil }); x != 80 || err != nil {
			t.Errorf("Update = %d, %v", x, err)
		}
		if x, _ := v.Load(ctx); x != 80 {
			t.Errorf("Load after Update = %d", x)
		}
		// Integer overflow of CBOR's range is refused; a value beyond
		// int64 does not decode into int64.
		u, err := OpenValue[uint64](ctx, c, "big")
		must(t, err)
		must(t, u.Store(ctx, 1<<63))
		if x, err := u.Add(ctx, 1<<63-1); x != 1<<64-1 || err != nil {
			t.Errorf("uint64 Add = %d, %v", x, err)
		}
		if _, err := u.Add(ctx, 1); !errors.Is(err, ErrType) {
			t.Errorf("Add past 2^64-1 = %v, want ErrType", err)
		}
		if _, err := OpenValue[int64](ctx, c, "big"); err != nil {
			t.Fatal(err)
		}
		i, _ := OpenValue[int64](ctx, c, "big")
		if _, err := i.Load(ctx); !errors.Is(err, ErrType) {
			t.Errorf("Load of 2^64-1 into int64 = %v, want ErrType", err)
		}
	})
}

func TestKindMismatch(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	c := ts.dial(t)
	if _, err := OpenDict[string, int](ctx, c, "thing"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenList[int](ctx, c, "thing"); !errors.Is(err, ErrKind) {
		t.Errorf("OpenList of a dict's name = %v, want ErrKind", err)
	}
	// Messages name both kinds, each with its article.
	if _, err := OpenEvent(ctx, c, "thing"); err == nil || !strings.HasSuffix(err.Error(), `: manager: "thing" is a dict, not an event`) {
		t.Errorf("OpenEvent of a dict's name = %v", err)
	}
	if _, err := OpenEvent(ctx, c, "flag"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDict[string, int](ctx, c, "flag"); err == nil || !strings.HasSuffix(err.Error(), `: manager: "flag" is an event, not a dict`) {
		t.Errorf("OpenDict of an event's name = %v", err)
	}
	d, _ := OpenDict[string, int](ctx, c, "thing")
	if ok, err := c.Remove(ctx, "thing"); !ok || err != nil {
		t.Errorf("Remove = %v, %v", ok, err)
	}
	if ok, err := c.Remove(ctx, "thing"); ok || err != nil {
		t.Errorf("second Remove = %v, %v", ok, err)
	}
	if _, _, err := d.Get(ctx, "k"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get on a removed dict = %v, want fs.ErrNotExist", err)
	}
	if _, err := OpenDict[string, int](ctx, c, ""); !errors.Is(err, ErrBadRequest) {
		t.Errorf("OpenDict with an empty name = %v, want ErrBadRequest", err)
	}
}

func TestLock(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c1, c2 := ts.dial(t), ts.dial(t)
		l1, err := OpenLock(ctx, c1, "L")
		must(t, err)
		if l1.Name() != "L" {
			t.Errorf("Name = %q", l1.Name())
		}
		l2, err := OpenLock(ctx, c2, "L")
		must(t, err)
		must(t, l1.Acquire(ctx))
		f1, err := l1.Fence(ctx)
		if err != nil || f1 == 0 {
			t.Errorf("holder's Fence = %d, %v; want a token > 0", f1, err)
		}
		if _, err := l2.Fence(ctx); !errors.Is(err, ErrNotOwner) {
			t.Errorf("Fence of a non-holder = %v, want ErrNotOwner", err)
		}
		if ok, err := l2.TryAcquire(ctx); ok || err != nil {
			t.Errorf("TryAcquire of a held lock = %v, %v", ok, err)
		}
		if locked, _ := l2.Locked(ctx); !locked {
			t.Error("Locked = false while held")
		}
		if err := l2.Release(ctx); !errors.Is(err, ErrNotOwner) {
			t.Errorf("Release by a non-holder = %v, want ErrNotOwner", err)
		}
		short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		if err := l2.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire with a deadline = %v, want DeadlineExceeded", err)
		}
		got := make(chan error, 1)
		go func() { got <- l2.Acquire(ctx) }()
		time.Sleep(10 * time.Millisecond)
		select {
		case err := <-got:
			t.Fatalf("Acquire returned %v while the lock was held", err)
		default:
		}
		must(t, l1.Release(ctx))
		if err := <-got; err != nil {
			t.Fatalf("Acquire after Release = %v", err)
		}
		if f2, err := l2.Fence(ctx); err != nil || f2 <= f1 {
			t.Errorf("next holder's Fence = %d, %v; want > %d", f2, err, f1)
		}
		// Cancelling a waiting Acquire leaves the lock as it was.
		cctx, cancel2 := context.WithCancel(ctx)
		go func() {
			time.Sleep(10 * time.Millisecond)
			cancel2()
		}()
		if err := l1.Acquire(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Acquire = %v, want Canceled", err)
		}
		must(t, l2.Release(ctx))
		if ok, err := l1.TryAcquire(ctx); !ok || err != nil {
			t.Errorf("TryAcquire after cancel = %v, %v; the cancelled wait must not hold it", ok, err)
		}
		must(t, l1.Release(ctx))
	})
}

func TestLockHolderDisconnects(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c1, c2 := ts.dial(t), ts.dial(t)
		l1, _ := OpenLock(ctx, c1, "L")
		l2, _ := OpenLock(ctx, c2, "L")
		must(t, l1.Acquire(ctx))
		got := make(chan error, 1)
		go func() { got <- l2.Acquire(ctx) }()
		time.Sleep(10 * time.Millisecond)
		c1.Close()
		err := <-got
		if !errors.Is(err, ErrOwnerDead) {
			t.Fatalf("Acquire after the holder disconnected = %v, want ErrOwnerDead", err)
		}
		if ok, _ := l2.Locked(ctx); !ok {
			t.Error("ErrOwnerDead Acquire does not hold the lock")
		}
		must(t, l2.Release(ctx))
		// Reported once.
		must(t, l2.Acquire(ctx))
		must(t, l2.Release(ctx))

		// A grant made at once says the same as one to a parked Acquire.
		c3 := ts.dial(t)
		l3, _ := OpenLock(ctx, c3, "L")
		must(t, l3.Acquire(ctx))
		c3.Close()
		shmtest.WaitUntil(t, "the server to release the lock of a closed connection", func() bool {
			locked, err := l2.Locked(ctx)
			return err == nil && !locked
		})
		now := l2.Acquire(ctx)
		if !errors.Is(now, ErrOwnerDead) {
			t.Fatalf("Acquire of a dead holder's lock = %v, want ErrOwnerDead", now)
		}
		const want = `lock "L": manager: previous lock holder disconnected`
		if err.Error() != want || now.Error() != want {
			t.Errorf("OwnerDead reported as %q when parked and %q at once, want %q", err, now, want)
		}
	})
}

func TestQueue(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c1, c2 := ts.dial(t), ts.dial(t)
		q1, err := OpenQueue[point](ctx, c1, "Q", 2)
		must(t, err)
		q2, err := OpenQueue[point](ctx, c2, "Q", 0)
		must(t, err)
		if q2.Name() != "Q" {
			t.Errorf("Name = %q", q2.Name())
		}
		must(t, q1.Put(ctx, point{X: 1}))
		if ok, err := q1.TryPut(ctx, point{X: 2}); !ok || err != nil {
			t.Fatalf("TryPut = %v, %v", ok, err)
		}
		if ok, err := q1.TryPut(ctx, point{X: 3}); ok || err != nil {
			t.Fatalf("TryPut into a full queue = %v, %v", ok, err)
		}
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := q1.Put(short, point{X: 3}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put into a full queue with a deadline = %v", err)
		}
		putDone := make(chan error, 1)
		go func() { putDone <- q1.Put(ctx, point{X: 3}) }()
		if n, _ := q2.Len(ctx); n != 2 {
			t.Errorf("Len = %d, want 2", n)
		}
		for want := 1; want <= 3; want++ {
			v, err := q2.Get(ctx)
			if err != nil || v.X != want {
				t.Fatalf("Get = %v, %v; want X=%d", v, err, want)
			}
		}
		must(t, <-putDone)
		if _, ok, err := q2.TryGet(ctx); ok || err != nil {
			t.Errorf("TryGet of an empty queue = %v, %v", ok, err)
		}
		got := make(chan point, 1)
		go func() {
			v, err := q2.Get(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		time.Sleep(5 * time.Millisecond)
		must(t, q1.Put(ctx, point{X: 9}))
		if v := <-got; v.X != 9 {
			t.Errorf("waiting Get = %v", v)
		}
		short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel2()
		if _, err := q2.Get(short2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get of an empty queue with a deadline = %v", err)
		}
		// The cancelled Get took nothing.
		must(t, q1.Put(ctx, point{X: 10}))
		if v, ok, err := q2.TryGet(ctx); !ok || err != nil || v.X != 10 {
			t.Errorf("TryGet = %v, %v, %v", v, ok, err)
		}
	})
}

func TestEvent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c1, c2 := ts.dial(t), ts.dial(t)
		e1, _ := OpenEvent(ctx, c1, "E")
		e2, _ := OpenEvent(ctx, c2, "E")
		if e2.Name() != "E" {
			t.Errorf("Name = %q", e2.Name())
		}
		if set, err := e1.IsSet(ctx); set || err != nil {
			t.Errorf("IsSet of a new event = %v, %v", set, err)
		}
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := e2.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait with a deadline = %v", err)
		}
		const waiters = 5
		done := make(chan error, waiters)
		for range waiters {
			go func() { done <- e2.Wait(ctx) }()
		}
		time.Sleep(10 * time.Millisecond)
		must(t, e1.Set(ctx))
		for range waiters {
			if err := <-done; err != nil {
				t.Errorf("Wait = %v", err)
			}
		}
		must(t, e2.Wait(ctx))
		must(t, e1.Clear(ctx))
		if set, _ := e2.IsSet(ctx); set {
			t.Error("IsSet after Clear")
		}
	})
}

func TestBatch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		d, _ := OpenDict[int, int](ctx, c, "d")
		l, _ := OpenList[int](ctx, c, "l")
		v, _ := OpenValue[int](ctx, c, "v")
		b := c.NewBatch()
		const n = 20000 // several chunks
		var adds []*Future[int]
		for i := range n {
			d.SetIn(b, i, i)
			adds = append(adds, d.AddIn(b, i, 1))
			l.AppendIn(b, i)
			v.AddIn(b, 1)
		}
		missing := d.GetIn(b, -1)
		stored := v.StoreIn(b, -5)
		load := v.LoadIn(b)
		if _, err := load.Result(); err == nil {
			t.Error("Future.Result before Do succeeded")
		}
		if b.Len() != 4*n+3 {
			t.Errorf("Len = %d", b.Len())
		}
		must(t, b.Do(ctx))
		for i, f := range adds {
			if x, err := f.Result(); x != i+1 || err != nil {
				t.Fatalf("add %d = %d, %v", i, x, err)
			}
		}
		if _, err := missing.Result(); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get of a missing key in a batch = %v, want fs.ErrNotExist", err)
		}
		if _, err := stored.Result(); err != nil {
			t.Error(err)
		}
		if x, err := load.Result(); x != -5 || err != nil {
			t.Errorf("Load = %d, %v", x, err)
		}
		if n2, _ := l.Len(ctx); n2 != n {
			t.Errorf("list length %d, want %d", n2, n)
		}
	})
}

// TestPipelinedGoroutines has many goroutines share one client; their
// requests are in flight together on one connection.
func TestPipelinedGoroutines(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		v, _ := OpenValue[int](ctx, c, "v")
		const g, each = 16, 500
		parallelDo(g, func(int) {
			for range each {
				if _, err := v.Add(ctx, 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
		if x, _ := v.Load(ctx); x != g*each {
			t.Errorf("sum = %d, want %d", x, g*each)
		}
	})
}

// TestRemoveAnswersParked removes objects with requests parked on them:
// the requests end with fs.ErrNotExist rather than wait for ever.
func TestRemoveAnswersParked(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	c1, c2 := ts.dial(t), ts.dial(t)
	l1, _ := OpenLock(ctx, c1, "L")
	l2, _ := OpenLock(ctx, c2, "L")
	q, _ := OpenQueue[int](ctx, c2, "Q", 0)
	e, _ := OpenEvent(ctx, c2, "E")
	must(t, l1.Acquire(ctx))
	errs := make(chan error, 3)
	go func() { errs <- l2.Acquire(ctx) }()
	go func() { _, err := q.Get(ctx); errs <- err }()
	go func() { errs <- e.Wait(ctx) }()
	time.Sleep(20 * time.Millisecond)
	for _, name := range []string{"L", "Q", "E"} {
		if ok, err := c1.Remove(ctx, name); !ok || err != nil {
			t.Fatalf("Remove(%q) = %v, %v", name, ok, err)
		}
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, fs.ErrNotExist) || !strings.HasSuffix(err.Error(), ": manager: object removed") {
			t.Errorf("parked request on a removed object = %v, want fs.ErrNotExist saying the object was removed", err)
		}
	}
}

func TestAttachModes(t *testing.T) {
	ts := startServer(t, transports(t)[0])
	c := ts.dial(t)
	if _, err := c.open(ctx, kindDict, "x", attachOpen, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open of a missing name = %v, want fs.ErrNotExist", err)
	}
	if _, err := c.open(ctx, kindDict, "x", attachCreate, 0); err != nil {
		t.Errorf("create = %v", err)
	}
	if _, err := c.open(ctx, kindList, "x", attachCreate, 0); !errors.Is(err, fs.ErrExist) {
		t.Errorf("create of a taken name = %v, want fs.ErrExist", err)
	}
	if _, err := c.open(ctx, kindDict, "x", 7, 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unknown mode = %v, want ErrBadRequest", err)
	}
	if _, err := c.open(ctx, kind(99), "y", attachOpenOrCreate, 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unknown kind = %v, want ErrBadRequest", err)
	}
	if _, err := OpenQueue[int](ctx, c, "q", -1); err == nil {
		t.Error("OpenQueue with a negative capacity succeeded")
	}
}

// TestCancelUnanswered checks that a cancelled blocking call does not wait
// for ever on a server that does not answer the cancel: the client closes
// the connection, which releases what the server granted to it.
func TestCancelUnanswered(t *testing.T) {
	defer func(g time.Duration) { cancelGrace = g }(cancelGrace)
	cancelGrace = 100 * time.Millisecond
	stuck := make(chan struct{})
	ts := startServer(t, transports(t)[1], func(s *Server) {
		s.testHook = func(r request) {
			if r.op == opCancel {
				<-stuck
			}
		}
	})
	c1, c2 := ts.dial(t), ts.dial(t)
	l1, _ := OpenLock(ctx, c1, "L")
	l2, _ := OpenLock(ctx, c2, "L")
	must(t, l1.Acquire(ctx))
	// No deadline, so that the server parks the Acquire without a timer
	// and only the cancel could end it.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	if err := l2.Acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Acquire returned after %v", d)
	}
	// c2 closed that connection, so l1's Release does not grant the
	// lock to the Acquire still parked there (its socket is closed at
	// the other end, though the server's reader, stuck on the Cancel,
	// has not seen it), and c2's next call, on a new connection, takes
	// the lock with no owner death to report.
	must(t, l1.Release(ctx))
	close(stuck)
	if ok, err := l2.TryAcquire(ctx); !ok || err != nil {
		t.Errorf("TryAcquire after the closed connection's Acquire was passed over = %v, %v; want true, nil", ok, err)
	}
}

// TestStalledConnection abandons a large response, which would fill the
// transport if nobody read it, and checks that later calls, without a
// deadline, go through.
func TestStalledConnection(t *testing.T) {
	for _, tr := range transports(t)[:2] {
		t.Run(tr.name, func(t *testing.T) {
			ts := startServer(t, tr)
			c := ts.dial(t)
			d, _ := OpenDict[string, []byte](ctx, c, "d")
			big := make([]byte, 4<<20)
			must(t, d.Set(ctx, "big", big))
			short, cancel := context.WithTimeout(ctx, time.Microsecond)
			d.Get(short, "big") // gives up before the answer
			cancel()
			// Nobody waits for that answer, but the client still reads
			// it, so calls without a deadline go through.
			done := make(chan error, 1)
			go func() {
				var err error
				for range 4 { // enough to fill the transport both ways
					if err = d.Set(ctx, "big2", big); err != nil {
						break
					}
				}
				done <- err
			}()
			select {
			case err := <-done:
				must(t, err)
			case <-time.After(time.Minute):
				c.Close() // ends the calls
				t.Fatal("calls after an abandoned large answer did not finish")
			}
			if n, err := d.Len(ctx); n < 1 || err != nil {
				t.Errorf("Len after the stall = %d, %v", n, err)
			}
		})
	}
}

// TestTryOpsKeepResults checks that TryAcquire and TryGet whose context
// ends before the answer still report a lock taken or an item removed.
func TestTryOpsKeepResults(t *testing.T) {
	slow := make(chan struct{})
	ts := startServer(t, transports(t)[1], func(s *Server) {
		s.testHook = func(r request) {
			if r.op == opLockAcquire || r.op == opQueueGet {
				<-slow
			}
		}
	})
	c := ts.dial(t)
	l, _ := OpenLock(ctx, c, "L")
	q, _ := OpenQueue[int](ctx, c, "Q", 0)
	must(t, q.Put(ctx, 7))
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	time.AfterFunc(50*time.Millisecond, func() { close(slow) })
	ok, err := l.TryAcquire(short)
	if ok != (err == nil || errors.Is(err, ErrOwnerDead)) {
		t.Errorf("TryAcquire = %v, %v", ok, err)
	}
	if locked, _ := l.Locked(ctx); locked != ok {
		t.Errorf("TryAcquire reported %v but Locked = %v", ok, locked)
	}
	v, got, err := q.TryGet(short)
	n, _ := q.Len(ctx)
	if got != (n == 0) || (got && v != 7) {
		t.Errorf("TryGet = %d, %v, %v with %d items left", v, got, err, n)
	}
}

// TestDialWaitHonoursContext checks that a call waiting for another
// goroutine's dial gives up when its own context ends.
func TestDialWaitHonoursContext(t *testing.T) {
	// A listener that accepts but never answers the handshake.
	l, err := Listen("unix", filepath.Join(t.TempDir(), "mute"))
	must(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	c := &Client{network: "unix", address: l.Addr().String(), opts: Options{HandshakeTimeout: 5 * time.Second}}
	defer c.Close()
	dialled := make(chan struct{})
	go func() {
		defer close(dialled)
		c.session(ctx) // dials, and waits for a hello that never comes
	}()
	defer func() {
		(<-accepted).Close() // ends that dial
		<-dialled
	}()
	for {
		c.mu.Lock()
		d := c.dialing
		c.mu.Unlock()
		if d != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.session(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("session while another dials = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waited %v for another goroutine's dial", d)
	}
}

// TestAddOutOfRange checks that an Add whose sum the proxy's type cannot
// hold fails with ErrType and has no effect, through Dict.Add, Value.Add
// and both in a Batch: the value stored before is still there, and still
// readable through the proxy.
func TestAddOutOfRange(t *testing.T) {
	forEachTransport(t, func(t *testing.T, ts *testServer) {
		c := ts.dial(t)
		refuseAdd(t, c, int8(100), 100)
		refuseAdd(t, c, int8(-100), -100)
		refuseAdd(t, c, int16(math.MaxInt16), 1)
		refuseAdd(t, c, int16(math.MinInt16), -1)
		refuseAdd(t, c, int32(math.MaxInt32), 1)
		refuseAdd(t, c, int32(math.MinInt32), -1)
		refuseAdd(t, c, int64(math.MaxInt64), 1)
		refuseAdd(t, c, int64(math.MinInt64), -1)
		refuseAdd(t, c, math.MaxInt, 1)
		refuseAdd(t, c, uint8(255), 1)
		refuseAdd(t, c, uint16(math.MaxUint16), 1)
		refuseAdd(t, c, uint32(math.MaxUint32), 1)
		refuseAdd(t, c, uint64(math.MaxUint64), 1)
		refuseAdd(t, c, float32(math.MaxFloat32), math.MaxFloat32)
		refuseAdd(t, c, float32(-math.MaxFloat32), -math.MaxFloat32)
		type level int8 // a named type counts by its kind
		refuseAdd(t, c, level(127), 1)

		// Sums that fit are stored, up to the bounds.
		i8, _ := OpenDict[string, int8](ctx, c, "fits")
		must(t, i8.Set(ctx, "k", 100))
		if x, err := i8.Add(ctx, "k", 27); x != 127 || err != nil {
			t.Errorf("int8 100 + 27 = %d, %v", x, err)
		}
		if x, err := i8.Add(ctx, "k", -255+127); x != -1 || err != nil {
			t.Errorf("int8 127 - 128 = %d, %v", x, err)
		}
		// Another proxy's value the type cannot hold: a negative
		// number for an unsigned type, a float for an integer type.
		ints, _ := OpenDict[string, int](ctx, c, "mixed")
		floats, _ := OpenDict[string, float64](ctx, c, "mixed")
		u8, _ := OpenDict[string, uint8](ctx, c, "mixed")
		must(t, ints.Set(ctx, "neg", -5))
		must(t, floats.Set(ctx, "float", 1.5))
		for key, want := range map[string]string{"neg": "-5", "float": "1.5"} {
			if _, err := u8.Add(ctx, key, 3); !errors.Is(err, ErrType) {
				t.Errorf("uint8 Add to %s = %v, want ErrType", want, err)
			}
			var got any
			anys, _ := OpenDict[string, any](ctx, c, "mixed")
			got, _, _ = anys.Get(ctx, key)
			if fmt.Sprint(got) != want {
				t.Errorf("after a refused Add, %s holds %v, want %s", key, got, want)
			}
		}

		// A float32 sum is rounded to float32 on the server, as adding
		// in the client would round it, so the stored bytes are the
		// proxy's own: CompareAndSwap with the result matches.
		f, _ := OpenValue[float32](ctx, c, "f32")
		must(t, f.Store(ctx, 0.2))
		sum, err := f.Add(ctx, 0.1)
		if want := float32(0.2) + float32(0.1); sum != want || err != nil {
			t.Errorf("float32 0.2 + 0.1 = %v, %v; want %v", sum, err, want)
		}
		if ok, err := f.CompareAndSwap(ctx, sum, 1); !ok || err != nil {
			t.Errorf("CompareAndSwap with the float32 sum = %v, %v; want true", ok, err)
		}
		// Infinity is no overflow when an operand is infinite already.
		must(t, f.Store(ctx, float32(math.Inf(1))))
		if x, err := f.Add(ctx, 1); !math.IsInf(float64(x), 1) || err != nil {
			t.Errorf("float32 +Inf + 1 = %v, %v", x, err)
		}
	})
}

// refuseAdd stores start and adds delta, whose sum V cannot hold, in
// every way there is: each Add must fail with ErrType, and start must
// stay stored.
func refuseAdd[V comparable](t *testing.T, c *Client, start, delta V) {
	t.Helper()
	name := fmt.Sprintf("%T(%v)+%v", start, start, delta)
	d, err := OpenDict[string, V](ctx, c, name+" dict")
	must(t, err)
	v, err := OpenValue[V](ctx, c, name+" value")
	must(t, err)
	must(t, d.Set(ctx, "k", start))
	must(t, v.Store(ctx, start))
	check := func(how string, err error) {
		t.Helper()
		if !errors.Is(err, ErrType) {
			t.Errorf("%s: %s = %v, want ErrType", name, how, err)
		}
		if got, _, err := d.Get(ctx, "k"); got != start || err != nil {
			t.Errorf("%s: after a refused %s the dict holds %v, %v; want %v", name, how, got, err, start)
		}
		if got, err := v.Load(ctx); got != start || err != nil {
			t.Errorf("%s: after a refused %s the value holds %v, %v; want %v", name, how, got, err, start)
		}
	}
	_, err = d.Add(ctx, "k", delta)
	check("Dict.Add", err)
	_, err = v.Add(ctx, delta)
	check("Value.Add", err)
	b := c.NewBatch()
	df, vf := d.AddIn(b, "k", delta), v.AddIn(b, delta)
	must(t, b.Do(ctx))
	_, err = df.Result()
	check("Dict.AddIn", err)
	_, err = vf.Result()
	check("Value.AddIn", err)
}

// TestContextReusedAcrossCalls runs many calls with one cancellable
// context, whose watch the session keeps from call to call, then cancels
// it while a call waits: that call must end with Canceled, a later call
// with the same (ended) context at once, and calls with other contexts
// must be left alone.
func TestContextReusedAcrossCalls(t *testing.T) {
	for _, tr := range serverTransports(t)[:2] {
		t.Run(tr.name, func(t *testing.T) {
			ts := startServer(t, tr)
			c := ts.dial(t)
			d, _ := OpenDict[int, int](ctx, c, "d")
			q, _ := OpenQueue[int](ctx, c, "q", 0)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for i := range 200 {
				must(t, d.Set(cctx, i, i))
			}
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			if _, err := q.Get(cctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Get on an empty queue, cancelled = %v, want Canceled", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the cancelled Get returned after %v", d)
			}
			if _, _, err := d.Get(cctx, 1); !errors.Is(err, context.Canceled) {
				t.Errorf("Get with the ended context = %v, want Canceled", err)
			}
			other, cancelOther := context.WithTimeout(ctx, time.Minute)
			defer cancelOther()
			for i := range 200 {
				if v, ok, err := d.Get(other, i); v != i || !ok || err != nil {
					t.Fatalf("Get(%d) with another context = %d, %v, %v", i, v, ok, err)
				}
			}
			if n, err := d.Len(ctx); n != 200 || err != nil {
				t.Errorf("Len = %d, %v", n, err)
			}
		})
	}
}
