//go:build linux

package manager

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redisbench"
	"github.com/shmkit/shmkit/internal/shmtest"
)

// The benchmarks run the server in its own worker process, as Start does,
// and the clients in the benchmark's process. Those comparing with Redis
// run redis-benchmark against a private redis-server in the same
// benchmark, over a Unix socket, with the same number of connections and
// pipeline depth, and report our throughput over Redis's as x-redis.

// benchKey and benchValue have the sizes redis-benchmark uses.
const benchKey = "key:__rand_int__"

var benchValue = "xxx"

func startBenchManager(b *testing.B) *Manager {
	b.Helper()
	m, err := Start(context.Background(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Shutdown(context.Background()) })
	return m
}

// clients dials n clients to m over transport ("shm" or "unix").
func benchClients(b *testing.B, m *Manager, transport string, n int) []*Dict[string, string] {
	b.Helper()
	network, address := m.Address()
	ds := make([]*Dict[string, string], n)
	for i := range ds {
		c, err := Dial(context.Background(), network, address, &Options{NoSharedMemory: transport == "unix"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		d, err := OpenDict[string, string](context.Background(), c, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Set(context.Background(), benchKey, benchValue); err != nil {
			b.Fatal(err)
		}
		ds[i] = d
	}
	return ds
}

// drive runs b.N operations spread over the clients, each client sending
// pipeline operations at a time (a Batch when pipeline > 1), and returns
// the aggregate rate in requests per second.
func drive(b *testing.B, ds []*Dict[string, string], op string, pipeline int) float64 {
	b.Helper()
	ctx := context.Background()
	per := max(b.N/len(ds), 1)
	var wg sync.WaitGroup
	errs := make(chan error, len(ds))
	start := time.Now()
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- driveOne(ctx, d, op, pipeline, per)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return float64(per*len(ds)) / elapsed.Seconds()
}

func driveOne(ctx context.Context, d *Dict[string, string], op string, pipeline, n int) error {
	if pipeline == 1 {
		for range n {
			var err error
			if op == "get" {
				_, _, err = d.Get(ctx, benchKey)
			} else {
				err = d.Set(ctx, benchKey, benchValue)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	batch := d.r.c.NewBatch()
	for done := 0; done < n; done += pipeline {
		for range pipeline {
			if op == "get" {
				d.GetIn(batch, benchKey)
			} else {
				d.SetIn(batch, benchKey, benchValue)
			}
		}
		if err := batch.Do(ctx); err != nil {
			return err
		}
	}
	return nil
}

// redisRate runs redis-benchmark for op and returns its requests per
// second.
func redisRate(b *testing.B, rs *redisbench.Server, op string, clients, pipeline, requests int) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := rs.Run(ctx, clients, pipeline, requests, op)
	if err != nil {
		b.Fatal(err)
	}
	return r[strings.ToUpper(op)]
}

// BenchmarkVsRedis measures dict get and set through proxies against Redis
// GET and SET, with one and two connections, without and with pipelining
// (a Batch of 16 here, -P 16 for Redis).
func BenchmarkVsRedis(b *testing.B) {
	rs := redisbench.Start(b)
	m := startBenchManager(b)
	for _, op := range []string{"get", "set"} {
		for _, clients := range []int{1, 2} {
			for _, pipeline := range []int{1, 16} {
				for _, transport := range []string{"shm", "unix"} {
					name := fmt.Sprintf("op=%s/clients=%d/pipeline=%d/transport=%s", op, clients, pipeline, transport)
					b.Run(name, func(b *testing.B) {
						ds := benchClients(b, m, transport, clients)
						ours := drive(b, ds, op, pipeline)
						redis := redisRate(b, rs, op, clients, pipeline, max(b.N, 20000))
						report(b, ours, redis)
					})
				}
			}
		}
	}
}

// BenchmarkClients sweeps the number of concurrent clients (connections,
// each used by one goroutine) doing dict gets and sets, next to Redis GET
// and SET with as many connections: aggregate throughput must not
// collapse as clients are added.
func BenchmarkClients(b *testing.B) {
	rs := redisbench.Start(b)
	m := startBenchManager(b)
	for _, op := range []string{"get", "set"} {
		for _, clients := range []int{1, 2, 4, 8, 16, 32, 64} {
			for _, transport := range []string{"shm", "unix"} {
				b.Run(fmt.Sprintf("op=%s/clients=%d/transport=%s", op, clients, transport), func(b *testing.B) {
					ds := benchClients(b, m, transport, clients)
					ours := drive(b, ds, op, 1)
					redis := redisRate(b, rs, op, clients, 1, max(b.N, 20000))
					report(b, ours, redis)
				})
			}
		}
	}
}

// BenchmarkBusy is BenchmarkClients's get and set with 1 and 8 clients on
// a busy machine: two CPU-bound worker processes at the default priority
// (shmtest.Load) spin for the whole sub-benchmark, while shmkit and then
// Redis are measured.
func BenchmarkBusy(b *testing.B) {
	rs := redisbench.Start(b)
	m := startBenchManager(b)
	for _, op := range []string{"get", "set"} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("op=%s/clients=%d/transport=shm", op, clients), func(b *testing.B) {
				ds := benchClients(b, m, "shm", clients)
				shmtest.Load(b, 2)
				ours := drive(b, ds, op, 1)
				redis := redisRate(b, rs, op, clients, 1, max(b.N, 20000))
				report(b, ours, redis)
			})
		}
	}
}

func report(b *testing.B, ours, redis float64) {
	b.ReportMetric(1e9/ours, "ns/op")
	b.ReportMetric(ours/1e3, "kreq/s")
	b.ReportMetric(redis/1e3, "redis-kreq/s")
	b.ReportMetric(ours/redis, "x-redis")
}

// BenchmarkVsPython measures dict gets and sets from one client against
// Python's multiprocessing Manager().dict() proxy doing the same in the
// same benchmark (testdata/pymanager.py), reporting x-python.
func BenchmarkVsPython(b *testing.B) {
	python, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 not found; install it to compare with multiprocessing.Manager")
	}
	m := startBenchManager(b)
	for _, op := range []string{"get", "set"} {
		b.Run("op="+op, func(b *testing.B) {
			ds := benchClients(b, m, "shm", 1)
			ours := drive(b, ds, op, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, "testdata/pymanager.py", strconv.Itoa(min(max(b.N, 5000), 50000)), op).Output()
			if err != nil {
				b.Fatalf("pymanager.py: %v", err)
			}
			py, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil {
				b.Fatalf("pymanager.py printed %q: %v", out, err)
			}
			b.ReportMetric(1e9/ours, "ns/op")
			b.ReportMetric(ours/1e3, "kreq/s")
			b.ReportMetric(py/1e3, "python-kreq/s")
			b.ReportMetric(ours/py, "x-python")
		})
	}
}

// BenchmarkCancelableContext measures one client's dict gets with a
// context that can be cancelled (as a program's signal.NotifyContext)
// against the same with context.Background, which has no Done channel to
// watch, and reports x-background: the cost of watching the context.
func BenchmarkCancelableContext(b *testing.B) {
	m := startBenchManager(b)
	d := benchClients(b, m, "shm", 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Rounds of each, alternating, so that both see the same machine.
	const round = 1000
	var took [2]time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		for i, ctx := range []context.Context{context.Background(), ctx} {
			start := time.Now()
			for range round {
				if _, _, err := d.Get(ctx, benchKey); err != nil {
					b.Fatal(err)
				}
			}
			took[i] += time.Since(start)
		}
	}
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(took[0])/float64(took[1]), "x-background")
}
