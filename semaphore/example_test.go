//go:build linux

package semaphore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// The functions below run in worker processes, copies of this program
// started by package process. They are registered at package level so that
// the workers register them too, and the program's main must call
// process.Main first (the test binary's TestMain has done so, and the
// examples' own calls return at once). Each worker finds its objects in
// the segment its parent passed with process.Segments.

// deposit adds 1 to the plain, unsynchronised counter "balance" n times,
// each time under the mutex "mu".
var deposit = process.Register("semaphore_example.deposit", func(ctx context.Context, n int) (struct{}, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	mu, err := semaphore.OpenMutex(segs[0], "mu")
	if err != nil {
		return struct{}{}, err
	}
	balance, err := segs[0].Lookup("balance")
	if err != nil {
		return struct{}{}, err
	}
	for range n {
		mu.Lock()
		// A read and a write: without the lock, two processes could
		// read the same old balance and one deposit would be lost.
		b := binary.LittleEndian.Uint64(balance.Bytes)
		binary.LittleEndian.PutUint64(balance.Bytes, b+1)
		mu.Unlock()
	}
	return struct{}{}, nil
})

// A Mutex makes a read-modify-write of memory shared by several processes
// safe, as sync.Mutex does for goroutines. Two workers deposit 500 times
// each into a counter that has no atomicity of its own.
func ExampleMutex() {
	process.Main() // first in main: in a worker, runs its function and exits

	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	if _, err := semaphore.NewMutex(seg, "mu"); err != nil {
		log.Fatal(err)
	}
	balance, err := seg.Alloc(shm.ObjectSpec{Name: "balance", Kind: "raw", Size: 8})
	if err != nil {
		log.Fatal(err)
	}

	var workers []*process.Process
	for range 2 {
		p, err := deposit.Start(500, process.Segments(seg))
		if err != nil {
			log.Fatal(err)
		}
		workers = append(workers, p)
	}
	for _, p := range workers {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(binary.LittleEndian.Uint64(balance.Bytes))
	// Output: 1000
}

// lockAndDie takes the mutex "mu" and exits without unlocking it, as a
// process that crashes in its critical section does.
var lockAndDie = process.Register("semaphore_example.lockAndDie", func(ctx context.Context, _ struct{}) (struct{}, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return struct{}{}, err
	}
	mu, err := semaphore.OpenMutex(segs[0], "mu")
	if err != nil {
		return struct{}{}, err
	}
	mu.Lock()
	os.Exit(3)
	return struct{}{}, nil
})

// A Mutex records which process holds it. When the holder dies, the next
// process to lock it takes it over (within CheckInterval) instead of
// waiting for ever, and LockContext says so by returning an error matching
// ErrOwnerDead, with the lock held. The new holder repairs what the lock
// protects, which the dead process may have left half changed, and calls
// MarkConsistent; unlocking without it would make the mutex unusable
// (every later LockContext returns ErrNotRecoverable). Lock, which has no
// error result, takes the lock over silently.
func ExampleMutex_LockContext() {
	process.Main() // first in main: in a worker, runs its function and exits

	ctx := context.Background()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	mu, err := semaphore.NewMutex(seg, "mu")
	if err != nil {
		log.Fatal(err)
	}

	_, err = lockAndDie.Run(ctx, struct{}{}, process.Segments(seg))
	var exit *process.ExitError
	if errors.As(err, &exit) {
		fmt.Println("worker exited with status", exit.Code)
	}

	err = mu.LockContext(ctx)
	fmt.Println(errors.Is(err, semaphore.ErrOwnerDead))
	if errors.Is(err, semaphore.ErrOwnerDead) {
		// Check and repair the protected state here, then:
		if err := mu.MarkConsistent(); err != nil {
			log.Fatal(err)
		}
	} else if err != nil {
		log.Fatal(err)
	}
	mu.Unlock()

	fmt.Println(mu.LockContext(ctx)) // an ordinary lock again
	mu.Unlock()
	// Output:
	// worker exited with status 3
	// true
	// <nil>
}

// A Semaphore holds a number of permits that any process may take and
// return: here two, so at most two holders at a time. Permits have no
// owner, so a process that dies holding one does not give it back.
func ExampleSemaphore() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	slots, err := semaphore.NewSemaphore(seg, "slots", 2)
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println(slots.TryAcquire(), slots.TryAcquire(), slots.TryAcquire())

	// Acquire waits for a permit as long as its context allows; the
	// error it returns then wraps the context's.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = slots.Acquire(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), slots.Value())

	if err := slots.Release(); err != nil { // any process may release
		log.Fatal(err)
	}
	fmt.Println(slots.Acquire(context.Background()), slots.Value())
	// Output:
	// true true false
	// true 0
	// <nil> 0
}

// A BoundedSemaphore refuses a Release that would raise it above its
// initial value, which catches a process releasing what it never acquired.
func ExampleBoundedSemaphore() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	slots, err := semaphore.NewBoundedSemaphore(seg, "slots", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(slots.TryAcquire(), slots.Release())
	err = slots.Release()
	fmt.Println(errors.Is(err, semaphore.ErrOverRelease), slots.Value())
	// Output:
	// true <nil>
	// true 1
}

// serve signals "ready" once it is set up, then runs until "stop" is set.
var serve = process.Register("semaphore_example.serve", func(ctx context.Context, _ struct{}) (string, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return "", err
	}
	ready, err := semaphore.OpenEvent(segs[0], "ready")
	if err != nil {
		return "", err
	}
	stop, err := semaphore.OpenEvent(segs[0], "stop")
	if err != nil {
		return "", err
	}
	ready.Set()
	if err := stop.Wait(ctx); err != nil {
		return "", err
	}
	return "stopped cleanly", nil
})

// An Event is a flag that any process can set and any process can wait
// for. Here the parent waits until a worker is ready, then tells it to
// stop.
func ExampleEvent() {
	process.Main() // first in main: in a worker, runs its function and exits

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	ready, err := semaphore.NewEvent(seg, "ready")
	if err != nil {
		log.Fatal(err)
	}
	stop, err := semaphore.NewEvent(seg, "stop")
	if err != nil {
		log.Fatal(err)
	}

	p, err := serve.Start(struct{}{}, process.Segments(seg))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Kill() // in case of an early return; nothing once it has exited
	if err := ready.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("worker ready:", ready.IsSet())

	stop.Set()
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	var result string
	if err := p.Result(&result); err != nil {
		log.Fatal(err)
	}
	fmt.Println(result)
	// Output:
	// worker ready: true
	// stopped cleanly
}

// meet waits at the barrier "start" and returns its place in the arrivals.
var meet = process.Register("semaphore_example.meet", func(ctx context.Context, _ struct{}) (int, error) {
	segs, err := process.InheritedSegments()
	if err != nil {
		return 0, err
	}
	b, err := semaphore.OpenBarrier(segs[0], "start")
	if err != nil {
		return 0, err
	}
	return b.Wait(ctx)
})

// A Barrier holds each of a fixed number of parties at Wait until all of
// them have arrived. Here two workers and the parent meet; Wait returns
// each party's place in the order of arrival, which varies from run to
// run, but between them the three places are always 0, 1 and 2. A party
// that dies or gives up while waiting breaks the barrier, and the others
// get ErrBroken instead of waiting for ever.
func ExampleBarrier() {
	process.Main() // first in main: in a worker, runs its function and exits

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	start, err := semaphore.NewBarrier(seg, "start", 3)
	if err != nil {
		log.Fatal(err)
	}

	var workers []*process.Process
	for range 2 {
		p, err := meet.Start(struct{}{}, process.Segments(seg))
		if err != nil {
			log.Fatal(err)
		}
		defer p.Kill()
		workers = append(workers, p)
	}
	mine, err := start.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	places := []int{mine}
	for _, p := range workers {
		var place int
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if err := p.Result(&place); err != nil {
			log.Fatal(err)
		}
		places = append(places, place)
	}
	slices.Sort(places)
	fmt.Println(places)
	// Output: [0 1 2]
}
