package manager_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/manager"
	"github.com/shmkit/shmkit/process"
)

// Start runs a server in its own process, as Python's Manager() does.
// Proxies in any process that dials it share its objects.
func ExampleStart() {
	process.Main() // first in main: Start runs the server in a worker process

	ctx := context.Background()
	m, err := manager.Start(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)

	d, err := manager.OpenDict[string, int](ctx, m.Client(), "counts")
	if err != nil {
		log.Fatal(err)
	}
	d.Set(ctx, "apples", 3)
	d.Add(ctx, "apples", 2) // atomic on the server
	n, ok, err := d.Get(ctx, "apples")
	fmt.Println(n, ok, err)
	// Output: 5 true <nil>
}

// Over TCP, the server requires an auth key; both sides prove they know it
// before any request is read.
func ExampleServer_Serve_tcp() {
	ctx := context.Background()
	key := []byte("shared secret")
	srv := manager.NewServer(&manager.Options{AuthKey: key})
	l, err := manager.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	_, err = manager.Dial(ctx, "tcp", l.Addr().String(), &manager.Options{AuthKey: []byte("guess")})
	fmt.Println("wrong key:", errors.Is(err, manager.ErrAuth))

	c, err := manager.Dial(ctx, "tcp", l.Addr().String(), &manager.Options{AuthKey: key})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	l2, _ := manager.OpenList[string](ctx, c, "log")
	l2.Append(ctx, "hello")
	first, err := l2.Get(ctx, 0)
	fmt.Println(first, err)
	// Output:
	// wrong key: true
	// hello <nil>
}

// Update applies a function atomically: it retries when another client
// changed the entry in between, so no update is lost.
func ExampleDict_Update() {
	process.Main() // first in main: Start runs the server in a worker process

	ctx := context.Background()
	m, err := manager.Start(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	d, _ := manager.OpenDict[string, []string](ctx, m.Client(), "tags")
	for _, tag := range []string{"red", "green"} {
		d.Update(ctx, "apple", func(old []string, ok bool) ([]string, error) {
			return append(old, tag), nil
		})
	}
	tags, _, _ := d.Get(ctx, "apple")
	fmt.Println(tags)
	// Output: [red green]
}

// A Batch sends many operations in one go instead of one round trip each.
func ExampleBatch() {
	process.Main() // first in main: Start runs the server in a worker process

	ctx := context.Background()
	m, err := manager.Start(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	d, _ := manager.OpenDict[int, int](ctx, m.Client(), "squares")
	b := m.Client().NewBatch()
	for i := range 1000 {
		d.SetIn(b, i, i*i)
	}
	sq := d.GetIn(b, 12)
	if err := b.Do(ctx); err != nil {
		log.Fatal(err)
	}
	n, _ := d.Len(ctx)
	v, err := sq.Result()
	fmt.Println(n, v, err)
	// Output: 1000 144 <nil>
}

// A server-held Lock whose holder disconnects is released, and the next
// holder is told.
func ExampleLock() {
	process.Main() // first in main: Start runs the server in a worker process

	ctx := context.Background()
	m, err := manager.Start(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	network, address := m.Address()
	other, _ := manager.Dial(ctx, network, address, nil)
	l1, _ := manager.OpenLock(ctx, other, "L")
	l1.Acquire(ctx)
	other.Close() // as if the holder crashed

	l2, _ := manager.OpenLock(ctx, m.Client(), "L")
	err = l2.Acquire(ctx)
	fmt.Println(errors.Is(err, manager.ErrOwnerDead))
	l2.Release(ctx)
	// Output: true
}
