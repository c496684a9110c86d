package pool

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/shmkit/shmkit/process"
)

// IMap runs fn on the arguments args yields, in the workers, and yields
// the results in the order of the arguments, each as soon as it and those
// before it are ready: Python's Pool.imap. It reads args on a goroutine of
// its own, only a bounded number of chunks ahead (32 per worker, plus
// three), so args may be endless; it has stopped reading
// args when the loop ends. An error ends the iteration after being
// yielded. Stopping the loop early drops the tasks that no worker has
// taken; those running finish, unheard. ctx cancels them all. Chunks
// are of one argument unless ChunkSize says otherwise.
func IMap[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], args iter.Seq[A], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, fn, args, true, opts)
}

// IMapUnordered is IMap yielding each result as soon as it is ready,
// whatever its argument's place: Python's Pool.imap_unordered.
func IMapUnordered[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], args iter.Seq[A], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, fn, args, false, opts)
}

// batch is one task of an IMap and its results.
type batch[R any] struct {
	rs   []R
	err  error
	done chan struct{}
}

// end records that b ended with err, and hands it to an unordered IMap's
// loop.
func (b *batch[R]) end(err error, ordered bool, finished chan<- *batch[R]) {
	b.err = err
	close(b.done)
	if !ordered {
		finished <- b
	}
}

func imap[A, R any](ctx context.Context, p *Pool, fn *process.Func[A, R], args iter.Seq[A], ordered bool, opts []CallOption) iter.Seq2[R, error] {
	o := callOptions{chunk: 1}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(R, error) bool) {
		var zero R
		if o.chunk < 1 {
			yield(zero, errors.New("pool: chunk size must be positive"))
			return
		}
		parent := ctx
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// At most window batches are read ahead of the loop: two small
		// bundles for each worker, and one more waiting for one.
		window := p.o.workers*ahead*bundleMin + 1
		sem := make(chan struct{}, window)
		inOrder := make(chan *batch[R], window)  // ordered: every batch, as submitted
		finished := make(chan *batch[R], window) // unordered: every batch, as it ends
		fed := make(chan int, 1)                 // how many batches, once args ends
		feederDone := make(chan struct{})
		c := p.newCall(parent, ctx, fn.Name(), bundleMin, func(t *task, parts [][]byte, err error) {
			b := t.ref.(*batch[R])
			if err == nil {
				b.rs = make([]R, t.n)
				if err = decodeResults(fn.Name(), parts, b.rs); err != nil {
					b.rs = nil
				}
			}
			b.end(err, ordered, finished)
		})
		go func() {
			defer close(feederDone)
			defer c.release()
			n, off, failed := 0, 0, false
			submit := func(run []A) bool {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return false
				}
				b := &batch[R]{done: make(chan struct{})}
				n++
				if ordered {
					inOrder <- b
				}
				msg, err := encodeTask(p, fn.Name(), run)
				if err != nil {
					b.end(fmt.Errorf("%w (argument %d)", err, off), ordered, finished)
					return false
				}
				t := c.newTask(off, len(run), msg)
				t.ref = b
				off += len(run)
				if p.submit(ctx, t) != nil {
					return false // t ended, and end reported why
				}
				return true
			}
			buf := make([]A, 0, o.chunk)
			for a := range args {
				buf = append(buf, a)
				if len(buf) == o.chunk {
					if !submit(buf) {
						failed = true
						break
					}
					buf = make([]A, 0, o.chunk)
				}
			}
			if !failed && len(buf) > 0 {
				submit(buf)
			}
			close(inOrder)
			fed <- n
		}()
		defer func() {
			cancel()
			<-feederDone
		}()
		deliver := func(b *batch[R]) bool {
			<-sem
			for _, r := range b.rs {
				if !yield(r, nil) {
					return false
				}
			}
			if b.err != nil {
				yield(zero, b.err)
				return false
			}
			return true
		}
		if ordered {
			for b := range inOrder {
				select {
				case <-b.done:
				case <-ctx.Done():
					yield(zero, ctx.Err())
					return
				}
				if !deliver(b) {
					return
				}
			}
			return
		}
		total, got := -1, 0
		for total < 0 || got < total {
			select {
			case b := <-finished:
				got++
				if !deliver(b) {
					return
				}
			case total = <-fed:
			case <-ctx.Done():
				yield(zero, ctx.Err())
				return
			}
		}
	}
}
