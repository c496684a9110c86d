package redisbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ErrNotInstalled is what Launch and Run fail with (wrapped, naming the
// binary and its Debian package) when redis-server or redis-benchmark is
// not in $PATH.
var ErrNotInstalled = errors.New("not installed")

const (
	serverPackage = "redis-server"
	launchTimeout = 30 * time.Second
	closeTimeout  = 10 * time.Second
)

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
	bin, err := lookPath(server, serverPackage)
	if err != nil {
		return nil, err
	}
	// A directory of its own under the system's temporary directory,
	// whose name is short enough for a socket's path (108 bytes).
	dir, err := os.MkdirTemp("", "redisbench")
	if err != nil {
		return nil, fmt.Errorf("redisbench: %w", err)
	}
	s := &Server{dir: dir, sock: filepath.Join(dir, "redis.sock"), benchmark: benchmark, done: make(chan struct{})}
	if err := s.start(ctx, bin); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if _, err := s.Do("SET", benchmarkKey, benchmarkValue); err != nil {
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

// start runs the server, listening on s.sock alone and keeping nothing on
// disk, and waits until it answers PING.
func (s *Server) start(ctx context.Context, bin string) error {
	log, err := os.Create(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return fmt.Errorf("redisbench: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(bin,
		"--port", "0",
		"--unixsocket", s.sock, "--unixsocketperm", "700",
		"--dir", s.dir,
		"--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", "")
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, log, log
	setDeathSignal(cmd)
	// The parent-death signal is sent when the thread that started the
	// child ends, and the runtime ends a thread whose locked goroutine
	// returns: so one locked goroutine starts the server and reaps it.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		s.proc = cmd.Process
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("redisbench: start %s: %w", bin, err)
	}
	ctx, cancel := context.WithTimeout(ctx, launchTimeout)
	defer cancel()
	for {
		reply, err := s.Do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redisbench: redis-server exited during start-up: %v%s", s.waitErr, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("redisbench: redis-server did not answer PING: %w (%v)%s", ctx.Err(), err, s.logTail())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of the server's log, if any, for an
// error message.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return ""
	}
	return "\nredis-server log:\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// Socket returns the path of the server's Unix socket.
func (s *Server) Socket() string { return s.sock }

// Do sends a command whose reply is one line (a status, an error or an
// integer, such as PING, SET or TYPE) as an inline command, and returns
// the reply without its type marker. Its arguments must not hold spaces
// or line breaks.
func (s *Server) Do(args ...string) (string, error) {
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\r\n\"'") {
			return "", fmt.Errorf("redisbench: argument %q cannot go in an inline command", a)
		}
	}
	c, err := net.DialTimeout("unix", s.sock, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(c, "%s\r\n", strings.Join(args, " ")); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	reply = strings.TrimRight(reply, "\r\n")
	switch {
	case reply == "":
		return "", fmt.Errorf("%s: empty reply", args[0])
	case reply[0] == '+' || reply[0] == ':':
		return reply[1:], nil
	case reply[0] == '-':
		return "", fmt.Errorf("%s: %s", args[0], reply[1:])
	}
	return "", fmt.Errorf("%s: reply %q is not one line", args[0], reply)
}

// Close stops the server (SIGTERM, then SIGKILL after ten seconds), waits
// for it to exit and removes its directory. It reports a server that had
// failed by itself. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.proc != nil {
			select {
			case <-s.done:
				if s.waitErr != nil {
					s.closeErr = fmt.Errorf("redisbench: redis-server: %v%s", s.waitErr, s.logTail())
				}
			default:
				if err := s.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
					s.closeErr = fmt.Errorf("redisbench: stop redis-server: %w", err)
				}
				select {
				case <-s.done:
				case <-time.After(closeTimeout):
					s.proc.Kill()
					<-s.done
				}
			}
		}
		if err := os.RemoveAll(s.dir); err != nil {
			s.closeErr = errors.Join(s.closeErr, fmt.Errorf("redisbench: %w", err))
		}
	})
	return s.closeErr
}
