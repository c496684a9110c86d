package pool

import (
	"context"
	"iter"
	"math"
	"sync"
)

// WaitMode says when Wait returns.
type WaitMode int

// The modes of Wait, those of Python's concurrent.futures.wait.
const (
	AllCompleted   WaitMode = iota // every future is ready
	FirstCompleted                 // one future is ready
	FirstException                 // one future failed, or every future is ready
)

// AsCompleted yields the futures of fs as they become ready, each with its
// index in fs: Python's concurrent.futures.as_completed. It ends after
// the last, or when ctx ends (check ctx.Err()); the futures are not
// cancelled.
func AsCompleted[R any](ctx context.Context, fs []*Future[R]) iter.Seq2[int, *Future[R]] {
	return func(yield func(int, *Future[R]) bool) {
		ready := make(chan int, len(fs))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer func() {
			close(stop)
			wg.Wait()
		}()
		for i, f := range fs {
			wg.Go(func() {
				select {
				case <-f.done:
					ready <- i
				case <-stop:
				}
			})
		}
		for range fs {
			select {
			case i := <-ready:
				if !yield(i, fs[i]) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// Wait waits until the futures of fs satisfy mode, or ctx ends (returning
// ctx.Err()), and returns them split into those ready and those not, each
// in the order of fs: Python's concurrent.futures.wait.
func Wait[R any](ctx context.Context, fs []*Future[R], mode WaitMode) (done, notDone []*Future[R], err error) {
	failed := false
	for _, f := range AsCompleted(ctx, fs) {
		failed = failed || f.Err() != nil
		if mode == FirstCompleted || (mode == FirstException && failed) {
			break
		}
	}
	for _, f := range fs {
		if f.Ready() {
			done = append(done, f)
		} else {
			notDone = append(notDone, f)
		}
	}
	met := len(notDone) == 0 || (mode == FirstCompleted && len(done) > 0) || (mode == FirstException && failed)
	if !met {
		err = ctx.Err()
	}
	return done, notDone, err
}

// Shutdown is the executor's name for the end of a pool: it closes the
// pool and, with cancelPending, fails the tasks no worker has started with
// context.Canceled (Python's cancel_futures), then joins it (see Join).
func (p *Pool) Shutdown(ctx context.Context, cancelPending bool) error {
	p.Close()
	if cancelPending {
		p.drain(context.Canceled)
		for _, w := range p.workerList() {
			for _, t := range w.revoke(math.MaxInt) {
				t.finish(nil, context.Canceled)
			}
		}
	}
	return p.Join(ctx)
}
