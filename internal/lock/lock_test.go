//go:build linux

package lock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proc"
)

func newMutex(t *testing.T) (Mutex, *uint64) {
	t.Helper()
	w := new(uint64)
	m, err := New(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, w
}

// deadProcess returns the identity of a process that has exited and been
// reaped.
func deadProcess(t *testing.T) proc.ID {
	t.Helper()
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := proc.Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return id
}

func TestLockUnlock(t *testing.T) {
	m, w := newMutex(t)
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !m.HeldByMe() || m.TryLock() {
		t.Fatal("lock not held after Lock")
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if *w != 0 {
		t.Fatalf("word after unlock = %#x, want 0", *w)
	}
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("second Unlock = %v, want ErrNotOwner", err)
	}
}

func TestContendedGoroutinesExact(t *testing.T) {
	m, _ := newMutex(t)
	const workers, iters = 8, 20000
	n := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range iters {
				if err := m.Lock(context.Background()); err != nil {
					t.Error(err)
					return
				}
				n++
				m.Unlock()
			}
		})
	}
	wg.Wait()
	if n != workers*iters {
		t.Fatalf("n = %d, want %d", n, workers*iters)
	}
}

func TestDeadOwnerRecovered(t *testing.T) {
	m, w := newMutex(t)
	*w = OwnerWord(deadProcess(t))
	start := time.Now()
	err := m.Lock(context.Background())
	if !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock = %v, want ErrOwnerDead", err)
	}
	if d := time.Since(start); d > 4*CheckInterval {
		t.Errorf("recovery took %v, want at most %v", d, 4*CheckInterval)
	}
	if !m.HeldByMe() {
		t.Fatal("lock not held after ErrOwnerDead")
	}
	if err := m.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := m.Lock(context.Background()); err != nil {
		t.Fatalf("Lock after repair = %v, want nil", err)
	}
	m.Unlock()
}

// TestReusedPidIsNotTheOwner puts this process's own pid in the word with a
// start time that is not ours: a process that reused the owner's pid.
func TestReusedPidIsNotTheOwner(t *testing.T) {
	m, w := newMutex(t)
	id, err := proc.Self()
	if err != nil {
		t.Fatal(err)
	}
	id.Start++
	*w = OwnerWord(id)
	if err := m.Lock(context.Background()); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock = %v, want ErrOwnerDead", err)
	}
	m.MarkConsistent()
	m.Unlock()
}

func TestLiveOwnerKeepsLock(t *testing.T) {
	m, w := newMutex(t)
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	id, err := proc.Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	*w = OwnerWord(id)
	ctx, cancel := context.WithTimeout(context.Background(), 3*CheckInterval)
	defer cancel()
	if err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock = %v, want DeadlineExceeded", err)
	}
	if got := *w &^ waitersBit; got != OwnerWord(id) {
		t.Fatalf("word after failed Lock = %#x, want %#x", got, OwnerWord(id))
	}
}

func TestUnlockWithoutRepairPoisons(t *testing.T) {
	m, w := newMutex(t)
	*w = OwnerWord(deadProcess(t))
	if err := m.Lock(context.Background()); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock = %v, want ErrOwnerDead", err)
	}
	waiter := make(chan error)
	go func() { waiter <- m.Lock(context.Background()) }()
	// Give the waiter time to block; its result does not depend on it.
	time.Sleep(10 * time.Millisecond)
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; !errors.Is(err, ErrNotRecoverable) {
		t.Fatalf("waiter Lock = %v, want ErrNotRecoverable", err)
	}
	if err := m.Lock(context.Background()); !errors.Is(err, ErrNotRecoverable) {
		t.Fatalf("Lock = %v, want ErrNotRecoverable", err)
	}
	if m.TryLock() {
		t.Fatal("TryLock succeeded on an unrecoverable lock")
	}
}

func TestCancelWakesWaiter(t *testing.T) {
	m, _ := newMutex(t)
	m.Lock(context.Background())
	defer m.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Lock(ctx) }()
	time.Sleep(5 * time.Millisecond)
	start := time.Now()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock = %v, want Canceled", err)
	}
	if d := time.Since(start); d > CheckInterval/2 {
		t.Errorf("cancel took %v to wake the waiter", d)
	}
}

// TestDeadOwnerFoundDespiteWakeups keeps waking the waiters on a dead
// owner's lock, as processes retrying with short contexts do (a cancelled
// wait wakes everyone): the owner's death must still be noticed.
func TestDeadOwnerFoundDespiteWakeups(t *testing.T) {
	m, w := newMutex(t)
	*w = OwnerWord(deadProcess(t))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
			m.Lock(ctx)
			cancel()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := m.Lock(ctx)
	// The retrying goroutine may win the take-over; then it holds the lock
	// and this Lock waits for it, which it never unlocks, so ctx ends.
	if errors.Is(err, ErrOwnerDead) {
		if d := time.Since(start); d > 10*CheckInterval {
			t.Errorf("recovery took %v under constant wake-ups", d)
		}
		return
	}
	if !m.HeldByMe() && Owner(w) == 0 {
		t.Fatalf("Lock = %v and nobody holds the lock", err)
	}
	if *w&diedBit == 0 && Owner(w) != os.Getpid() {
		t.Fatalf("Lock = %v; the dead owner still holds the lock (word %#x)", err, *w)
	}
}
