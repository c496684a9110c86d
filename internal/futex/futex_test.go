//go:build linux

package futex

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitTimeout(t *testing.T) {
	var w uint32
	start := time.Now()
	if err := Wait(&w, 0, Now()+int64(20*time.Millisecond)); err != ErrTimeout {
		t.Fatalf("Wait = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Errorf("Wait returned after %v, before its deadline", d)
	}
	if err := Wait(&w, 0, Now()-1); err != ErrTimeout {
		t.Errorf("Wait with past deadline = %v, want ErrTimeout", err)
	}
}

func TestWaitValueChanged(t *testing.T) {
	w := uint32(1)
	if err := Wait(&w, 0, 0); err != nil {
		t.Errorf("Wait on a changed value = %v, want nil at once", err)
	}
}

func TestWake(t *testing.T) {
	var w uint32
	done := make(chan error)
	go func() {
		for atomic.LoadUint32(&w) == 0 {
			if err := Wait(&w, 0, Now()+int64(5*time.Second)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(5 * time.Millisecond)
	atomic.StoreUint32(&w, 1)
	Wake(&w, 1)
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if n := Wake(&w, 1); n != 0 {
		t.Errorf("Wake with no waiters woke %d", n)
	}
}
