package redisbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/shmkit/shmkit/internal/redisproc"
)

// ErrNotInstalled is what Launch and Run fail with (wrapped, naming the
// binary and its Debian package) when redis-server or redis-benchmark is
// not in $PATH.
var ErrNotInstalled = redisproc.ErrNotInstalled

// Launch starts a redis-server of its own, as Start does, for a program
// rather than a test: it fails where Start skips, and the caller must
// Close the server. ctx bounds the start only. On Linux the server is
// killed by the kernel if the thread that started it ends first, so a
// program that dies without Close does not leave it running.
func Launch(ctx context.Context) (*Server, error) {
	return launch(ctx, serverName, benchmarkName)
}

// launch is Launch with the names of the binaries to look up.
func launch(ctx context.Context, server, benchmark string) (*Server, error) {
	// A directory of its own under the system's temporary directory,
	// whose name is short enough for a socket's path (108 bytes).
	dir, err := os.MkdirTemp("", "redisbench")
	if err != nil {
		return nil, fmt.Errorf("redisbench: %w", err)
	}
	s := &Server{dir: dir, benchmark: benchmark}
	if s.proc, err = redisproc.New(redisproc.Config{Binary: server}, dir); err != nil {
		return nil, errors.Join(fmt.Errorf("redisbench: %w", err), s.Close())
	}
	if err := s.proc.Start(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("redisbench: %w\n%s", err, s.proc.LogTail()), s.Close())
	}
	if _, err := s.proc.Do("SET", benchmarkKey, benchmarkValue); err != nil {
		return nil, errors.Join(fmt.Errorf("redisbench: %w", err), s.Close())
	}
	return s, nil
}

// lookPath returns the path of the binary name, or an error wrapping
// ErrNotInstalled that names the Debian package providing it.
func lookPath(name, pkg string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("redisbench: %s %w (not found in $PATH); install the Debian package %s (apt-get install %s) to compare with Redis", name, ErrNotInstalled, pkg, pkg)
	}
	return path, nil
}

// Socket returns the path of the server's Unix socket.
func (s *Server) Socket() string { return s.proc.Socket() }

// Do sends one command and returns its reply: a simple or bulk string,
// or an integer's digits.
func (s *Server) Do(args ...string) (string, error) { return s.proc.Do(args...) }

// Close stops the server (SIGTERM, then SIGKILL after ten seconds), waits
// for it to exit and removes its directory. It reports a server that had
// failed by itself. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.proc != nil {
			if err := s.proc.Stop(); err != nil {
				s.closeErr = fmt.Errorf("redisbench: %w", err)
			}
		}
		if err := os.RemoveAll(s.dir); err != nil {
			s.closeErr = errors.Join(s.closeErr, fmt.Errorf("redisbench: %w", err))
		}
	})
	return s.closeErr
}
