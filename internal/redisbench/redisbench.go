// Package redisbench runs a private Redis server and the redis-benchmark
// tool, so that benchmarks of the manager can report Redis figures measured
// on the same machine in the same run.
//
// The server listens only on a Unix socket in the test's temporary
// directory, keeps nothing on disk, and is stopped and reaped when the test
// ends. Tests skip when redis-server (Debian package redis-server) or
// redis-benchmark (Debian package redis-tools) is not installed.
package redisbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Names of the binaries looked up in $PATH, and the Debian packages that
// provide them.
const (
	serverName       = "redis-server"
	serverPackage    = "redis-server"
	benchmarkName    = "redis-benchmark"
	benchmarkPackage = "redis-tools"
)

// Without -r, redis-benchmark's GET and SET tests use this one key, and SET
// stores a value of -d bytes (3 by default). Start stores a value of that
// size under the key so that GET hits even when run without SET.
const (
	benchmarkKey   = "key:__rand_int__"
	benchmarkValue = "xxx"
)

const (
	// startTimeout bounds the wait for a new server to answer PING.
	startTimeout = 30 * time.Second
	// stopTimeout is how long a server may take to exit after SIGTERM
	// before it is killed.
	stopTimeout = 10 * time.Second
	// maxSocketPath is the longest path a Unix socket address holds on
	// Linux: sun_path is 108 bytes including the final NUL.
	maxSocketPath = 107
)

// A Server is a redis-server process private to one test or benchmark.
type Server struct {
	tb        testing.TB
	sock      string
	log       string
	benchmark string // name of the redis-benchmark binary, looked up by Run
}

// Start starts a redis-server listening only on a Unix socket in
// tb.TempDir(), with no TCP port and no persistence, and returns once it
// answers PING. It stores the key redis-benchmark's GET test reads, so
// GET hits even when run without SET. The server is stopped with SIGTERM
// (SIGKILL if it has not exited after 10s) and waited for in tb.Cleanup;
// on Linux it is also killed if the test process dies first. Start calls
// tb.Skip if redis-server is not installed, and tb.Fatal if it does not
// start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, serverName, benchmarkName)
}

// start is Start with the names of the binaries to look up.
func start(tb testing.TB, server, benchmark string) *Server {
	tb.Helper()
	bin := lookPath(tb, server, serverPackage)
	dir := tb.TempDir()
	if len(filepath.Join(dir, "redis.sock")) > maxSocketPath {
		// The temporary directory is named after the test; fall back to a
		// shorter name.
		short, err := os.MkdirTemp("", "redisbench")
		if err != nil {
			tb.Fatalf("redisbench: %v", err)
		}
		tb.Cleanup(func() { os.RemoveAll(short) })
		dir = short
	}
	s := &Server{
		tb:        tb,
		sock:      filepath.Join(dir, "redis.sock"),
		log:       filepath.Join(dir, "redis.log"),
		benchmark: benchmark,
	}
	if len(s.sock) > maxSocketPath {
		tb.Fatalf("redisbench: socket path %s is longer than %d bytes; set a shorter TMPDIR", s.sock, maxSocketPath)
	}
	logFile, err := os.Create(s.log)
	if err != nil {
		tb.Fatalf("redisbench: %v", err)
	}
	cmd := exec.Command(bin,
		"--port", "0",
		"--unixsocket", s.sock,
		"--unixsocketperm", "700",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
	)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setDeathSignal(cmd)

	// The parent-death signal fires when the thread that started the child
	// exits, and the Go runtime ends a thread whose locked goroutine exits.
	// So one goroutine, locked to its thread, starts the server and waits
	// for it: the thread lives exactly as long as the server does.
	started := make(chan error, 1)
	done := make(chan struct{})
	var waitErr error
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		waitErr = cmd.Wait()
		runtime.UnlockOSThread()
		close(done)
	}()
	err = <-started
	logFile.Close() // the server has its own copy
	if err != nil {
		tb.Fatalf("redisbench: start %s: %v", bin, err)
	}

	var exited bool // reported during startup, so not again at cleanup
	tb.Cleanup(func() {
		tb.Helper()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			tb.Errorf("redisbench: stop redis-server: %v", err)
		}
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			cmd.Process.Kill()
			<-done
			tb.Errorf("redisbench: redis-server did not exit within %v of SIGTERM and was killed\n%s", stopTimeout, s.logTail())
			return
		}
		if waitErr != nil && !exited {
			tb.Errorf("redisbench: redis-server: %v\n%s", waitErr, s.logTail())
		}
	})

	deadline := time.Now().Add(startTimeout)
	for {
		_, err := command(s.sock, time.Now().Add(time.Second), "PING")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redisbench: redis-server did not answer within %v: %v\n%s", startTimeout, err, s.logTail())
		}
		select {
		case <-done:
			exited = true
			tb.Fatalf("redisbench: redis-server exited during startup: %v\n%s", waitErr, s.logTail())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := command(s.sock, time.Now().Add(startTimeout), "SET", benchmarkKey, benchmarkValue); err != nil {
		tb.Fatalf("redisbench: %v", err)
	}
	return s
}

// Socket returns the path of the server's Unix socket.
func (s *Server) Socket() string { return s.sock }

// Run runs redis-benchmark against s over its Unix socket: clients
// connections, each pipelining pipeline requests, for requests requests in
// all per test, with one fixed key and the default 3-byte values. tests is
// a comma-separated list as for redis-benchmark -t, such as "get,set".
//
// Run returns the requests per second redis-benchmark reported for each
// test it ran, keyed by the name it reported ("GET", "SET",
// "MSET (10 keys)"). ctx bounds the run: when it is done, redis-benchmark
// is killed and Run returns an error wrapping ctx.Err().
//
// Run calls tb.Skip, with the tb given to Start, if redis-benchmark is not
// installed; so it must be called from the goroutine running that test or
// benchmark, not from a subtest or a RunParallel body.
func (s *Server) Run(ctx context.Context, clients, pipeline, requests int, tests string) (map[string]float64, error) {
	s.tb.Helper()
	bin := lookPath(s.tb, s.benchmark, benchmarkPackage)
	if clients < 1 || pipeline < 1 || requests < 1 {
		return nil, fmt.Errorf("redisbench: clients, pipeline and requests must be positive, got %d, %d and %d", clients, pipeline, requests)
	}
	if strings.TrimSpace(tests) == "" {
		return nil, errors.New("redisbench: no tests named")
	}
	cmd := exec.CommandContext(ctx, bin,
		"-s", s.sock,
		"-c", strconv.Itoa(clients),
		"-P", strconv.Itoa(pipeline),
		"-n", strconv.Itoa(requests),
		"-t", tests,
		"--csv",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("redisbench: redis-benchmark: %w", ctx.Err())
		}
		return nil, fmt.Errorf("redisbench: redis-benchmark: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	rps, err := parseCSV(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("redisbench: redis-benchmark output: %w", err)
	}
	return rps, nil
}

// lookPath returns the path of the binary name, or skips the test naming
// the Debian package that provides it.
func lookPath(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Skipf("redisbench: %s not found in $PATH; install the Debian package %s (apt-get install %s) to compare with Redis", name, pkg, pkg)
	}
	return path
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

// command sends one command, as a RESP array of bulk strings, to the
// server listening on sock and returns its reply, which must be a simple
// string ("+PONG" gives "PONG"). The exchange must end by deadline.
func command(sock string, deadline time.Time, args ...string) (string, error) {
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("unix", sock)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("%s: server error: %s", args[0], line[1:])
	default:
		return "", fmt.Errorf("%s: unexpected reply %q", args[0], line)
	}
}

// parseCSV returns the requests per second in redis-benchmark --csv output,
// keyed by test name. Redis 7 writes a header line naming the columns
// ("test","rps",...); older versions write only "test","rps" rows, which
// parseCSV reads as the first two columns.
func parseCSV(out []byte) (map[string]float64, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	testCol, rpsCol := 0, 1
	rps := make(map[string]float64)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if ti, ri := slices.Index(rec, "test"), slices.Index(rec, "rps"); ti >= 0 && ri >= 0 {
			testCol, rpsCol = ti, ri
			continue
		}
		line, _ := r.FieldPos(0)
		if len(rec) <= max(testCol, rpsCol) {
			return nil, fmt.Errorf("line %d: %d fields, want at least %d", line, len(rec), max(testCol, rpsCol)+1)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[rpsCol]), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("line %d: requests per second %q is not a number", line, rec[rpsCol])
		}
		rps[rec[testCol]] = v
	}
	if len(rps) == 0 {
		return nil, fmt.Errorf("no results in %q", out)
	}
	return rps, nil
}
