// Package redisproc runs a private redis-server process: on a Unix socket
// or a loopback port, with a password or as a cluster node, keeping
// nothing on disk but a cluster's node table, and killed by the kernel if
// the thread that started it ends first (on Linux). It is the part of
// packages redistest (for tests) and redisbench (for benchmarks and
// `shmkit bench`) that needs no package testing.
package redisproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// ServerName is the binary looked up in $PATH; ServerPackage is the
	// Debian package that provides it.
	ServerName    = "redis-server"
	ServerPackage = "redis-server"

	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// ErrNotInstalled is what New fails with (wrapped, naming the binary and
// its Debian package) when the server's binary is not in $PATH.
var ErrNotInstalled = errors.New("not installed")

// Config says how to run a server.
type Config struct {
	Binary   string // the server's binary; "" means ServerName
	TCP      bool   // listen on a loopback port (SetPort) instead of a Unix socket
	Password string // require this password (requirepass)
	Cluster  bool   // run as a cluster node
}

// A Server is a redis-server process run from a directory of its own.
type Server struct {
	cfg  Config
	bin  string
	dir  string
	sock string // "" with TCP
	port int    // 0 without TCP
	log  string

	proc    *os.Process
	done    chan struct{} // closed when the process has been reaped
	waitErr error
	killed  bool // by Kill: its exit is not an error
}

// New prepares a server as cfg says, to run in dir (which must exist, and
// whose socket path must fit sun_path), and does not start it. It fails
// with an error wrapping ErrNotInstalled if the binary is not in $PATH.
func New(cfg Config, dir string) (*Server, error) {
	if cfg.Binary == "" {
		cfg.Binary = ServerName
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("%s %w (not found in $PATH); install the Debian package %s (apt-get install %s)", cfg.Binary, ErrNotInstalled, ServerPackage, ServerPackage)
	}
	s := &Server{cfg: cfg, bin: bin, dir: dir, log: filepath.Join(dir, "redis.log")}
	if !cfg.TCP {
		s.sock = filepath.Join(dir, "redis.sock")
	}
	return s, nil
}

// SetPort sets the loopback port a TCP server listens on from its next
// Start.
func (s *Server) SetPort(port int) { s.port = port }

// Start runs the server process and returns once it answers PING, or
// fails when it exits first, or when neither happened within 30 seconds
// or before ctx ended (then the server is killed).
func (s *Server) Start(ctx context.Context) error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
	}
	if s.sock != "" {
		args = append(args, "--unixsocket", s.sock, "--unixsocketperm", "700")
	}
	if s.cfg.Password != "" {
		args = append(args, "--requirepass", s.cfg.Password)
	}
	if s.cfg.Cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
	}
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, logFile, logFile
	setDeathSignal(cmd)
	// The parent-death signal fires when the thread that started the
	// child exits, and the Go runtime ends a thread whose locked
	// goroutine exits. So one goroutine, locked to its thread, starts the
	// server and waits for it: the thread lives as long as the server.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		runtime.UnlockOSThread()
		close(done)
	}()
	err = <-started
	logFile.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.proc, s.done, s.killed = cmd.Process, done, false
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		_, err := s.Do("PING")
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited during startup: %v", s.waitErr)
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("redis-server did not answer PING: %w (%v)", ctx.Err(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Stop stops the server, if it was started: SIGTERM, then SIGKILL after
// ten seconds. It waits for the process to exit, and reports a server that
// had failed by itself (not by Kill) or had to be killed.
func (s *Server) Stop() error {
	if s.proc == nil {
		return nil
	}
	select {
	case <-s.done:
		if s.waitErr != nil && !s.killed {
			return fmt.Errorf("redis-server: %v\n%s", s.waitErr, s.LogTail())
		}
		return nil
	default:
	}
	if err := s.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop redis-server: %w", err)
	}
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
		s.proc.Kill()
		<-s.done
		return fmt.Errorf("redis-server did not exit within %v of SIGTERM and was killed\n%s", stopTimeout, s.LogTail())
	}
}

// Kill kills the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.killed = true
	s.proc.Kill()
	<-s.done
}

// Exited reports whether the server process has ended since Start.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Socket returns the path of the server's Unix socket ("" with TCP).
func (s *Server) Socket() string { return s.sock }

// Addr returns the server's loopback host:port ("" without TCP).
func (s *Server) Addr() string {
	if s.port == 0 {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(s.port)
}

// URL returns a redis:// or unix:// URL of the server, with its password.
func (s *Server) URL() string {
	auth := ""
	if s.cfg.Password != "" {
		auth = ":" + s.cfg.Password + "@"
	}
	if s.sock != "" {
		if auth != "" {
			return "unix://" + auth + s.sock
		}
		return "unix://" + s.sock
	}
	return "redis://" + auth + s.Addr()
}

// Do sends one command (after AUTH, if the server has a password) and
// returns its reply: a simple or bulk string, or an integer's digits.
func (s *Server) Do(args ...string) (string, error) {
	network, addr := "unix", s.sock
	if s.sock == "" {
		network, addr = "tcp", s.Addr()
	}
	deadline := time.Now().Add(5 * time.Second)
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial(network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	if s.cfg.Password != "" {
		if _, err := roundTrip(c, r, "AUTH", s.cfg.Password); err != nil {
			return "", err
		}
	}
	return roundTrip(c, r, args...)
}

func roundTrip(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%s: empty reply", args[0])
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("%s: server error: %s", args[0], line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("%s: unexpected reply %q", args[0], line)
}

// LogTail returns the end of the server's log, for error messages.
func (s *Server) LogTail() string {
	const keep = 2048
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > keep {
		b = b[len(b)-keep:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return "redis-server log:\n" + string(bytes.TrimSpace(b))
}
