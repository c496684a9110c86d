//go:build linux

package queue

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
)

// sleeper waits until it is killed.
var sleeper = process.Register("queue.sleeper", func(ctx context.Context, _ int) (int, error) {
	<-ctx.Done()
	return 0, nil
})

// deadOwner returns the owner word of a process that has exited.
func deadOwner(t *testing.T) uint64 {
	t.Helper()
	p, err := sleeper.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := proc.Lookup(p.Pid())
	p.Kill()
	p.Join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return lock.OwnerWord(id)
}

// TestDeadClaimReleased forges the claim a producer killed inside Put
// leaves (its record, and the slot of position 0 being written by it) and
// checks that a consumer skips it within 100 ms, and that a producer a lap
// later frees it too.
func TestDeadClaimReleased(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := New[int64](seg, "q", Capacity(2))
	if err != nil {
		t.Fatal(err)
	}
	dead := deadOwner(t)
	r := q.r
	atomic.StoreUint64(r.owner(7), dead)
	atomic.StoreUint64(r.stateOf(0), r.state(phaseWriting, 7, 0, 0))
	atomic.StoreUint64(r.tail, 1)
	if err := q.Put(ctx, 42); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	v, err := q.Get(ctx)
	if took := time.Since(t0); err != nil || v != 42 || took > 100*time.Millisecond {
		t.Fatalf("Get behind a dead claim = %d, %v after %v; want 42 within 100ms", v, err, took)
	}
	if q.Abandoned() != 1 {
		t.Fatalf("Abandoned = %d, want 1", q.Abandoned())
	}

	// Now positions 2 (slot 0) and 3 (slot 1): forge a dead claim of
	// position 3 with 2 full, so that the queue is full behind it.
	if err := q.Put(ctx, 1); err != nil { // position 2
		t.Fatal(err)
	}
	atomic.StoreUint64(r.stateOf(1), r.state(phaseWriting, 7, 3, 1))
	atomic.StoreUint64(r.tail, 4)
	if _, err := q.Get(ctx); err != nil { // takes 2; 3 is claimed
		t.Fatal(err)
	}
	// A Put at position 4 (slot 0) succeeds; one at 5 (slot 1) finds
	// the dead claim of 3 a lap ago, releases it and goes on.
	t0 = time.Now()
	for i := range int64(2) {
		if err := q.Put(ctx, 100+i); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(t0); took > 100*time.Millisecond {
		t.Fatalf("Put behind a dead claim took %v", took)
	}
	for i := range int64(2) {
		if v, err := q.Get(ctx); err != nil || v != 100+i {
			t.Fatalf("Get = %d, %v; want %d", v, err, 100+i)
		}
	}
	if q.Abandoned() != 2 {
		t.Fatalf("Abandoned = %d, want 2", q.Abandoned())
	}
}

// TestRecordsRecycled: a process attaching to a queue whose records all
// belong to dead processes takes one over, releasing its claims and
// retiring its held tasks as lost; with every record held by a live
// process it fails with ErrHandles.
func TestRecordsRecycled(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := NewJoinable[int64](seg, "q")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadOwner(t)
	r := q.r
	for i := range uint64(MaxProcesses) {
		atomic.StoreUint64(r.owner(i), dead)
	}
	atomic.StoreInt64(r.heldOf(0), 2)
	atomic.StoreUint64(r.stateOf(0), r.state(phaseWriting, 0, 0, 0))
	atomic.StoreUint64(r.tail, 1)
	q2, err := OpenJoinable[int64](seg, "q")
	if err != nil {
		t.Fatal(err)
	}
	if q2.r.idx != 0 {
		t.Fatalf("took record %d, want 0, the first of a dead process", q2.r.idx)
	}
	if s := atomic.LoadUint64(r.stateOf(0)); s != r.state(phaseFree, 0, r.capacity, 0) {
		t.Fatalf("the dead process's claim is %#x after its record was taken over", s)
	}
	if q2.Lost() != 2 {
		t.Fatalf("Lost = %d, want 2", q2.Lost())
	}
	if err := q2.Put(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if v, err := q2.Get(ctx); err != nil || v != 1 {
		t.Fatalf("Get = %d, %v", v, err)
	}

	parent, err := proc.Lookup(os.Getppid())
	if err != nil {
		t.Skip("no parent process to stand for a live one:", err)
	}
	for i := range uint64(MaxProcesses) {
		atomic.StoreUint64(r.owner(i), lock.OwnerWord(parent))
	}
	if _, err := Open[int64](seg, "q"); err == nil {
		t.Fatal("opened a joinable queue as a plain one")
	}
	if _, err := OpenJoinable[int64](seg, "q"); !errors.Is(err, ErrHandles) {
		t.Fatalf("OpenJoinable with every record live = %v, want ErrHandles", err)
	}
	for i := range uint64(MaxProcesses) {
		atomic.StoreUint64(r.owner(i), 0)
	}
}

// TestLostCountsDeadGets: a plain queue counts, as lost, a message that a
// consumer took and died before Get returned it (its record's count of
// Gets in progress), once the consumer is dead.
func TestLostCountsDeadGets(t *testing.T) {
	seg := shmtest.Segment(t, 1<<20)
	q, err := New[int64](seg, "q")
	if err != nil {
		t.Fatal(err)
	}
	if q.Lost() != 0 {
		t.Fatalf("Lost of a new queue = %d", q.Lost())
	}
	if err := q.Put(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := atomic.LoadInt64(q.r.held); n != 0 {
		t.Fatalf("after a Get returned, this process has %d Gets in progress", n)
	}
	r := q.r
	other := (r.idx + 1) % MaxProcesses
	atomic.StoreUint64(r.owner(other), deadOwner(t))
	atomic.StoreInt64(r.heldOf(other), 1)
	if q.Lost() != 1 {
		t.Fatalf("Lost with a dead consumer inside Get = %d, want 1", q.Lost())
	}
	obj, err := seg.Lookup("q")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := Stat(obj); err != nil || st.Lost != 1 {
		t.Fatalf("Stat = %+v, %v; want Lost 1", st, err)
	}
}
