//go:build linux

package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
)

// clientJob tells a client worker process where the server is and what to
// do.
type clientJob struct {
	Network, Address string
	Key              []byte
	NoShm            bool
	Iters            int
	Updates          int // of incrementer; 0 means Iters/10
	Worker           int
	Lease            time.Duration // on Redis
}

func (j clientJob) dial(ctx context.Context) (*Client, error) {
	return Dial(ctx, j.Network, j.Address, &Options{AuthKey: j.Key, NoSharedMemory: j.NoShm, Lease: j.Lease})
}

// incrementer adds 1 to a dict entry Iters times with Add, and Iters/10
// times with the optimistic Update, which must lose nothing either.
var incrementer = process.Register("manager-test/increment", func(ctx context.Context, j clientJob) (int, error) {
	c, err := j.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	d, err := OpenDict[string, int64](ctx, c, "counts")
	if err != nil {
		return 0, err
	}
	for range j.Iters {
		if _, err := d.Add(ctx, "add", 1); err != nil {
			return 0, err
		}
	}
	retries, updates := 0, j.Updates
	if updates == 0 {
		updates = j.Iters / 10
	}
	for range updates {
		if _, err := d.Update(ctx, "update", func(old int64, ok bool) (int64, error) {
			retries++
			return old + 1, nil
		}); err != nil {
			return 0, err
		}
	}
	return retries - updates, nil
})

// TestIncrementsExact is the lost-update program that Python's Manager
// fails: 8 processes increment one dict entry through proxies.
func TestIncrementsExact(t *testing.T) {
	for _, tr := range []struct {
		name  string
		noShm bool
	}{{"shm", false}, {"unix", true}} {
		t.Run(tr.name, func(t *testing.T) {
			m, err := Start(ctx, nil)
			must(t, err)
			defer func() { must(t, m.Shutdown(ctx)) }()
			network, address := m.Address()
			const procs, iters = 8, 10000
			ps := shmtest.Start(t, procs, func(i int) (*process.Process, error) {
				return incrementer.Start(clientJob{Network: network, Address: address, NoShm: tr.noShm, Iters: iters, Worker: i})
			})
			shmtest.JoinAll(t, ps)
			retries := 0
			for _, p := range ps {
				var r int
				must(t, p.Result(&r))
				retries += r
			}
			d, err := OpenDict[string, int64](ctx, m.Client(), "counts")
			must(t, err)
			if got, _, err := d.Get(ctx, "add"); got != procs*iters || err != nil {
				t.Errorf("after %d processes × %d Adds: %d, %v", procs, iters, got, err)
			}
			if got, _, err := d.Get(ctx, "update"); got != procs*iters/10 || err != nil {
				t.Errorf("after %d processes × %d Updates: %d, %v", procs, iters/10, got, err)
			}
			t.Logf("optimistic Update retried %d times", retries)
		})
	}
}

// locker takes the lock, reports it, and then sends requests without end
// until it is killed.
var locker = process.Register("manager-test/locker", func(ctx context.Context, j clientJob) (struct{}, error) {
	c, err := j.dial(ctx)
	if err != nil {
		return struct{}{}, err
	}
	l, err := OpenLock(ctx, c, "L")
	if err != nil {
		return struct{}{}, err
	}
	if err := l.Acquire(ctx); err != nil {
		return struct{}{}, err
	}
	d, err := OpenDict[int, int](ctx, c, "busy")
	if err != nil {
		return struct{}{}, err
	}
	ready, err := OpenEvent(ctx, c, "holding")
	if err != nil {
		return struct{}{}, err
	}
	if err := ready.Set(ctx); err != nil {
		return struct{}{}, err
	}
	for i := 0; ; i++ {
		b := c.NewBatch()
		for k := range 256 {
			d.SetIn(b, k, i)
		}
		if err := b.Do(ctx); err != nil {
			return struct{}{}, err
		}
	}
})

// TestClientKilledMidRequest kills a client that holds a Lock while it has
// requests in flight. The server releases the lock with ErrOwnerDead to the
// next holder and goes on serving.
func TestClientKilledMidRequest(t *testing.T) {
	for _, noShm := range []bool{false, true} {
		t.Run(fmt.Sprintf("noShm=%v", noShm), func(t *testing.T) {
			ts := startServer(t, transport{name: "unix", network: "unix"})
			c := ts.dial(t)
			p, err := locker.Start(clientJob{Network: "unix", Address: ts.address, NoShm: noShm})
			must(t, err)
			ev, _ := OpenEvent(ctx, c, "holding")
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			must(t, ev.Wait(wctx))
			time.Sleep(20 * time.Millisecond) // let batches flow
			must(t, p.Kill())
			p.Join(ctx)
			l, _ := OpenLock(ctx, c, "L")
			if err := l.Acquire(wctx); !errors.Is(err, ErrOwnerDead) {
				t.Fatalf("Acquire after the holder was killed = %v, want ErrOwnerDead", err)
			}
			must(t, l.Release(ctx))
			d, _ := OpenDict[int, int](ctx, c, "busy")
			if n, err := d.Len(ctx); n != 256 || err != nil {
				t.Errorf("server after the kill: Len = %d, %v", n, err)
			}
			shmtest.WaitUntil(t, "the server to drop the dead connection", func() bool {
				ts.omu.Lock()
				defer ts.omu.Unlock()
				return len(ts.conns) == 1
			})
		})
	}
}

// adder adds 1 to a Value until it has had Iters successes after its first
// failure, redialling (by calling again) whenever the server is gone.
var adder = process.Register("manager-test/adder", func(ctx context.Context, j clientJob) ([2]int, error) {
	var c *Client
	var v *Value[int]
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	failures, after := 0, 0
	deadline := time.Now().Add(time.Minute)
	for after < j.Iters {
		if time.Now().After(deadline) {
			return [2]int{}, errors.New("no progress for a minute")
		}
		var err error
		switch {
		case c == nil:
			c, err = j.dial(ctx)
		case v == nil:
			v, err = OpenValue[int](ctx, c, "n")
			if err == nil && failures == 0 {
				var hello *List[int]
				if hello, err = OpenList[int](ctx, c, "hello"); err == nil {
					_, err = hello.Append(ctx, j.Worker)
				}
			}
		default:
			_, err = v.Add(ctx, 1)
			if err == nil && failures > 0 {
				after++
			}
		}
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				return [2]int{}, err
			}
			failures++
			time.Sleep(time.Millisecond)
		}
	}
	return [2]int{failures, after}, nil
})

// TestServerRestart kills the server process while clients are busy and
// starts another on the same socket. Clients see ErrClosed, reconnect on
// their next call, and their proxies find their objects again by name.
func TestServerRestart(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sock")
	startSrv := func() *process.Process {
		p, err := serveInWorker.Start(serveArg{Socket: sock}, process.Daemon())
		must(t, err)
		return p
	}
	srv := startSrv()
	var c *Client
	shmtest.WaitUntil(t, "the server to listen", func() bool {
		var err error
		c, err = Dial(ctx, "unix", sock, nil)
		return err == nil
	}, srv)
	const clients, iters = 4, 300
	ps := shmtest.Start(t, clients, func(i int) (*process.Process, error) {
		return adder.Start(clientJob{Network: "unix", Address: sock, Iters: iters, Worker: i})
	})
	v, _ := OpenValue[int](ctx, c, "n")
	hello, _ := OpenList[int](ctx, c, "hello")
	shmtest.WaitUntil(t, "every client to connect and add", func() bool {
		n, err := v.Load(ctx)
		k, err2 := hello.Len(ctx)
		return err == nil && err2 == nil && n >= 500 && k == clients
	}, append(ps, srv)...)
	must(t, srv.Kill())
	srv.Join(ctx)
	if _, err := v.Load(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after the server died = %v, want ErrClosed", err)
	}
	srv = startSrv()
	defer func() {
		srv.Terminate()
		srv.Join(ctx)
	}()
	shmtest.JoinAll(t, ps)
	after := 0
	for _, p := range ps {
		var r [2]int
		must(t, p.Result(&r))
		if r[0] == 0 {
			t.Errorf("worker saw no failure")
		}
		after += r[1]
	}
	var n int
	shmtest.WaitUntil(t, "the test's client to reconnect", func() bool {
		var err error
		n, err = v.Load(ctx)
		return err == nil
	}, srv)
	// Each worker's first failure came after the kill, so its later
	// successes, and only those, went to the new server.
	if n != after {
		t.Errorf("new server counted %d, clients %d successes after their first failure", n, after)
	}
	c.Close()
}

// TestStartShutdown checks the Manager lifecycle: a server in its own
// process, reachable by other clients, gone after Shutdown.
func TestStartShutdown(t *testing.T) {
	m, err := Start(ctx, nil)
	must(t, err)
	network, address := m.Address()
	c2, err := Dial(ctx, network, address, nil)
	must(t, err)
	d, _ := OpenDict[string, string](ctx, m.Client(), "d")
	must(t, d.Set(ctx, "k", "v"))
	d2, _ := OpenDict[string, string](ctx, c2, "d")
	if v, _, err := d2.Get(ctx, "k"); v != "v" || err != nil {
		t.Errorf("other client Get = %q, %v", v, err)
	}
	must(t, m.Shutdown(ctx))
	must(t, m.Shutdown(ctx))
	if _, _, err := d2.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Shutdown = %v, want ErrClosed", err)
	}
	c2.Close()
	c2.Close()
}

// waiting opens the queue Q and the lock L, parks a Get on one and an
// Acquire on the other (the test watches the server to see both parked),
// and waits to be killed.
var waiting = process.Register("manager-test/parker", func(ctx context.Context, j clientJob) (struct{}, error) {
	c, err := j.dial(ctx)
	if err != nil {
		return struct{}{}, err
	}
	q, err := OpenQueue[int](ctx, c, "Q", 0)
	if err != nil {
		return struct{}{}, err
	}
	l, err := OpenLock(ctx, c, "L")
	if err != nil {
		return struct{}{}, err
	}
	errs := make(chan error, 2)
	go func() {
		v, err := q.Get(ctx)
		errs <- fmt.Errorf("Get returned %d, %v", v, err)
	}()
	go func() { errs <- fmt.Errorf("Acquire returned %v", l.Acquire(ctx)) }()
	return struct{}{}, <-errs // either is a failure: both should wait to be killed
})

// parkedOn returns how many requests are parked on the object named name
// of the server.
func parkedOn(s *Server, name string) int {
	s.omu.Lock()
	id := s.byName[name]
	s.omu.Unlock()
	switch o := s.object(id).(type) {
	case *queueObj:
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.getters) + len(o.putters)
	case *lockObj:
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.waiters)
	}
	return 0
}

// TestParkedClientKilled kills a client process while it has a Get and an
// Acquire parked, and reaps it: its socket is closed then, although the
// server may not have noticed yet. A Put that follows must not hand its
// item to the dead client, nor a Release the lock: the item stays for the
// next Get, and the lock is free, with no owner death to report.
func TestParkedClientKilled(t *testing.T) {
	for _, tr := range []struct {
		name  string
		noShm bool
	}{{"shm", false}, {"unix", true}} {
		t.Run(tr.name, func(t *testing.T) {
			ts := startServer(t, transport{name: "unix", network: "unix"})
			c, c2 := ts.dial(t), ts.dial(t)
			q, _ := OpenQueue[int](ctx, c, "Q", 0)
			l, _ := OpenLock(ctx, c, "L")
			l2, _ := OpenLock(ctx, c2, "L")
			const trials = 20
			for trial := range trials {
				must(t, l.Acquire(ctx))
				p, err := waiting.Start(clientJob{Network: "unix", Address: ts.address, NoShm: tr.noShm})
				must(t, err)
				shmtest.WaitUntil(t, "the client to park a Get and an Acquire", func() bool {
					return parkedOn(ts.Server, "Q") == 1 && parkedOn(ts.Server, "L") == 1
				}, p)
				must(t, p.Kill())
				p.Join(ctx)
				must(t, q.Put(ctx, trial))
				if v, ok, err := q.TryGet(ctx); !ok || v != trial || err != nil {
					t.Fatalf("trial %d: TryGet after a Put that followed the parked getter's death = %d, %v, %v; want the item",
						trial, v, ok, err)
				}
				must(t, l.Release(ctx))
				if ok, err := l2.TryAcquire(ctx); !ok || err != nil {
					t.Fatalf("trial %d: TryAcquire after a Release that followed the parked waiter's death = %v, %v; want true, nil",
						trial, ok, err)
				}
				must(t, l2.Release(ctx))
				shmtest.WaitUntil(t, "the server to drop the dead connection", func() bool {
					ts.omu.Lock()
					defer ts.omu.Unlock()
					return len(ts.conns) == 2
				})
			}
		})
	}
}

// managerParent starts a Manager, writes its socket's directory and its
// server's pid to the pipe it inherits, and waits to be killed.
var managerParent = process.Register("manager-test/managerParent", func(ctx context.Context, _ struct{}) (struct{}, error) {
	m, err := Start(ctx, nil)
	if err != nil {
		return struct{}{}, err
	}
	_, address := m.Address()
	f := process.InheritedFiles()[0]
	_, err = fmt.Fprintf(f, "%s %d\n", filepath.Dir(address), m.Process().Pid())
	f.Close()
	if err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, m.Shutdown(context.Background())
})

// privateTempDir points os.TempDir at a new directory for the rest of the
// test, so that tests see only the manager directories they make. Its
// path is short: a socket's path has at most 107 bytes.
func privateTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mgr")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
	return dir
}

// killedManagerParent starts a process that starts a Manager, kills it
// with SIGKILL, waits for its server to die with it, and returns the
// directory the Manager's socket was in.
func killedManagerParent(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	p, err := managerParent.Start(struct{}{}, process.Files(w))
	w.Close()
	must(t, err)
	var dir string
	var server int
	if _, err := fmt.Fscan(r, &dir, &server); err != nil {
		p.Kill()
		t.Fatalf("reading the manager's directory: %v (the parent: %v)", err, p.Join(ctx))
	}
	must(t, p.Kill())
	p.Join(ctx)
	// The server is a daemon: the kernel kills it with its parent.
	shmtest.WaitUntil(t, "the killed parent's server to die", func() bool { return !proc.Alive(server, 0, 0) })
	if _, err := os.Stat(filepath.Join(dir, "socket")); err != nil {
		t.Fatalf("the killed parent's socket: %v; want it left behind", err)
	}
	return dir
}

// TestStartRemovesKilledParentsDir kills a process that started a Manager:
// neither it nor its server can remove the socket's directory. The next
// Start removes it.
func TestStartRemovesKilledParentsDir(t *testing.T) {
	privateTempDir(t)
	dir := killedManagerParent(t)
	m, err := Start(ctx, nil)
	must(t, err)
	defer func() { must(t, m.Shutdown(ctx)) }()
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the directory %s of a killed Manager's parent after the next Start: %v; want it removed", dir, err)
	}
}

// TestStaleDirs checks which manager directories are stale: only those of
// dead owners in this pid namespace, never a live Manager's nor one being
// set up.
func TestStaleDirs(t *testing.T) {
	tmp := privateTempDir(t)
	live, err := Start(ctx, nil)
	must(t, err)
	defer func() { must(t, live.Shutdown(ctx)) }()
	dead := killedManagerParent(t)
	mkdir := func(pattern string) string {
		t.Helper()
		d, err := os.MkdirTemp(tmp, pattern)
		must(t, err)
		return d
	}
	settingUp := mkdir(dirPattern()) // ours, with no socket yet
	legacy := mkdir(dirPrefix)       // records no owner
	owner, ns, ok := dirOwner(filepath.Base(dead))
	if !ok {
		t.Fatalf("no owner in the name of %s", dead)
	}
	elsewhere := mkdir(fmt.Sprintf("%s%d-%d-%d-", dirPrefix, owner.Pid, owner.Start, ns+1)) // another pid namespace
	link := filepath.Join(tmp, filepath.Base(dead)+"9")
	must(t, os.Symlink(dead, link))
	stale, err := StaleDirs()
	must(t, err)
	if !slices.Equal(stale, []string{dead}) {
		t.Errorf("StaleDirs = %q, want only %q", stale, dead)
	}
	removed, err := RemoveStaleDirs()
	must(t, err)
	if !slices.Equal(removed, []string{dead}) {
		t.Errorf("RemoveStaleDirs = %q, want only %q", removed, dead)
	}
	_, address := live.Address()
	for _, d := range []string{filepath.Dir(address), settingUp, legacy, elsewhere, link} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s after RemoveStaleDirs: %v; want it kept", d, err)
		}
	}
	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after RemoveStaleDirs: %v; want it removed", dead, err)
	}
	must(t, live.Client().Ping(ctx))
}

// TestManyClientsThreads runs 256 clients of this process, each on its
// own connection over shared memory, against a server in a worker
// process, all at once: every answer must be right, and neither process
// may hold a thread per connection (with futex wake-ups each connection
// asleep between requests held one on both sides).
func TestManyClientsThreads(t *testing.T) {
	if !shmSupported {
		t.Skip("no shared-memory transport here")
	}
	m, err := Start(ctx, nil)
	must(t, err)
	defer func() { must(t, m.Shutdown(ctx)) }()
	network, address := m.Address()
	const clients, rounds = 256, 50
	cs := make([]*Client, clients)
	for i := range cs {
		c, err := Dial(ctx, network, address, nil)
		must(t, err)
		defer c.Close()
		if s, err := c.session(ctx); err != nil || s.rings == nil {
			t.Fatalf("client %d not on shared memory: %v", i, err)
		}
		cs[i] = c
	}
	var (
		wg             sync.WaitGroup
		errs           = make(chan error, clients)
		peak, peakSrv  atomic.Int64
		before, server = shmtest.Threads(0), shmtest.Threads(m.Process().Pid())
	)
	if before == 0 || server == 0 {
		t.Fatal("no thread counts in /proc")
	}
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := OpenDict[int, int](ctx, c, "many")
			if err != nil {
				errs <- err
				return
			}
			for r := range rounds {
				n, err := d.Add(ctx, i, 1)
				if err != nil || n != r+1 {
					errs <- fmt.Errorf("client %d round %d: Add = %d, %v", i, r, n, err)
					return
				}
				if r%10 == 0 {
					peak.Store(max(peak.Load(), int64(shmtest.Threads(0))))
					peakSrv.Store(max(peakSrv.Load(), int64(shmtest.Threads(m.Process().Pid()))))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d, err := OpenDict[int, int](ctx, m.Client(), "many")
	must(t, err)
	if n, err := d.Len(ctx); n != clients || err != nil {
		t.Errorf("Len = %d, %v; want %d", n, err, clients)
	}
	const slack = 32
	if p := int(peak.Load()); p > before+slack {
		t.Errorf("client process: %d threads before, %d at the peak; want at most %d", before, p, before+slack)
	}
	if p := int(peakSrv.Load()); p > server+slack {
		t.Errorf("server process: %d threads before, %d at the peak; want at most %d", server, p, server+slack)
	}
	t.Logf("threads: clients %d -> %d, server %d -> %d", before, peak.Load(), server, peakSrv.Load())
}

// nonReader sends requests whose answers fill its connection, and then
// never reads them: it signals the event "flooded" on a second
// connection and waits to be killed.
var nonReader = process.Register("manager-test/nonReader", func(ctx context.Context, j clientJob) (struct{}, error) {
	c, err := j.dial(ctx)
	if err != nil {
		return struct{}{}, err
	}
	d, err := OpenDict[string, []byte](ctx, c, "d")
	if err != nil {
		return struct{}{}, err
	}
	s, id, err := d.r.session(ctx)
	if err != nil {
		return struct{}{}, err
	}
	// Each answer is 1 MiB; 64 of them are more than the rings and
	// socket buffers hold, so the server's writes to this connection
	// block.
	for range 64 {
		if _, err := s.send(ctx, opMapGet, id, func(w *frameWriter) error { return appendItem(w, "big") }); err != nil {
			return struct{}{}, err
		}
	}
	signal, err := j.dial(ctx)
	if err != nil {
		return struct{}{}, err
	}
	ev, err := OpenEvent(ctx, signal, "flooded")
	if err != nil {
		return struct{}{}, err
	}
	if err := ev.Set(ctx); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})

// TestClientStopsReading checks that a client process that sends
// requests and stops reading their answers stalls only its own
// connection: other clients are served meanwhile, and the server drops
// the connection once the process is killed.
func TestClientStopsReading(t *testing.T) {
	for _, noShm := range []bool{false, true} {
		t.Run(fmt.Sprintf("noShm=%v", noShm), func(t *testing.T) {
			ts := startServer(t, transport{name: "unix", network: "unix"})
			c := ts.dial(t)
			d, err := OpenDict[string, []byte](ctx, c, "d")
			must(t, err)
			must(t, d.Set(ctx, "big", make([]byte, 1<<20)))
			p, err := nonReader.Start(clientJob{Network: "unix", Address: ts.address, NoShm: noShm})
			must(t, err)
			defer func() {
				p.Kill()
				p.Join(ctx)
			}()
			ev, _ := OpenEvent(ctx, c, "flooded")
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			must(t, ev.Wait(wctx))

			// Other clients, each on its own connection, over shared
			// memory and over the socket.
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					oc, err := Dial(wctx, "unix", ts.address, &Options{NoSharedMemory: i%2 == 1})
					if err != nil {
						errs <- err
						return
					}
					defer oc.Close()
					od, err := OpenDict[int, int](wctx, oc, "others")
					if err != nil {
						errs <- err
						return
					}
					for r := range 500 {
						if n, err := od.Add(wctx, i, 1); err != nil || n != r+1 {
							errs <- fmt.Errorf("client %d, round %d: Add = %d, %v", i, r, n, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			must(t, p.Kill())
			p.Join(ctx)
			shmtest.WaitUntil(t, "the server to drop the flooded connection", func() bool {
				ts.omu.Lock()
				defer ts.omu.Unlock()
				return len(ts.conns) == 1
			})
		})
	}
}

// TestStartRefusesOptions checks that Start reports the options it cannot
// honour instead of dropping them, and starts nothing.
func TestStartRefusesOptions(t *testing.T) {
	for name, o := range map[string]*Options{
		"TLSConfig":    {TLSConfig: &tls.Config{}},
		"Logger":       {Logger: slog.Default()},
		"KeyPrefix":    {KeyPrefix: "app:"},
		"Lease":        {Lease: time.Second},
		"RedisCluster": {RedisCluster: true},
	} {
		m, err := Start(ctx, o)
		if !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), name) {
			if m != nil {
				m.Shutdown(ctx)
			}
			t.Errorf("Start with %s = %v, want ErrBadOptions naming it", name, err)
		}
	}
	// What does apply reaches the server: a handshake timeout too.
	m, err := Start(ctx, &Options{AuthKey: []byte("k"), HandshakeTimeout: 5 * time.Second})
	must(t, err)
	must(t, m.Client().Ping(ctx))
	must(t, m.Shutdown(ctx))
}
