// Remotemanager serves a queue over TCP to clients that must know an auth
// key, the Go twin of Python's BaseManager(address=(host, port),
// authkey=...) recipe for sharing a queue between machines.
//
// The server here listens on 127.0.0.1 so that the example runs anywhere;
// on a real network, listen on the machine's address (and set
// Options.TLSConfig on both sides: the auth key proves who is talking, TLS
// also hides what they say). A worker process plays the remote producer:
// it dials with the key and puts jobs into the queue, which the server's
// own process consumes. A client with the wrong key is refused before the
// server reads any request from it.
//
// Run it from the repository root with:
//
//	go run ./examples/remotemanager
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/manager"
	"github.com/shmkit/shmkit/process"
)

// job tells the producer where the server is and the key to prove.
type job struct {
	Address string
	Key     []byte
}

var produce = process.Register("produce", func(ctx context.Context, j job) (struct{}, error) {
	c, err := manager.Dial(ctx, "tcp", j.Address, &manager.Options{AuthKey: j.Key})
	if err != nil {
		return struct{}{}, err
	}
	defer c.Close()
	q, err := manager.OpenQueue[string](ctx, c, "jobs", 0)
	if err != nil {
		return struct{}{}, err
	}
	for i := 1; i <= 3; i++ {
		if err := q.Put(ctx, fmt.Sprintf("job %d", i)); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, q.Put(ctx, "stop")
})

func main() {
	process.Main()
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "remotemanager:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	key := []byte("a long random secret shared out of band")
	srv := manager.NewServer(&manager.Options{AuthKey: key})
	l, err := manager.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		srv.Shutdown(ctx)
		<-served
	}()
	address := l.Addr().String()

	_, err = manager.Dial(ctx, "tcp", address, &manager.Options{AuthKey: []byte("wrong key")})
	fmt.Println("wrong key refused:", errors.Is(err, manager.ErrAuth))

	c, err := manager.Dial(ctx, "tcp", address, &manager.Options{AuthKey: key})
	if err != nil {
		return err
	}
	defer c.Close()
	q, err := manager.OpenQueue[string](ctx, c, "jobs", 0)
	if err != nil {
		return err
	}
	p, err := produce.Start(job{Address: address, Key: key})
	if err != nil {
		return err
	}
	for {
		j, err := q.Get(ctx)
		if err != nil {
			return err
		}
		if j == "stop" {
			break
		}
		fmt.Println("got", j)
	}
	return p.Join(ctx)
}
