//go:build linux

package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/lock"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// TestMutexExact: 8 processes x 100,000 non-atomic increments under the
// mutex end exact.
func TestMutexExact(t *testing.T) {
	const procs, iters = 8, 100_000
	seg, _, n, _ := setup(t)
	ps := shmtest.Start(t, procs, func(int) (*process.Process, error) {
		return lockIncrement.Start(job{Segment: seg.Name(), Iters: iters})
	})
	shmtest.Release(t, seg, ps)
	shmtest.JoinAll(t, ps)
	if *n != procs*iters {
		t.Errorf("counter = %d, want %d", *n, procs*iters)
	}
}

// TestHolderKilled kills the holder inside its critical section, 100
// times, alternating between a newcomer locking after the death and a
// waiter that was already waiting: every time, the next locker gets the
// mutex with ErrOwnerDead, promptly.
func TestHolderKilled(t *testing.T) {
	seg, mu, _, in := setup(t)
	var took []time.Duration
	for trial := range 100 {
		in.Store(0)
		holder, err := holdAndHang.Start(job{Segment: seg.Name()})
		if err != nil {
			t.Fatal(err)
		}
		waitInside(t, in, 1, holder)
		waiterFirst := trial%2 == 1
		if waiterFirst {
			// A worker already waiting when the holder dies.
			w, err := lockOnce.Start(job{Segment: seg.Name()})
			if err != nil {
				t.Fatal(err)
			}
			waitInside(t, in, 2, w)
			time.Sleep(time.Millisecond) // let it reach the futex; the result holds either way
			t0 := time.Now()
			kill(t, holder)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = w.Join(ctx)
			cancel()
			var l locked
			if err == nil {
				err = w.Result(&l)
			}
			if err != nil || !l.OwnerDied {
				t.Fatalf("trial %d: waiter: %v, %+v; want it to see the owner's death", trial, err, l)
			}
			took = append(took, time.Unix(0, l.At).Sub(t0))
			continue
		}
		t0 := time.Now()
		kill(t, holder)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = mu.LockContext(ctx)
		cancel()
		took = append(took, time.Since(t0))
		if !errors.Is(err, semaphore.ErrOwnerDead) {
			t.Fatalf("trial %d: LockContext after the holder died = %v, want ErrOwnerDead", trial, err)
		}
		if err := mu.MarkConsistent(); err != nil {
			t.Fatal(err)
		}
		mu.Unlock()
	}
	slices.Sort(took)
	t.Logf("kill to next lock, over %d trials: median %v, max %v", len(took), took[len(took)/2], took[len(took)-1])
	if worst := took[len(took)-1]; worst > time.Second {
		t.Errorf("slowest recovery took %v", worst)
	}
}

// TestUnrecoverable: a process that takes over a dead holder's mutex and
// unlocks it without repairing makes it unrecoverable for everyone.
func TestUnrecoverable(t *testing.T) {
	seg, mu, _, in := setup(t)
	holder, err := holdAndHang.Start(job{Segment: seg.Name()})
	if err != nil {
		t.Fatal(err)
	}
	waitInside(t, in, 1, holder)
	kill(t, holder)
	if err := mu.LockContext(context.Background()); !errors.Is(err, semaphore.ErrOwnerDead) {
		t.Fatalf("LockContext = %v, want ErrOwnerDead", err)
	}
	mu.Unlock() // without MarkConsistent: gives up on the state
	w, err := lockOnce.Start(job{Segment: seg.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Join(context.Background()); err == nil || !strings.Contains(err.Error(), semaphore.ErrNotRecoverable.Error()) {
		t.Errorf("another process's LockContext: %v, want ErrNotRecoverable", err)
	}
	if err := mu.LockContext(context.Background()); !errors.Is(err, semaphore.ErrNotRecoverable) {
		t.Errorf("LockContext = %v, want ErrNotRecoverable", err)
	}
	if mu.TryLock() {
		t.Error("TryLock succeeded on an unrecoverable mutex")
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "not recoverable") {
				t.Errorf("Lock on an unrecoverable mutex: panic %v", r)
			}
		}()
		mu.Lock()
	}()
}

// TestLockRepairsSilently: plain Lock takes over from a dead holder
// without an error to return, and leaves the mutex usable.
func TestLockRepairsSilently(t *testing.T) {
	seg, mu, _, in := setup(t)
	holder, err := holdAndHang.Start(job{Segment: seg.Name()})
	if err != nil {
		t.Fatal(err)
	}
	waitInside(t, in, 1, holder)
	kill(t, holder)
	mu.Lock()
	mu.Unlock()
	if err := mu.LockContext(context.Background()); err != nil {
		t.Fatalf("LockContext after Lock repaired = %v", err)
	}
	mu.Unlock()
}

// TestWaiterKilled kills one of three waiters: the holder's unlock must
// still reach the other two.
func TestWaiterKilled(t *testing.T) {
	seg, mu, n, in := setup(t)
	mu.Lock()
	ws := shmtest.Start(t, 3, func(int) (*process.Process, error) {
		return lockOnce.Start(job{Segment: seg.Name()})
	})
	waitInside(t, in, 3, ws...)
	time.Sleep(20 * time.Millisecond) // let them reach the futex; the result holds either way
	kill(t, ws[0])
	mu.Unlock()
	shmtest.JoinAll(t, ws[1:])
	mu.Lock()
	defer mu.Unlock()
	if *n != 2 {
		t.Errorf("counter = %d after two surviving waiters, want 2", *n)
	}
}

func TestCancelledLockLeavesMutex(t *testing.T) {
	seg, mu, _, in := setup(t)
	holder, err := holdAndHang.Start(job{Segment: seg.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer kill(t, holder)
	waitInside(t, in, 1, holder)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	if err := mu.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext = %v, want DeadlineExceeded", err)
	}
	if mu.TryLock() {
		t.Fatal("TryLock succeeded while another process holds the mutex")
	}
	if err := mu.MarkConsistent(); !errors.Is(err, semaphore.ErrNotOwner) {
		t.Errorf("MarkConsistent by a non-holder = %v, want ErrNotOwner", err)
	}
}

func TestRLock(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	r, err := semaphore.NewReentrantMutex(seg, "r")
	if err != nil {
		t.Fatal(err)
	}
	other, err := semaphore.OpenReentrantMutex(seg, "r")
	if err != nil {
		t.Fatal(err)
	}
	r.Lock()
	if !r.TryLock() {
		t.Fatal("the holding handle could not nest")
	}
	if err := r.LockContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if other.TryLock() {
		t.Fatal("another handle locked a held ReentrantMutex")
	}
	got := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got <- other.LockContext(ctx)
	}()
	r.Unlock()
	r.Unlock()
	select {
	case err := <-got:
		t.Fatalf("other handle got the lock (%v) while nested once more", err)
	case <-time.After(20 * time.Millisecond):
	}
	r.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	other.Unlock()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Unlock of a ReentrantMutex this handle does not hold did not panic")
			}
		}()
		r.Unlock()
	}()
}

func TestEventManyWaitersFewThreads(t *testing.T) {
	const procs, goroutines = 2, 1000
	seg, _, _, in := setup(t)
	ev, err := semaphore.NewEvent(seg, "ev")
	if err != nil {
		t.Fatal(err)
	}
	ps := shmtest.Start(t, procs, func(int) (*process.Process, error) {
		return waitEvent.Start(job{Segment: seg.Name(), Iters: goroutines})
	})
	waitInside(t, in, procs, ps...)
	time.Sleep(100 * time.Millisecond) // let the goroutines park
	for _, p := range ps {
		if n := threads(t, p.Pid()); n > 50 {
			t.Errorf("worker with %d goroutines waiting has %d threads", goroutines, n)
		}
	}
	if ev.IsSet() {
		t.Fatal("event set before Set")
	}
	ev.Set()
	shmtest.JoinAll(t, ps)
	checkResults(t, ps, goroutines, "goroutines that saw the event set")
	ev.Clear()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ev.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || ev.IsSet() {
		t.Errorf("Wait on a cleared event = %v, set %v", err, ev.IsSet())
	}
}

func threads(t *testing.T, pid int) int {
	n, err := proc.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSemaphore(t *testing.T) {
	seg, _, _, in := setup(t)
	s, err := semaphore.NewSemaphore(seg, "sem", 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := shmtest.Start(t, 3, func(int) (*process.Process, error) {
		return acquireOnce.Start(job{Segment: seg.Name()})
	})
	waitInside(t, in, 3, ws...)
	time.Sleep(20 * time.Millisecond)
	// A waiter killed while waiting must not take a wake-up with it.
	kill(t, ws[0])
	for range 2 {
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	}
	shmtest.JoinAll(t, ws[1:])
	if s.Value() != 0 {
		t.Errorf("Value = %d after two releases taken, want 0", s.Value())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) || s.Value() != 0 {
		t.Errorf("cancelled Acquire = %v, Value %d", err, s.Value())
	}
	if s.TryAcquire() {
		t.Error("TryAcquire on an empty semaphore succeeded")
	}
	s.Release()
	if !s.TryAcquire() {
		t.Error("TryAcquire with a permit failed")
	}
}

func TestBoundedSemaphore(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	b, err := semaphore.NewBoundedSemaphore(seg, "b", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); !errors.Is(err, semaphore.ErrOverRelease) || b.Value() != 2 {
		t.Fatalf("over-release = %v, Value %d; want ErrOverRelease, 2", err, b.Value())
	}
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b2, err := semaphore.OpenBoundedSemaphore(seg, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Release(); !errors.Is(err, semaphore.ErrOverRelease) {
		t.Errorf("over-release through another handle = %v", err)
	}
	if _, err := semaphore.OpenSemaphore(seg, "b"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Errorf("OpenSemaphore of a bounded one = %v, want ErrTypeMismatch", err)
	}
	if _, err := semaphore.NewSemaphore(seg, "neg", -1); err == nil {
		t.Error("NewSemaphore(-1) succeeded")
	}
}

func TestBarrierRounds(t *testing.T) {
	const procs, rounds = 4, 50
	seg := shmtest.Segment(t, 1<<16)
	if _, err := semaphore.NewBarrier(seg, "bar", procs); err != nil {
		t.Fatal(err)
	}
	if _, err := value.New[int64](seg, "arrivals"); err != nil {
		t.Fatal(err)
	}
	ps := shmtest.Start(t, procs, func(i int) (*process.Process, error) {
		return barrierRounds.Start(job{Segment: seg.Name(), Iters: rounds})
	})
	shmtest.JoinAll(t, ps)
}

// TestBarrierBreaksWhenPartyDies: of three parties, one dies while
// waiting; the others get ErrBroken instead of waiting for ever.
func TestBarrierBreaksWhenPartyDies(t *testing.T) {
	seg, _, _, in := setup(t)
	b, err := semaphore.NewBarrier(seg, "bar", 3)
	if err != nil {
		t.Fatal(err)
	}
	ps := shmtest.Start(t, 2, func(int) (*process.Process, error) {
		return barrierWait.Start(job{Segment: seg.Name()})
	})
	waitInside(t, in, 2, ps...)
	shmtest.WaitUntil(t, "two parties at the barrier", func() bool { return b.Waiting() >= 2 }, ps...)
	kill(t, ps[0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ps[1].Join(ctx); err == nil || !strings.Contains(err.Error(), "barrier broken") {
		t.Errorf("surviving party: %v, want barrier broken", err)
	}
	if _, err := b.Wait(ctx); !errors.Is(err, semaphore.ErrBroken) || !b.Broken() {
		t.Errorf("Wait at a broken barrier = %v", err)
	}
	if err := b.Reset(); err != nil || b.Broken() || b.Waiting() != 0 {
		t.Fatalf("Reset = %v, broken %v, waiting %d", err, b.Broken(), b.Waiting())
	}
}

func TestBarrierTimeoutBreaks(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	b, err := semaphore.NewBarrier(seg, "bar", 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = b.Wait(ctx)
	if !errors.Is(err, semaphore.ErrBroken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait timing out = %v, want ErrBroken and DeadlineExceeded", err)
	}
	if !b.Broken() {
		t.Error("barrier not broken after a party timed out")
	}
	// A waiter in progress during Reset gets ErrBroken, not a release.
	b.Reset()
	done := make(chan error)
	go func() {
		_, err := b.Wait(context.Background())
		done <- err
	}()
	for b.Waiting() < 1 {
		time.Sleep(time.Millisecond)
	}
	b.Reset()
	if err := <-done; !errors.Is(err, semaphore.ErrBroken) {
		t.Errorf("Wait interrupted by Reset = %v, want ErrBroken", err)
	}
	// And the barrier works again.
	var wg sync.WaitGroup
	idx := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			var err error
			idx[i], err = b.Wait(context.Background())
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if idx[0]+idx[1] != 1 {
		t.Errorf("arrival indices %v, want 0 and 1", idx)
	}
}

func TestCondition(t *testing.T) {
	const target = 100
	seg, mu, n, in := setup(t)
	c, err := semaphore.NewCondition(seg, "cond", mu)
	if err != nil {
		t.Fatal(err)
	}
	ps := shmtest.Start(t, 2, func(int) (*process.Process, error) {
		return consume.Start(job{Segment: seg.Name(), Iters: target})
	})
	waitInside(t, in, 2, ps...)
	for range target {
		mu.Lock()
		*n++
		c.Notify()
		mu.Unlock()
	}
	shmtest.JoinAll(t, ps)
	checkResults(t, ps, target, "counter value the consumer saw")
	mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an expiring context = %v", err)
	}
	mu.Unlock() // Wait returned holding the mutex
}

func TestOpenErrors(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	if _, err := semaphore.NewMutex(seg, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := semaphore.NewMutex(seg, "m"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("NewMutex of existing = %v", err)
	}
	if _, err := semaphore.OpenEvent(seg, "m"); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Errorf("OpenEvent of a mutex = %v", err)
	}
	if _, err := semaphore.OpenMutex(seg, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenMutex(missing) = %v", err)
	}
	if _, err := semaphore.NewBarrier(seg, "b", 0); err == nil {
		t.Error("NewBarrier with 0 parties succeeded")
	}
	if _, err := semaphore.NewCondition(seg, "c", nil); err == nil {
		t.Error("NewCondition without a mutex succeeded")
	}
}

// TestRLockTakeOverIsExclusive: while a handle takes a ReentrantMutex over from a
// dead process, another handle of its process must not count as the
// holder because the dead process's handle had the same id.
func TestRLockTakeOverIsExclusive(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	if _, err := semaphore.NewReentrantMutex(seg, "r"); err != nil {
		t.Fatal(err)
	}
	p, err := midTakeOver.Start(job{Segment: seg.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	var nested int
	if err := p.Result(&nested); err != nil || nested != 0 {
		t.Errorf("a handle took a take-over in progress for its own lock (%v)", err)
	}
}

// TestBarrierHolderDiedMidAdvance leaves the barrier as a last party killed
// between counting the arrivals off and starting the next round would:
// its lock held by a dead process, nobody counted as waiting, and the
// round not advanced. The waiting party must get ErrBroken, not hang.
func TestBarrierHolderDiedMidAdvance(t *testing.T) {
	seg := shmtest.Segment(t, 1<<16)
	b, err := semaphore.NewBarrier(seg, "bar", 2)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := b.Wait(ctx)
		done <- err
	}()
	for b.Waiting() < 1 {
		time.Sleep(time.Millisecond)
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dead, err := proc.Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	obj, err := seg.Lookup("bar")
	if err != nil {
		t.Fatal(err)
	}
	// Barrier layout: lock word at 0, arrival count at 12.
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&obj.Bytes[0])), lock.OwnerWord(dead))
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&obj.Bytes[12])), 0)
	select {
	case err := <-done:
		if !errors.Is(err, semaphore.ErrBroken) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait = %v, want ErrBroken from the dead holder, not a timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return")
	}
}
