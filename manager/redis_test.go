//go:build linux

package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/process"
)

// Tests of what only the Redis engine has: its stored forms, leases,
// redelivery, a restarted or clustered redis-server. The proxy suite runs
// over Redis too (transports).

const testLease = time.Second

func dialRedisT(t *testing.T, url string, opts *Options) *Client {
	t.Helper()
	c, err := Dial(ctx, "redis", url, opts)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisWrongPassword(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{TCP: true, Password: "sesame"})
	for _, url := range []string{"redis://:wrong@" + rs.Addr(), "redis://" + rs.Addr()} {
		if c, err := Dial(ctx, "redis", url, nil); !errors.Is(err, ErrAuth) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial(%q) = %v, want ErrAuth", url, err)
		}
	}
	c := dialRedisT(t, rs.URL(), nil)
	must(t, c.Ping(ctx))

	// A password the server does not expect is refused too, rather than
	// ignored.
	open := redistest.Start(t, redistest.Config{TCP: true})
	if c, err := Dial(ctx, "redis", "redis://:sesame@"+open.Addr(), nil); !errors.Is(err, ErrAuth) {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial with a password to a server without one = %v, want ErrAuth", err)
	}
}

// TestRedisForms: what proxies store is what redis-cli shows, and what
// other programs store reads back by the proxy's type.
func TestRedisForms(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{})
	c := dialRedisT(t, rs.URL(), &Options{KeyPrefix: "app:"})
	d, err := OpenDict[string, int](ctx, c, "counts")
	must(t, err)
	if _, err := d.Add(ctx, "apples", 41); err != nil {
		t.Fatal(err)
	}
	n, err := d.Add(ctx, "apples", 1)
	if err != nil || n != 42 {
		t.Fatalf("Add = %d, %v", n, err)
	}
	if got, err := rs.Do("HGET", "app:{counts}", "apples"); got != "42" || err != nil {
		t.Errorf("HGET app:{counts} apples = %q, %v; want 42", got, err)
	}
	// Another program's HINCRBY and a string the proxy reads as a number.
	must(t, ignore(rs.Do("HINCRBY", "app:{counts}", "apples", "8")))
	must(t, ignore(rs.Do("HSET", "app:{counts}", "pears", "7")))
	for k, want := range map[string]int{"apples": 50, "pears": 7} {
		if got, _, err := d.Get(ctx, k); got != want || err != nil {
			t.Errorf("Get(%q) = %d, %v; want %d", k, got, err, want)
		}
	}
	// Strings as themselves, floats as decimals, structs as tagged CBOR.
	s, _ := OpenValue[string](ctx, c, "greeting")
	must(t, s.Store(ctx, "hello"))
	f, _ := OpenValue[float64](ctx, c, "ratio")
	must(t, f.Store(ctx, 0.25))
	p, _ := OpenValue[point](ctx, c, "p")
	must(t, p.Store(ctx, point{1, 2, "x"}))
	for key, want := range map[string]string{"app:{greeting}": "hello", "app:{ratio}": "0.25"} {
		if got, err := rs.Do("GET", key); got != want || err != nil {
			t.Errorf("GET %s = %q, %v; want %q", key, got, err, want)
		}
	}
	if got, _ := rs.Do("GET", "app:{p}"); !strings.HasPrefix(got, cborMagic) {
		t.Errorf("GET app:{p} = %q, want the CBOR self-describe tag first", got)
	}
	if got, err := p.Load(ctx); got != (point{1, 2, "x"}) || err != nil {
		t.Errorf("Load = %v, %v", got, err)
	}
	// Bytes that begin as tagged CBOR does stay CBOR, and read back.
	bs, _ := OpenValue[[]byte](ctx, c, "blob")
	for _, odd := range []string{cborMagic, cborMagic + "\x01", "\x00\xff"} {
		must(t, bs.Store(ctx, []byte(odd)))
		if got, err := bs.Load(ctx); string(got) != odd || err != nil {
			t.Errorf("Load of %q = %q, %v", odd, got, err)
		}
	}
	// Bytes that are not a number fail a number proxy, and store nothing.
	must(t, ignore(rs.Do("HSET", "app:{counts}", "bad", "many")))
	if _, _, err := d.Get(ctx, "bad"); !errors.Is(err, ErrType) {
		t.Errorf("Get of \"many\" into an int = %v, want ErrType", err)
	}
	if _, err := d.Add(ctx, "bad", 1); !errors.Is(err, ErrType) {
		t.Errorf("Add to \"many\" = %v, want ErrType", err)
	}
	if got, _ := rs.Do("HGET", "app:{counts}", "bad"); got != "many" {
		t.Errorf("after a refused Add: %q", got)
	}
	// A Namespace's fields decode into what the caller points to.
	ns, _ := OpenNamespace(ctx, c, "cfg")
	must(t, ns.Set(ctx, "workers", 8))
	var anyv any
	must(t, ns.Get(ctx, "workers", &anyv))
	if anyv != int64(8) {
		t.Errorf("Namespace field into any = %#v, want int64(8)", anyv)
	}
}

// TestRedisIncrementsExact: 8 processes add to one entry over Redis, with
// Add and with the optimistic Update; no update is lost.
func TestRedisIncrementsExact(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{})
	const procs, adds, updates = 8, 5000, 1000
	ps := shmtest.Start(t, procs, func(i int) (*process.Process, error) {
		return incrementer.Start(clientJob{Network: "redis", Address: rs.URL(), Iters: adds, Updates: updates, Worker: i})
	})
	shmtest.JoinAll(t, ps)
	retries := 0
	for _, p := range ps {
		var r int
		must(t, p.Result(&r))
		retries += r
	}
	c := dialRedisT(t, rs.URL(), nil)
	d, err := OpenDict[string, int64](ctx, c, "counts")
	must(t, err)
	if got, _, err := d.Get(ctx, "add"); got != procs*adds || err != nil {
		t.Errorf("after %d processes × %d Adds: %d, %v", procs, adds, got, err)
	}
	if got, _, err := d.Get(ctx, "update"); got != procs*updates || err != nil {
		t.Errorf("after %d processes × %d Updates: %d, %v", procs, updates, got, err)
	}
	t.Logf("optimistic Update retried %d times", retries)
}

// TestRedisLockHolderKilled: a holder killed with SIGKILL stops renewing
// its lease; the next Acquire gets the lock with ErrOwnerDead within the
// lease and a second, with a fencing token past the dead holder's.
func TestRedisLockHolderKilled(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{})
	c := dialRedisT(t, rs.URL(), &Options{Lease: testLease})
	p, err := locker.Start(clientJob{Network: "redis", Address: rs.URL(), Lease: testLease})
	must(t, err)
	ev, _ := OpenEvent(ctx, c, "holding")
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	must(t, ev.Wait(wctx))
	// Held past its lease: the holder renews it.
	time.Sleep(testLease * 3 / 2)
	l, _ := OpenLock(ctx, c, "L")
	if ok, err := l.TryAcquire(ctx); ok || err != nil {
		t.Fatalf("TryAcquire of a live holder's lock = %v, %v", ok, err)
	}
	must(t, p.Kill())
	p.Join(ctx)
	killed := time.Now()
	if err := l.Acquire(wctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Acquire after the holder was killed = %v, want ErrOwnerDead", err)
	}
	if d := time.Since(killed); d > testLease+time.Second {
		t.Errorf("Acquire took %v after the kill, lease %v", d, testLease)
	}
	if fence, _ := rs.Do("HGET", "shmkit:{L}", "fence"); fence != "2" {
		t.Errorf("fence after the second grant = %q, want 2", fence)
	}
	// Held by this client now, past its lease too.
	time.Sleep(testLease * 3 / 2)
	if locked, err := l.Locked(ctx); !locked || err != nil {
		t.Errorf("Locked = %v, %v while this client holds and renews it", locked, err)
	}
	must(t, l.Release(ctx))
	if err := l.Release(ctx); !errors.Is(err, ErrNotOwner) {
		t.Errorf("second Release = %v, want ErrNotOwner", err)
	}
}

// taker takes an item from the queue "q" into its pending list, as a Get
// does before the item reaches it, tells the test, and waits to be killed.
var taker = process.Register("manager-test/taker", func(ctx context.Context, j clientJob) (struct{}, error) {
	c, err := j.dial(ctx)
	if err != nil {
		return struct{}{}, err
	}
	e := c.redis
	keys := []string{e.key("q", ""), e.key("q", "capacity"), e.key("q", "consumers"), e.key("q", "pending:"+e.token)}
	v, err := e.eval(ctx, queueTake, keys, e.token, itoa(e.lease.Milliseconds()), e.key("q", "pending:"))
	if err != nil || v == nil {
		return struct{}{}, fmt.Errorf("take: %v, %v", v, err)
	}
	ready, err := OpenEvent(ctx, c, "taken")
	if err == nil {
		err = ready.Set(ctx)
	}
	if err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})

// TestRedisQueueRedelivers: a consumer killed while it holds an item (in
// its pending list) loses nothing: after its lease, the next Get returns
// the item, first.
func TestRedisQueueRedelivers(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{})
	c := dialRedisT(t, rs.URL(), &Options{Lease: testLease})
	q, err := OpenQueue[string](ctx, c, "q", 0)
	must(t, err)
	must(t, q.Put(ctx, "first"))
	must(t, q.Put(ctx, "second"))
	p, err := taker.Start(clientJob{Network: "redis", Address: rs.URL(), Lease: testLease})
	must(t, err)
	ev, _ := OpenEvent(ctx, c, "taken")
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	must(t, ev.Wait(wctx))
	must(t, p.Kill())
	p.Join(ctx)
	if n, _ := q.Len(ctx); n != 1 {
		t.Fatalf("Len with one item held by the dead consumer = %d, want 1", n)
	}
	time.Sleep(testLease + 100*time.Millisecond)
	for _, want := range []string{"first", "second"} {
		if got, err := q.Get(wctx); got != want || err != nil {
			t.Fatalf("Get = %q, %v; want %q", got, err, want)
		}
	}
	if _, ok, err := q.TryGet(ctx); ok || err != nil {
		t.Errorf("TryGet of an empty queue = %v, %v", ok, err)
	}
	if n, err := rs.Do("EXISTS", "shmkit:{q}:consumers"); n != "1" || err != nil {
		t.Errorf("consumers hash after the Gets: %q, %v", n, err)
	}
}

// redisPoolBound bounds the connections a client pools (the library's
// pipelines, at most 4, and the ones blocking calls hold).
const redisPoolBound = 16

// TestRedisRestart kills redis-server while clients add to a value and
// starts it again: the clients see ErrClosed, then go on by themselves.

func TestRedisRestart(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{TCP: true, Password: "sesame"})
	const procs, after = 3, 200
	ps := shmtest.Start(t, procs, func(i int) (*process.Process, error) {
		return adder.Start(clientJob{Network: "redis", Address: rs.URL(), Iters: after, Worker: i})
	})
	c := dialRedisT(t, rs.URL(), nil)
	hello, _ := OpenList[int](ctx, c, "hello")
	shmtest.WaitUntil(t, "every adder to start", func() bool {
		n, err := hello.Len(ctx)
		return err == nil && n == procs
	})
	time.Sleep(20 * time.Millisecond)
	rs.Kill()
	if err := c.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping with the server down = %v, want ErrClosed", err)
	}
	time.Sleep(50 * time.Millisecond)
	rs.Restart()
	shmtest.JoinAll(t, ps)
	for _, p := range ps {
		var r [2]int
		must(t, p.Result(&r))
		if r[0] == 0 || r[1] != after {
			t.Errorf("adder: %d failures, %d adds after them; want some and %d", r[0], r[1], after)
		}
	}
	// Each of the client's idle pooled connections may fail one call
	// with ErrClosed as its break is found (docs/redis.md); then it
	// reconnects.
	var (
		n   int
		err error
	)
	for range redisPoolBound {
		var v *Value[int]
		if v, err = OpenValue[int](ctx, c, "n"); err == nil {
			n, err = v.Load(ctx)
		}
		if !errors.Is(err, ErrClosed) {
			break
		}
	}
	if n < procs*after || err != nil {
		t.Errorf("value after the restart = %d, %v; want at least %d", n, err, procs*after)
	}
}

// TestRedisCluster writes objects whose keys fall in slots of every node
// of a three-node cluster, each object's keys in one slot.
func TestRedisCluster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	c := dialRedisT(t, "redis://"+nodes[0].Addr(), &Options{RedisCluster: true, Lease: testLease})
	const objects = 30
	for i := range objects {
		d, err := OpenDict[string, int](ctx, c, fmt.Sprintf("d%d", i))
		must(t, err)
		for k := range 3 {
			if _, err := d.Add(ctx, fmt.Sprint(k), i); err != nil {
				t.Fatal(err)
			}
		}
		up, err := d.Update(ctx, "0", func(old int, _ bool) (int, error) { return old + 1, nil })
		if err != nil || up != i+1 {
			t.Fatalf("Update = %d, %v", up, err)
		}
		l, err := OpenLock(ctx, c, fmt.Sprintf("l%d", i))
		must(t, err)
		must(t, l.Acquire(ctx))
		must(t, l.Release(ctx))
	}
	b := c.NewBatch()
	var fs []*Future[int]
	for i := range objects {
		d, _ := OpenDict[string, int](ctx, c, fmt.Sprintf("d%d", i))
		fs = append(fs, d.GetIn(b, "1"))
	}
	must(t, b.Do(ctx))
	for i, f := range fs {
		if v, err := f.Result(); v != i || err != nil {
			t.Errorf("batch Get of d%d = %d, %v", i, v, err)
		}
	}
	used := map[string]bool{}
	for _, n := range nodes {
		keys, err := n.Do("DBSIZE")
		must(t, err)
		used[n.Addr()] = keys != "0"
	}
	for addr, ok := range used {
		if !ok {
			t.Errorf("node %s holds no key", addr)
		}
	}
}

// TestRedisSubscriptionRestored: a waiter whose subscription's connection
// is closed under it subscribes again, rather than falling back to
// looking once per slice, and is woken by the next Set.
func TestRedisSubscriptionRestored(t *testing.T) {
	rs := redistest.Start(t, redistest.Config{})
	c := dialRedisT(t, rs.URL(), nil)
	ev, err := OpenEvent(ctx, c, "go")
	must(t, err)
	conn, channel := c.redis.conn, c.redis.key("go", "wake")
	subscribers := func() int64 {
		v, err := conn.Do(ctx, "PUBSUB", "NUMSUB", channel)
		if vs, ok := v.([]any); err == nil && ok && len(vs) == 2 {
			n, _ := vs[1].(int64)
			return n
		}
		return -1
	}
	woken := make(chan error, 1)
	go func() { woken <- ev.Wait(ctx) }()
	shmtest.WaitUntil(t, "the waiter to subscribe", func() bool { return subscribers() == 1 })
	if n, err := conn.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub"); n != int64(1) || err != nil {
		t.Fatalf("CLIENT KILL TYPE pubsub = %v, %v; want 1", n, err)
	}
	shmtest.WaitUntil(t, "the waiter to subscribe again", func() bool { return subscribers() == 1 })
	select {
	case err := <-woken:
		t.Fatalf("Wait returned %v before Set", err)
	default:
	}
	must(t, ev.Set(ctx))
	must(t, <-woken)
}
