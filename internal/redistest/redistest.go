// Package redistest runs private redis-server processes for tests: on a
// Unix socket in the test's temporary directory, on a loopback port, with
// a password, or as the nodes of a Redis Cluster, keeping nothing on disk
// but a cluster's node table. Servers are stopped and reaped when the test
// ends, and killed by the kernel if the test process dies first (on
// Linux). Tests skip when redis-server (Debian package redis-server) is
// not installed, unless the environment sets SHMKIT_REQUIRE_REDIS=1 (as
// CI does), when they fail.
package redistest

import (
	"bufio"
	"bytes"
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
	"testing"
	"time"
)

const (
	// ServerName is the binary looked up in $PATH; ServerPackage is the
	// Debian package that provides it.
	ServerName    = "redis-server"
	ServerPackage = "redis-server"

	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	// maxSocketPath is the longest path a Unix socket address holds on
	// Linux: sun_path is 108 bytes including the final NUL.
	maxSocketPath = 107
)

// Config says how to run a server.
type Config struct {
	Binary   string // the server's binary; "" means ServerName
	TCP      bool   // listen on a loopback port instead of a Unix socket
	Password string // require this password (requirepass)
	Cluster  bool   // run as a cluster node (see StartCluster)
}

// A Server is a redis-server process private to one test.
type Server struct {
	tb   testing.TB
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

// Start starts a server as cfg says and returns once it answers PING. It
// calls tb.Skip if the binary is not installed and tb.Fatal if the server
// does not start.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Binary == "" {
		cfg.Binary = ServerName
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		missing(tb, "redistest: %s not found in $PATH; install the Debian package %s (apt-get install %s)", cfg.Binary, ServerPackage, ServerPackage)
	}
	s := &Server{tb: tb, cfg: cfg, bin: bin, dir: shortTempDir(tb)}
	s.log = filepath.Join(s.dir, "redis.log")
	if !cfg.TCP {
		s.sock = filepath.Join(s.dir, "redis.sock")
	}
	tb.Cleanup(s.stop)
	for attempt := 0; ; attempt++ {
		if cfg.TCP {
			s.port = freePort(tb, cfg.Cluster)
		}
		err := s.start()
		if err == nil {
			return s
		}
		if !cfg.TCP || attempt == 4 {
			tb.Fatalf("redistest: %v\n%s", err, s.logTail())
		}
		// The port was taken between freePort and the server's bind.
	}
}

// RequireEnv is the environment variable that turns a missing Redis
// binary from a skip into a failure.
const RequireEnv = "SHMKIT_REQUIRE_REDIS"

// missing skips tb, or fails it when RequireEnv is set.
func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv(RequireEnv) != "" {
		tb.Fatalf(format+" ("+RequireEnv+" is set)", args...)
	}
	tb.Skipf(format, args...)
}

// shortTempDir returns a temporary directory whose socket path fits
// sun_path: tb.TempDir() is named after the test and may be too long.
func shortTempDir(tb testing.TB) string {
	dir := tb.TempDir()
	if len(filepath.Join(dir, "redis.sock")) <= maxSocketPath {
		return dir
	}
	short, err := os.MkdirTemp("", "redistest")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(short) })
	return short
}

// freePort returns a loopback port that was free a moment ago (and, for a
// cluster node, whose bus port, 10000 above it, exists).
func freePort(tb testing.TB, cluster bool) int {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !cluster || port < 65535-10000 {
			return port
		}
	}
}

// start runs the server process and waits until it answers.
func (s *Server) start() error {
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
	deadline := time.Now().Add(startTimeout)
	for {
		_, err := s.Do("PING")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server did not answer within %v: %v", startTimeout, err)
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited during startup: %v", s.waitErr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop ends the server at the test's end.
func (s *Server) stop() {
	if s.proc == nil {
		return
	}
	select {
	case <-s.done:
		if s.waitErr != nil && !s.killed {
			s.tb.Errorf("redistest: redis-server: %v\n%s", s.waitErr, s.logTail())
		}
		return
	default:
	}
	if err := s.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.tb.Errorf("redistest: stop redis-server: %v", err)
	}
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.proc.Kill()
		<-s.done
		s.tb.Errorf("redistest: redis-server did not exit within %v of SIGTERM and was killed\n%s", stopTimeout, s.logTail())
	}
}

// Kill kills the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.killed = true
	s.proc.Kill()
	<-s.done
}

// Restart kills the server, if it runs, and starts it again on the same
// socket or port (empty: nothing is saved).
func (s *Server) Restart() {
	s.tb.Helper()
	select {
	case <-s.done:
	default:
		s.Kill()
	}
	if err := s.start(); err != nil {
		s.tb.Fatalf("redistest: restart: %v\n%s", err, s.logTail())
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

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
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

// StartCluster starts n cluster nodes on loopback ports, each holding an
// equal share of the slots and no replica, and returns once every node
// reports the cluster's state ok. It assigns the slots and introduces
// the nodes itself (CLUSTER ADDSLOTSRANGE, CLUSTER MEET), without
// redis-cli. That takes about two seconds: a master does not report ok
// sooner after it started.
func StartCluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	const slots = 16384
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = Start(tb, Config{TCP: true, Cluster: true})
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := nodes[i].Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			tb.Fatalf("redistest: CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	for _, s := range nodes[1:] {
		host, port, _ := net.SplitHostPort(s.Addr())
		if _, err := nodes[0].Do("CLUSTER", "MEET", host, port); err != nil {
			tb.Fatalf("redistest: CLUSTER MEET: %v", err)
		}
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range nodes {
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r\n") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster not ok within %v: %v %q", startTimeout, err, info)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes
}
