// Package manager runs a server that owns shared objects (dicts, lists,
// namespaces, values, locks, queues and events) and gives other processes,
// on this machine or others, typed proxies to them: what Python's
// multiprocessing.Manager() provides, without its lost updates, and safe to
// put on a network.
//
// # Servers and clients
//
// Start runs a server in a worker process of its own (a copy of the
// program, see package process) on a private Unix socket, and connects a
// client to it:
//
//	m, err := manager.Start(ctx, nil)
//	defer m.Shutdown(ctx)
//	counts, err := manager.OpenDict[string, int](ctx, m.Client(), "counts")
//	n, err := counts.Add(ctx, "apples", 1)
//
// A server can also run inside any process: NewServer, then Serve on a
// listener from Listen. Other processes reach it with Dial. Objects are
// created on first use and found by name: every proxy opened with the
// same name, in any process, refers to the same object.
//
// One Options struct configures all of them (NewServer, Dial, Start), as
// one tls.Config serves both ends of a TLS connection, rather than the
// functional options of packages shm, process, queue and pool: most
// fields concern both sides (AuthKey, TLSConfig, MaxFrame), a program
// often passes the same Options to its server and its clients, and Start
// copies them to the server's worker process. Each field's documentation
// says which side uses it; Start refuses, with ErrBadOptions, the fields
// that cannot reach a server in another process.
//
// # Transports and security
//
// On a Unix socket (the default for Start) the socket file has mode 0600
// and the server asks the kernel who the peer is (SO_PEERCRED): only its
// own user, or those in Options.AllowUIDs, may connect. After the
// handshake a local client and the server move their traffic to a pair of
// rings in shared memory, which costs a few microseconds per round trip
// instead of the tens a socket costs; the socket stays open so that each
// side learns when the other dies.
//
// Over TCP the server requires Options.AuthKey, and both sides prove that
// they know it (an HMAC-SHA256 challenge with fresh nonces each way)
// before the server reads any request. The key authenticates; it does not
// encrypt. Set Options.TLSConfig on both sides to encrypt as well. An
// authenticated client can use every object on the server.
//
// Requests and responses are framed and CBOR-encoded, with limits on frame
// size (Options.MaxFrame), nesting and collection lengths, so a malformed
// or hostile peer gets an error or a closed connection, never a crash.
// Memory for a frame is taken as its bytes arrive, and a server bounds the
// memory of all its connections' frames in progress (Options.MaxBuffered),
// so connections that announce large frames and stall cost it little. A
// value beyond the nesting and length limits, a cyclic one included, fails
// its call in the client (ErrType) before anything is sent. A panic in a
// handler becomes an ErrServer reply; the server keeps serving.
// docs/protocol.md specifies the protocol.
//
// # Atomicity
//
// Every proxy method is one operation on the server, atomic with respect
// to every other operation on the same object. Read-modify-write must go
// through one: Dict.Add and Value.Add add on the server, which refuses a
// sum the proxy's type cannot hold before storing it; CompareAndSwap
// compares encoded values; Update runs a function in the client and
// stores its result only if the entry's version is unchanged, retrying
// otherwise. Get followed by Set is not atomic, as d[k] += 1 through a
// Python proxy is not.
//
// # Concurrency and pipelining
//
// A Client and its proxies are safe for concurrent use. Requests of
// concurrent goroutines are in flight together on the connection; a Batch
// sends many operations in one write. Operations of one client are applied
// in the order they were sent.
//
// # Failures
//
// Calls take a context: a blocking operation (Lock.Acquire, Queue.Put and
// Get, Event.Wait) waits at most until the context ends, and the server is
// told to give up. When the connection breaks, calls fail with an error
// matching ErrClosed and the next call dials again; proxies find their
// objects again by name. A Lock whose holder's connection ends is released
// and its next holder gets ErrOwnerDead. Errors match the sentinels in
// this package, fs.ErrNotExist, fs.ErrExist or the context errors, with
// errors.Is.
//
// # Redis
//
// The same proxies run against Redis or Valkey, for programs that share
// state across machines without running a shmkit server: import package
// github.com/shmkit/shmkit/manager/redis and Dial network "redis" with a
// Redis URL. Each object is one Redis key, named Options.KeyPrefix plus
// "{name}" (a hash tag, so a Redis Cluster keeps an object on one node);
// numbers and strings are stored as Redis shows them, so other programs
// can share the data. Add, CompareAndSwap and Update stay exact (single
// commands or Lua scripts). The guarantees that a connection gives on the
// shmkit server are leases on Redis: a Lock is held while its Client
// renews it, and passed on with ErrOwnerDead once a holder that stopped
// renewing is past Options.Lease; a Queue's Get delivers each item at
// least once, returning the items a dead consumer took to the queue's
// head. docs/redis.md specifies the mapping, and the limits of locks on
// Redis (a paused holder, a failover): use Lock.Fence where they matter.
package manager
