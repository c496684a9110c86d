// Managerdict is the Go twin of the Manager().dict() program from Python's
// multiprocessing documentation, with the twist that tutorials warn about:
// two processes updating the same entry.
//
//	from multiprocessing import Process, Manager
//
//	def work(d, name):
//	    for _ in range(1000):
//	        d["hits"] += 1        # a get, then a set: two round trips
//	    d[name] = "done"
//
//	if __name__ == "__main__":
//	    with Manager() as manager:
//	        d = manager.dict(hits=0)
//	        ps = [Process(target=work, args=(d, n)) for n in ("a", "b")]
//	        for p in ps: p.start()
//	        for p in ps: p.join()
//	        print(d)              # hits is usually well short of 2000
//
// In Python, d["hits"] += 1 through a proxy is a get and then a set; two
// processes that get the same value both set the same value+1, and about
// half the increments are lost. Here the server adds: Dict.Add is one
// atomic operation on the server, so the count always ends at 2000.
//
// manager.Start runs the server in its own process, as Manager() does, on
// a private Unix socket; the workers connect to it by address.
//
// Set SHMKIT_REDIS to a Redis URL (or pass -redis URL) and the same code
// keeps the dict in Redis instead, as the key shmkit:{d}: the program
// dials Redis rather than starting a server, and nothing else changes.
// That is how a program that outgrows one machine moves on; see
// docs/redis.md.
//
// Run it from the repository root with:
//
//	go run ./examples/managerdict
//	SHMKIT_REDIS=redis://localhost:6379 go run ./examples/managerdict
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/manager"
	_ "github.com/shmkit/shmkit/manager/redis" // for -redis
	"github.com/shmkit/shmkit/process"
)

// job tells a worker where the manager is and which name to record.
type job struct {
	Network, Address string
	Name             string
}

var work = process.Register("work", func(ctx context.Context, j job) (struct{}, error) {
	c, err := manager.Dial(ctx, j.Network, j.Address, nil)
	if err != nil {
		return struct{}{}, err
	}
	defer c.Close()
	d, err := manager.OpenDict[string, any](ctx, c, "d")
	if err != nil {
		return struct{}{}, err
	}
	for range 1000 {
		if _, err := d.Add(ctx, "hits", 1); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, d.Set(ctx, j.Name, "done")
})

func main() {
	process.Main()
	redisURL := flag.String("redis", os.Getenv("SHMKIT_REDIS"), "keep the dict in the Redis at this `URL` (default $SHMKIT_REDIS)")
	flag.Parse()
	if err := run(context.Background(), *redisURL); err != nil {
		fmt.Fprintln(os.Stderr, "managerdict:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, redisURL string) (err error) {
	var c *manager.Client
	network, address := "redis", redisURL
	if redisURL != "" {
		if c, err = manager.Dial(ctx, network, address, nil); err != nil {
			return err
		}
		defer func() {
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}()
	} else {
		var m *manager.Manager
		if m, err = manager.Start(ctx, nil); err != nil {
			return err
		}
		defer func() {
			if serr := m.Shutdown(ctx); err == nil {
				err = serr
			}
		}()
		c = m.Client()
		network, address = m.Address()
	}
	d, err := manager.OpenDict[string, any](ctx, c, "d")
	if err != nil {
		return err
	}
	// Redis keeps the dict of an earlier run.
	if err := d.Clear(ctx); err != nil {
		return err
	}
	if err := d.Set(ctx, "hits", 0); err != nil {
		return err
	}
	var ps []*process.Process
	for _, name := range []string{"a", "b"} {
		p, err := work.Start(job{Network: network, Address: address, Name: name})
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			return err
		}
	}
	items, err := d.Items(ctx)
	if err != nil {
		return err
	}
	for _, it := range items {
		fmt.Printf("%s: %v\n", it.Key, it.Value)
	}
	return nil
}
