//go:build linux

package park

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func threads(t *testing.T) int {
	n, err := proc.Threads(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestManyWaitersFewThreads parks 1000 goroutines on one word: they must
// not hold a thread each, and one change must wake them all.
func TestManyWaitersFewThreads(t *testing.T) {
	const n = 1000
	word := new(uint32)
	before := threads(t)
	var waiting, woken sync.WaitGroup
	waiting.Add(n)
	woken.Add(n)
	for range n {
		go func() {
			defer woken.Done()
			waiting.Done()
			for atomic.LoadUint32(word) == 0 {
				if err := Wait(context.Background(), word, 0, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	waiting.Wait()
	time.Sleep(50 * time.Millisecond) // let them reach the park
	if during := threads(t); during > before+10 {
		t.Errorf("threads went from %d to %d with %d goroutines waiting", before, during, n)
	}
	atomic.StoreUint32(word, 1)
	futex.Wake(word, 1)
	woken.Wait()
}

func TestWaitReturnsAtOnceWhenChanged(t *testing.T) {
	word := new(uint32)
	*word = 5
	if err := Wait(context.Background(), word, 4, 0); err != nil {
		t.Errorf("Wait on a changed word = %v", err)
	}
}

func TestWaitContextAndDeadline(t *testing.T) {
	word := new(uint32)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, word, 0, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an expiring context = %v", err)
	}
	if err := Wait(context.Background(), word, 0, futex.Now()+int64(10*time.Millisecond)); err != ErrTimeout {
		t.Errorf("Wait with a deadline = %v, want ErrTimeout", err)
	}
}

// TestChangeWithoutWake: a change that nobody announces with FUTEX_WAKE is
// still seen, within the watcher's period.
func TestChangeWithoutWake(t *testing.T) {
	word := new(uint32)
	done := make(chan error)
	go func() {
		for atomic.LoadUint32(word) == 0 {
			if err := Wait(context.Background(), word, 0, futex.Now()+int64(5*time.Second)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(10 * time.Millisecond)
	atomic.StoreUint32(word, 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiter did not see an unannounced change")
	}
}

// TestUnmapAfterWait unmaps the memory holding the word as soon as the
// last waiter has returned, as closing a segment does: the watcher, which
// lingers a little, must not touch it.
func TestUnmapAfterWait(t *testing.T) {
	for range 20 {
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		word := (*uint32)(unsafe.Pointer(&mem[0]))
		if err := Wait(context.Background(), word, 0, futex.Now()+int64(time.Millisecond)); err != ErrTimeout {
			t.Fatalf("Wait = %v, want ErrTimeout", err)
		}
		if err := unix.Munmap(mem); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * idleExit) // a watcher reading the unmapped word would crash the test
}

// TestNoLostWakeAtWatcherStart races a change of the word with the start
// of its watcher, over and over: a waiter registered before the watcher's
// first look must still be woken when the value it saw is gone.
func TestNoLostWakeAtWatcherStart(t *testing.T) {
	for i := range 3000 {
		word := new(uint32)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for atomic.LoadUint32(word) == 0 {
				if err := Wait(ctx, word, 0, 0); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		runtime.Gosched()
		atomic.StoreUint32(word, 1)
		futex.Wake(word, 1)
		if err := <-done; err != nil {
			t.Fatalf("iteration %d: waiter: %v", i, err)
		}
	}
}

// TestCloseWakes checks that Close wakes the waiters on words in the
// closed memory, and that later waits there return at once until Reopen.
func TestCloseWakes(t *testing.T) {
	words := make([]uint32, 16)
	in, out := &words[4], &words[12]
	lo := uintptr(unsafe.Pointer(&words[0]))
	hi := uintptr(unsafe.Pointer(&words[8]))
	ctx, cancel := context.WithCancel(context.Background())
	woken := make(chan error)
	for _, w := range []*uint32{in, out} {
		go func() { woken <- Wait(ctx, w, 0, 0) }()
	}
	// Both must have registered before Close for it to wake one of them.
	for registered(in) == 0 || registered(out) == 0 {
		runtime.Gosched()
	}
	Close(lo, hi)
	if err := <-woken; err != nil {
		t.Errorf("waiter in closed memory: Wait = %v, want nil", err)
	}
	if err := Wait(ctx, in, 0, 0); err != nil {
		t.Errorf("Wait in closed memory = %v, want nil at once", err)
	}
	cancel() // the waiter outside the closed memory still waits
	if err := <-woken; !errors.Is(err, context.Canceled) {
		t.Errorf("waiter outside closed memory: Wait = %v, want context.Canceled", err)
	}
	Reopen(lo, hi)
	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	if err := Wait(short, in, 0, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait after Reopen = %v, want context.DeadlineExceeded", err)
	}
}

// registered returns how many goroutines are parked on addr.
func registered(addr *uint32) int {
	watchers.Lock()
	defer watchers.Unlock()
	w := watchers.m[addr]
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiters)
}
