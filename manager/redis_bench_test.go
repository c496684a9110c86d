//go:build linux

package manager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/redis/rueidis"

	"github.com/shmkit/shmkit/internal/benchtest"
	"github.com/shmkit/shmkit/internal/redistest"
)

// BenchmarkRedisProxy measures Dict get, set and add through proxies on
// the Redis engine against the bare client library (rueidis) sending the same
// commands (HGET, HSET, HINCRBY) to the same private redis-server, over
// its Unix socket, in alternating slices of one run. goroutines=16 shares
// one Client (and the bare client) among 16 goroutines, as a program
// would; batch=16 is a Batch of 16 gets against a 16-command pipeline.
// x-base is the proxies' throughput over the bare client's.
func BenchmarkRedisProxy(b *testing.B) {
	ctx := context.Background()
	rs := redistest.Start(b, redistest.Config{})
	c, err := Dial(ctx, "redis", rs.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	// The adapter's settings: RESP2, no client-side cache, one node.
	bare, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{rs.Socket()}, AlwaysRESP2: true, DisableCache: true, ForceSingleClient: true,
		DialCtxFn: func(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
			return d.DialContext(ctx, "unix", addr)
		}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bare.Close)
	do := func(cmd rueidis.Completed) error { return bare.Do(ctx, cmd).Error() }

	strs, err := OpenDict[string, string](ctx, c, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ints, err := OpenDict[string, int](ctx, c, "counts")
	if err != nil {
		b.Fatal(err)
	}
	if err := strs.Set(ctx, benchKey, benchValue); err != nil {
		b.Fatal(err)
	}
	const strKey, intKey = DefaultKeyPrefix + "{bench}", DefaultKeyPrefix + "{counts}"

	type pair struct{ proxy, bare func() error }
	ops := map[string]pair{
		"get": {
			func() error { _, _, err := strs.Get(ctx, benchKey); return err },
			func() error { return do(bare.B().Hget().Key(strKey).Field(benchKey).Build()) },
		},
		"set": {
			func() error { return strs.Set(ctx, benchKey, benchValue) },
			func() error {
				return do(bare.B().Hset().Key(strKey).FieldValue().FieldValue(benchKey, benchValue).Build())
			},
		},
		"add": {
			func() error { _, err := ints.Add(ctx, "n", 1); return err },
			func() error { return do(bare.B().Hincrby().Key(intKey).Field("n").Increment(1).Build()) },
		},
	}
	// Both clients' connections start out answering a lone caller
	// synchronously and switch for good to their pipeline goroutines
	// once two callers overlap or one passes a context that can be
	// cancelled, as a program's soon do; put both in that state, so that
	// every row compares like with like.
	warm := func(op func() error) { spread(b, 64, op)(1024) }
	warm(ops["get"].bare)
	warm(ops["get"].proxy)
	for _, op := range []string{"get", "set", "add"} {
		for _, g := range []int{1, 16} {
			b.Run(fmt.Sprintf("op=%s/goroutines=%d", op, g), func(b *testing.B) {
				benchtest.Rates(b, spread(b, g, ops[op].bare), spread(b, g, ops[op].proxy))
			})
		}
	}

	const depth = 16
	b.Run(fmt.Sprintf("op=get/batch=%d", depth), func(b *testing.B) {
		batch := c.NewBatch()
		proxy := func() error {
			for range depth {
				strs.GetIn(batch, benchKey)
			}
			return batch.Do(ctx)
		}
		cmds := make(rueidis.Commands, depth)
		pipe := func() error {
			for i := range cmds {
				cmds[i] = bare.B().Hget().Key(strKey).Field(benchKey).Build()
			}
			for _, r := range bare.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					return err
				}
			}
			return nil
		}
		benchtest.Rates(b, spread(b, 1, pipe), spread(b, 1, proxy))
	})
}

// spread returns a function that runs op n times over g goroutines,
// failing b on the first error.
func spread(b *testing.B, g int, op func() error) func(n int) {
	return func(n int) {
		var wg sync.WaitGroup
		errs := make(chan error, g)
		for i := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n/g + min(1, max(0, n%g-i)) {
					if err := op(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}
