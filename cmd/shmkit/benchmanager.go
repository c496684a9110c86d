package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shmkit/shmkit/internal/bench"
	"github.com/shmkit/shmkit/manager"
)

// Manager workloads are driven (see bench.Workload.Drive): the measuring
// process starts a server in its own worker process (manager.Start), dials
// P clients to it, each a connection of its own (in shared memory after
// the handshake), and opens one dict through each; each client's
// goroutine then does its share of the operations on one key, waiting for
// each reply before sending the next request. An operation is one request
// and its reply. Key and value have the sizes redis-benchmark uses for its
// GET and SET tests ("key:__rand_int__", 3 bytes), so that the rows can
// stand beside Redis's with P connections.
var (
	// managerGet is Dict.Get of a key that is there.
	managerGet = bench.Register(&bench.Workload{
		Name: "manager.get",
		Drive: driveManager(func(ctx context.Context, d *manager.Dict[string, string]) error {
			v, ok, err := d.Get(ctx, managerKey)
			if err == nil && (!ok || v != managerValue) {
				err = fmt.Errorf("bench: get %q = %q, %v; want %q", managerKey, v, ok, managerValue)
			}
			return err
		}),
	})

	// managerSet is Dict.Set of the same key and value again and again.
	managerSet = bench.Register(&bench.Workload{
		Name: "manager.set",
		Drive: driveManager(func(ctx context.Context, d *manager.Dict[string, string]) error {
			return d.Set(ctx, managerKey, managerValue)
		}),
	})
)

// managerKey and managerValue are what the manager workloads get and set:
// redis-benchmark's key and default value.
const (
	managerKey   = "key:__rand_int__"
	managerValue = "xxx"
)

// driveManager returns a Drive that starts a manager, dials procs clients,
// stores the key through the first, and runs op ops times in all, spread
// over the clients. The server and the clients end however Drive or the
// run ends.
func driveManager(op func(context.Context, *manager.Dict[string, string]) error) func(context.Context, int, int) (func() error, func() error, error) {
	return func(ctx context.Context, procs, ops int) (func() error, func() error, error) {
		m, err := manager.Start(ctx, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		var clients []*manager.Client
		stop := func() error {
			var errs []error
			for _, c := range clients {
				errs = append(errs, c.Close())
			}
			// Shutdown kills the server if it has not drained within the
			// time, even when ctx has ended.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			errs = append(errs, m.Shutdown(sctx))
			return errors.Join(errs...)
		}
		network, address := m.Address()
		dicts := make([]*manager.Dict[string, string], procs)
		for i := range dicts {
			c, err := manager.Dial(ctx, network, address, nil)
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: dial: %w", err), stop())
			}
			clients = append(clients, c)
			if dicts[i], err = manager.OpenDict[string, string](ctx, c, "bench"); err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: %w", err), stop())
			}
			if i == 0 {
				err = dicts[i].Set(ctx, managerKey, managerValue)
			} else {
				_, _, err = dicts[i].Get(ctx, managerKey) // warm up this connection too
			}
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: %w", err), stop())
			}
		}
		run := func() error {
			var wg sync.WaitGroup
			errs := make([]error, procs)
			for i, d := range dicts {
				share := ops / procs
				if i < ops%procs {
					share++
				}
				wg.Go(func() {
					for j := range share {
						if err := op(ctx, d); err != nil {
							errs[i] = fmt.Errorf("bench: client %d after %d of %d requests: %w", i, j, share, err)
							return
						}
					}
				})
			}
			wg.Wait()
			return errors.Join(errs...)
		}
		return run, stop, nil
	}
}
