package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/process"
)

// serveArg is what a manager worker process needs to serve: the parts of
// Options that make sense for a private Unix socket.
type serveArg struct {
	Socket         string
	AuthKey        []byte
	AllowUIDs      []int
	AnyUID         bool
	NoSharedMemory bool
	MaxFrame       int
	MaxBuffered    int
	Handshake      time.Duration
}

var serveInWorker = process.Register("shmkit/manager.serve", func(ctx context.Context, a serveArg) (struct{}, error) {
	s := NewServer(&Options{
		AuthKey:          a.AuthKey,
		AllowUIDs:        a.AllowUIDs,
		AnyUID:           a.AnyUID,
		NoSharedMemory:   a.NoSharedMemory,
		MaxFrame:         a.MaxFrame,
		MaxBuffered:      a.MaxBuffered,
		HandshakeTimeout: a.Handshake,
	})
	l, err := Listen("unix", a.Socket)
	if err != nil {
		return struct{}{}, err
	}
	// SIGTERM (Manager.Shutdown) drains; the parent's death (ctx) too.
	stop, cancel := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer cancel()
	go func() {
		<-stop.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(sctx)
	}()
	if err := s.Serve(l); err != nil && !errors.Is(err, ErrClosed) {
		return struct{}{}, err
	}
	<-s.gone
	return struct{}{}, nil
})

// A Manager is a server running in its own worker process, like the one
// Python's multiprocessing.Manager() starts. The worker is a daemon: it
// ends when this process does.
type Manager struct {
	p      *process.Process
	dir    string
	socket string
	opts   Options
	client *Client
}

// Start starts a server in a worker process (a copy of this program, so
// main must call process.Main first, see package process) listening on a
// Unix socket in a new private directory, and connects a client to it.
// opts apply to both the server and the client, as to NewServer and
// Dial, except those that cannot reach a server in another process or do
// not apply to one on a Unix socket: Start refuses TLSConfig, Logger,
// KeyPrefix, Lease and RedisCluster with an error matching ErrBadOptions.
//
// The directory, under os.TempDir, is named shmkit-manager- followed by
// this process's identity, so that once this process has died without
// Shutdown (killed, say) the directory can be told to be stale: Start
// first removes such directories of this user (see RemoveStaleDirs), and
// so does `shmkit gc`.
func Start(ctx context.Context, opts *Options) (*Manager, error) {
	if err := opts.forStart(); err != nil {
		return nil, err
	}
	RemoveStaleDirs() // best effort: what killed processes left behind
	dir, err := os.MkdirTemp("", dirPattern())
	if err != nil {
		return nil, err
	}
	m := &Manager{dir: dir, socket: filepath.Join(dir, "socket")}
	if opts != nil {
		m.opts = *opts
	}
	p, err := serveInWorker.Start(serveArg{
		Socket:         m.socket,
		AuthKey:        m.opts.AuthKey,
		AllowUIDs:      m.opts.AllowUIDs,
		AnyUID:         m.opts.AnyUID,
		NoSharedMemory: m.opts.NoSharedMemory,
		MaxFrame:       m.opts.MaxFrame,
		MaxBuffered:    m.opts.MaxBuffered,
		Handshake:      m.opts.HandshakeTimeout,
	}, process.Daemon(), process.Name("manager"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m.p = p
	if err := m.connect(ctx); err != nil {
		p.Kill()
		p.Join(context.Background())
		os.RemoveAll(dir)
		return nil, err
	}
	return m, nil
}

// connect dials until the worker listens, it exits, or ctx ends.
func (m *Manager) connect(ctx context.Context) error {
	delay := 200 * time.Microsecond
	for {
		c, err := Dial(ctx, "unix", m.socket, &m.opts)
		if err == nil {
			m.client = c
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		select {
		case <-m.p.Done():
			m.p.Join(ctx)
			return fmt.Errorf("manager: server process exited before listening: %w", m.p.Join(ctx))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
			delay = min(2*delay, 20*time.Millisecond)
		}
	}
}

// Client returns the client Start connected. It is closed by Shutdown.
func (m *Manager) Client() *Client { return m.client }

// Address returns the network ("unix") and address of the server, for
// other processes to Dial.
func (m *Manager) Address() (network, address string) { return "unix", m.socket }

// Process returns the server's worker process.
func (m *Manager) Process() *process.Process { return m.p }

// Shutdown closes the client, asks the server to drain (SIGTERM) and waits
// for its process to exit, or kills it when ctx ends first. It removes the
// socket's directory. It is idempotent.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.client.Close()
	err := m.p.Terminate()
	if err := m.p.Join(ctx); err != nil {
		m.p.Kill()
		m.p.Join(context.Background())
	}
	os.RemoveAll(m.dir)
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	if err == nil {
		if code, _ := m.p.ExitCode(); code != 0 {
			err = fmt.Errorf("manager: server process exited with status %d", code)
		}
	}
	return err
}

// forStart reports the options that Start cannot honour.
func (o *Options) forStart() error {
	if o == nil {
		return nil
	}
	var bad []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"TLSConfig (the server listens on a Unix socket)", o.TLSConfig != nil},
		{"Logger (the server runs in another process)", o.Logger != nil},
		{"KeyPrefix (Redis engine only)", o.KeyPrefix != ""},
		{"Lease (Redis engine only)", o.Lease != 0},
		{"RedisCluster (Redis engine only)", o.RedisCluster},
	} {
		if f.set {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: Start does not use %s", ErrBadOptions, strings.Join(bad, ", "))
	}
	return nil
}
