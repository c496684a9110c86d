package pool

// Taking back tasks. A task sent to a worker cannot be unsent, but a
// worker starts a task only by taking one from its budget cell, which the
// parent raises by the tasks it sends (under the worker's lock, before
// sending them): the budget is the number of tasks sent that the worker
// has not started, the last ones in its out list. Lowering it by n, with
// a compare-and-swap that fails if the worker has just taken one, makes
// the worker skip the last n tasks it was sent, which it answers as
// revoked: they can run elsewhere, exactly once.
//
// That repairs what the dispatch cannot know in advance: a bundle sent to
// a worker whose tasks were quick and turn out slow, or a task queued
// behind a long one. When a worker runs out of tasks and none waits for
// a worker, it takes half the tasks not started from the worker that has
// most of them.

// steal takes tasks not started from the worker holding most of them and
// hands them back to the pool, for thief, which has none, to take (or for
// any idle worker, when thief is nil).
func (p *Pool) steal(thief *worker) {
	if len(p.pending) > 0 {
		return
	}
	var (
		victim *worker
		most   int64
	)
	for _, w := range p.workerList() {
		if n := w.budget.Load(); w != thief && n > most {
			victim, most = w, n
		}
	}
	if victim == nil {
		return
	}
	ts := victim.revoke(int((most + 1) / 2))
	if len(ts) == 0 {
		return
	}
	p.putBack(ts)
}

// putBack returns ts, tasks taken from pending and not started, to
// pending, in order, so that the tasks of an IMap keep theirs; a task
// whose context ended meanwhile is finished instead.
func (p *Pool) putBack(ts []*task) {
	go func() {
		for _, t := range ts {
			if t.cancelErr.Load() != nil {
				t.finish(nil, nil) // reports the context's error
				continue
			}
			t.state.Store(taskPending)
			p.requeue(t)
		}
	}()
}

// revoke takes back up to n of the tasks w has been sent and not started,
// the last ones sent, leaving placeholders in w.out for the revoked
// answers the worker will give, and returns them. The budget lowered,
// the worker starts the tasks before them and skips them and every task
// after them (earlier placeholders).
func (w *worker) revoke(n int) []*task {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out == nil || w.sendDone {
		// Dead, or done sending for MaxTasksPerWorker, so that it
		// could not make up for what it lost.
		return nil
	}
	var m int64
	for {
		b := w.budget.Load()
		if m = min(int64(n), b); m <= 0 {
			return nil
		}
		if w.budget.CompareAndSwap(b, b-m) {
			break
		}
	}
	// The placeholders of earlier revocations, whose answers are
	// awaited, are last: no budget has been added since (see sendLoop).
	// The tasks not started are the budget's worth before them.
	end := len(w.out) - w.revoked
	tail := w.out[end-int(m) : end]
	ts := make([]*task, len(tail))
	for i, t := range tail {
		ts[i] = t
		tail[i] = &task{id: t.id, lastOfMessage: t.lastOfMessage}
	}
	w.revoked += len(ts)
	w.sent -= len(ts)
	return ts
}
