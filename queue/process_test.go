//go:build linux

package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// checkOrder checks that every consumer got each producer's messages in
// the order they were sent, and that together they got each message
// exactly once: seq 0 to counts[p]-1 of producer p.
func checkOrder(t *testing.T, results []consumed, counts map[int64]int) {
	t.Helper()
	seen := map[int64][]bool{}
	for p, n := range counts {
		seen[p] = make([]bool, n)
	}
	for c, r := range results {
		for p, seqs := range r.Seqs {
			if seen[p] == nil {
				t.Fatalf("consumer %d got messages of unknown producer %d", c, p)
			}
			for k, s := range seqs {
				if k > 0 && s <= seqs[k-1] {
					t.Fatalf("consumer %d got message %d of producer %d after %d", c, s, p, seqs[k-1])
				}
				if s < 0 || s >= int64(len(seen[p])) {
					t.Fatalf("consumer %d got message %d of producer %d, which sent %d", c, s, p, len(seen[p]))
				}
				if seen[p][s] {
					t.Fatalf("message %d of producer %d received twice", s, p)
				}
				seen[p][s] = true
			}
		}
	}
	for p, s := range seen {
		for i, ok := range s {
			if !ok {
				t.Fatalf("message %d of producer %d never received", i, p)
			}
		}
	}
}

func results(t *testing.T, ps []*process.Process) []consumed {
	t.Helper()
	out := make([]consumed, len(ps))
	for i, p := range ps {
		if err := p.Result(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestProcessesExactlyOnceInOrder: 4 producer and 4 consumer processes,
// 100 000 messages each producer.
func TestProcessesExactlyOnceInOrder(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	const producers, consumers = 4, 4
	seg := shmtest.Segment(t, 1<<20)
	shmtest.NewGate(t, seg)
	q, err := queue.New[msg](seg, "q", queue.Capacity(256))
	if err != nil {
		t.Fatal(err)
	}
	w := work{Segment: seg.Name(), Queue: "q", Kind: "msg", N: n, Gate: true}
	prods := shmtest.Start(t, producers, func(i int) (*process.Process, error) {
		w := w
		w.Producer = int64(i)
		return produce.Start(w)
	})
	cons := shmtest.Start(t, consumers, func(int) (*process.Process, error) { return consume.Start(w) })
	shmtest.Release(t, seg, append(append([]*process.Process{}, prods...), cons...))
	shmtest.JoinAll(t, prods)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	shmtest.JoinAll(t, cons)
	counts := map[int64]int{}
	for p := range producers {
		counts[int64(p)] = n
	}
	checkOrder(t, results(t, cons), counts)
	if q.Len() != 0 || q.Abandoned() != 0 {
		t.Fatalf("after the run Len = %d, Abandoned = %d; want 0, 0", q.Len(), q.Abandoned())
	}
}

// victim is a producer or consumer that runs until killed, recording its
// progress in the segment after every operation.
type victim struct {
	Segment string
	Role    string // "producer" or "consumer"
}

// The cells and arrays the victims record in.
const (
	putDone  = "put-done"  // producer: sequence number of its last Put that returned
	gotCount = "got-count" // consumers: messages received, per (producer, seq)
	started  = "started"   // set once the victim is under way
)

const victimProducer = 1 // the victim producer's number; the survivor is 0

var runVictim = process.Register("queue_test.victim", func(ctx context.Context, v victim) (int, error) {
	seg, err := shm.Open(v.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	q, err := queue.Open[msg](seg, "q")
	if err != nil {
		return 0, err
	}
	go1, err := value.Open[bool](seg, started)
	if err != nil {
		return 0, err
	}
	switch v.Role {
	case "producer":
		done, err := value.Open[int64](seg, putDone)
		if err != nil {
			return 0, err
		}
		for i := int64(0); ; i++ {
			if err := q.Put(ctx, newMsg(victimProducer, i)); err != nil {
				return 0, err
			}
			done.Store(i)
			go1.Store(true)
		}
	default:
		got, err := array.Open[int32](seg, gotCount)
		if err != nil {
			return 0, err
		}
		for {
			m, err := q.Get(ctx)
			if err != nil {
				return 0, err
			}
			if !m.whole() {
				return 0, fmt.Errorf("torn message %+v", m)
			}
			got.Add(int(m.Seq), 1)
			go1.Store(true)
		}
	}
})

// killTrials runs trials of a queue shared by a victim (a producer or a
// consumer, killed with SIGKILL at a random moment while it works) and
// survivors, and checks what the survivors see.
func killTrials(t *testing.T, role string, trials int) {
	for trial := range trials {
		seg := shmtest.Segment(t, 1<<20)
		q, err := queue.New[msg](seg, "q", queue.Capacity(64))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := value.New[int64](seg, putDone); err != nil {
			t.Fatal(err)
		}
		const n = 20_000
		if _, err := array.New[int32](seg, gotCount, n); err != nil {
			t.Fatal(err)
		}
		flag, err := value.New[bool](seg, started)
		if err != nil {
			t.Fatal(err)
		}
		p, err := runVictim.Start(victim{Segment: seg.Name(), Role: role})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		switch role {
		case "producer":
			// This process consumes, while the victim and a surviving
			// producer put.
			survivor, err := produce.Start(work{Segment: seg.Name(), Queue: "q", Kind: "msg", N: n})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var got consumed
			var getErr error
			wg.Go(func() {
				got.Seqs = map[int64][]int64{}
				for m, err := range q.All(ctx) {
					if err != nil {
						getErr = err
						return
					}
					if !m.whole() {
						getErr = fmt.Errorf("torn message %+v", m)
						return
					}
					got.Seqs[m.Producer] = append(got.Seqs[m.Producer], m.Seq)
				}
			})
			shmtest.WaitUntil(t, "the victim under way", flag.Load, p)
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			p.Kill()
			p.Join(ctx)
			shmtest.JoinAll(t, []*process.Process{survivor})
			q.Close()
			wg.Wait()
			if getErr != nil {
				t.Fatalf("trial %d: %v", trial, getErr)
			}
			done, _ := value.Open[int64](seg, putDone)
			last := done.Load()
			vs := got.Seqs[victimProducer]
			if int64(len(vs)) < last+1 || int64(len(vs)) > last+2 {
				t.Fatalf("trial %d: got %d messages of the killed producer, whose last returned Put was of message %d", trial, len(vs), last)
			}
			checkOrder(t, []consumed{got}, map[int64]int{0: n, victimProducer: len(vs)})
			if a := q.Abandoned(); a > 1 {
				t.Fatalf("trial %d: %d claims abandoned by one producer", trial, a)
			}
		default:
			// The victim and a surviving consumer get, while this
			// process puts n messages.
			survivor, err := runSurvivor.Start(victim{Segment: seg.Name(), Role: "consumer"})
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				for i := range int64(n) {
					if err := q.Put(ctx, newMsg(0, i)); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			shmtest.WaitUntil(t, "the victim under way", flag.Load, p)
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			p.Kill()
			p.Join(ctx)
			if err := <-errc; err != nil {
				t.Fatalf("trial %d: put: %v", trial, err)
			}
			q.Close()
			shmtest.JoinAll(t, []*process.Process{survivor})
			got, _ := array.Open[int32](seg, gotCount)
			missing := 0
			for i := range n {
				switch c := got.Load(i); c {
				case 1:
				case 0:
					missing++
				default:
					t.Fatalf("trial %d: message %d received %d times", trial, i, c)
				}
			}
			// The victim may have taken one message and died before
			// recording it: the queue handed it over, the test's own
			// bookkeeping lost it.
			if missing > 1 {
				t.Fatalf("trial %d: %d messages missing after one consumer died", trial, missing)
			}
			// The queue counts a message taken inside a Get that never
			// returned (or, in the instant before the take, one it did
			// not take); the victim's own window between Get and its
			// record is the test's, and goes uncounted.
			if lost := q.Lost(); lost > 1 {
				t.Fatalf("trial %d: Lost = %d with %d messages missing", trial, lost, missing)
			}
		}
		cancel()
	}
}

// runSurvivor is a consumer that records what it gets, until io.EOF.
var runSurvivor = process.Register("queue_test.survivor", func(ctx context.Context, v victim) (int, error) {
	seg, err := shm.Open(v.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	q, err := queue.Open[msg](seg, "q")
	if err != nil {
		return 0, err
	}
	got, err := array.Open[int32](seg, gotCount)
	if err != nil {
		return 0, err
	}
	n := 0
	for m, err := range q.All(ctx) {
		if err != nil {
			return n, err
		}
		if !m.whole() {
			return n, fmt.Errorf("torn message %+v", m)
		}
		got.Add(int(m.Seq), 1)
		n++
	}
	return n, nil
})

func trials(t *testing.T) int {
	if testing.Short() {
		return 10
	}
	return 100
}

func TestProducerKilledInPut(t *testing.T) { killTrials(t, "producer", trials(t)) }

func TestConsumerKilledInGet(t *testing.T) { killTrials(t, "consumer", trials(t)) }

// holder gets k tasks from a joinable queue, marks none done, records
// that it holds them and waits to be killed.
var holder = process.Register("queue_test.holder", func(ctx context.Context, w work) (int, error) {
	seg, err := shm.Open(w.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	q, err := queue.OpenJoinable[int64](seg, w.Queue)
	if err != nil {
		return 0, err
	}
	for range w.N {
		if _, err := q.Get(ctx); err != nil {
			return 0, err
		}
	}
	flag, err := value.Open[bool](seg, started)
	if err != nil {
		return 0, err
	}
	flag.Store(true)
	<-ctx.Done()
	return 0, ctx.Err()
})

// worker gets tasks from a joinable queue and marks each done, until
// io.EOF.
var taskWorker = process.Register("queue_test.taskworker", func(ctx context.Context, w work) (int, error) {
	seg, err := shm.Open(w.Segment)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	q, err := queue.OpenJoinable[int64](seg, w.Queue)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		_, err := q.Get(ctx)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		if err := q.TaskDone(); err != nil {
			return n, err
		}
	}
})

func TestJoinReportsTasksOfDeadConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.NewJoinable[int64](seg, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	flag, err := value.New[bool](seg, started)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(100) {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	const held = 3
	h, err := holder.Start(work{Segment: seg.Name(), Queue: "jobs", N: held})
	if err != nil {
		t.Fatal(err)
	}
	shmtest.WaitUntil(t, "the holder holding its tasks", flag.Load, h)
	w, err := taskWorker.Start(work{Segment: seg.Name(), Queue: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	// Join waits for the holder while it lives.
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	err = q.Join(short)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join while a live consumer holds tasks = %v, want DeadlineExceeded", err)
	}
	h.Kill()
	h.Join(ctx)
	dead := time.Now()
	err = q.Join(ctx)
	took := time.Since(dead)
	var lost *queue.LostError
	if !errors.As(err, &lost) || !errors.Is(err, queue.ErrTasksLost) || lost.Count != held {
		t.Fatalf("Join after the holder died = %v, want a LostError of %d tasks", err, held)
	}
	if took > 100*time.Millisecond {
		t.Errorf("Join took %v after the death to return", took)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatalf("a second Join = %v, want nil (the loss was reported)", err)
	}
	q.Close()
	shmtest.JoinAll(t, []*process.Process{w})
	var n int
	if err := w.Result(&n); err != nil || n != 100-held {
		t.Fatalf("worker did %d tasks (%v), want %d", n, err, 100-held)
	}
	if err := q.TaskDone(); !errors.Is(err, queue.ErrTaskDone) {
		t.Fatalf("TaskDone without a task = %v, want ErrTaskDone", err)
	}
}

// waiters starts w.N goroutines blocked in Get and reports the process's
// threads once they are all waiting, then how many messages they got.
type waitReport struct {
	Threads, Got int
}

var waiters = process.Register("queue_test.waiters", func(ctx context.Context, w work) (waitReport, error) {
	seg, err := shm.Open(w.Segment)
	if err != nil {
		return waitReport{}, err
	}
	defer seg.Close()
	q, err := queue.Open[int64](seg, w.Queue)
	if err != nil {
		return waitReport{}, err
	}
	ready, err := value.Open[int64](seg, "waiting")
	if err != nil {
		return waitReport{}, err
	}
	var got sync.WaitGroup
	var n, fails int64
	var mu sync.Mutex
	for range w.N {
		got.Go(func() {
			_, err := q.Get(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails++
			} else {
				n++
			}
		})
	}
	// Let every goroutine reach its park, then count threads.
	time.Sleep(200 * time.Millisecond)
	threads, err := proc.Threads(os.Getpid())
	if err != nil {
		return waitReport{}, err
	}
	ready.Add(1)
	got.Wait()
	if fails > 0 {
		return waitReport{}, fmt.Errorf("%d Gets failed", fails)
	}
	return waitReport{Threads: threads, Got: int(n)}, nil
})

func TestWaitersHoldNoThreads(t *testing.T) {
	ctx := context.Background()
	seg := shmtest.Segment(t, 1<<20)
	q, err := queue.New[int64](seg, "q")
	if err != nil {
		t.Fatal(err)
	}
	ready, err := value.New[int64](seg, "waiting")
	if err != nil {
		t.Fatal(err)
	}
	const procs, each = 2, 500
	ps := shmtest.Start(t, procs, func(int) (*process.Process, error) {
		return waiters.Start(work{Segment: seg.Name(), Queue: "q", N: each})
	})
	shmtest.WaitUntil(t, "the waiters parked", func() bool { return ready.Load() == procs }, ps...)
	for i := range int64(procs * each) {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	shmtest.JoinAll(t, ps)
	for _, p := range ps {
		var r waitReport
		if err := p.Result(&r); err != nil {
			t.Fatal(err)
		}
		// A Go program runs a handful of threads, plus one per CPU
		// and a park watcher; a thread per waiter would be 500.
		if limit := 20 + 2*runtime.NumCPU(); r.Threads > limit {
			t.Errorf("worker with %d goroutines in Get ran %d threads, want at most %d", each, r.Threads, limit)
		}
		if r.Got != each {
			t.Errorf("worker's goroutines got %d messages, want %d", r.Got, each)
		}
	}
}
