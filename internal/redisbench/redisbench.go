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
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redistest"
)

// Names of the binaries looked up in $PATH, and the Debian packages that
// provide them.
const (
	serverName       = "redis-server"
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

// A Server is a redis-server process private to one test or benchmark.
type Server struct {
	*redistest.Server
	tb        testing.TB
	benchmark string // name of the redis-benchmark binary, looked up by Run
}

// Start starts a redis-server listening only on a Unix socket in
// tb.TempDir(), with no TCP port and no persistence (see package
// redistest), and returns once it answers PING. It stores the key
// redis-benchmark's GET test reads, so GET hits even when run without
// SET. Start calls tb.Skip if redis-server is not installed, and tb.Fatal
// if it does not start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, serverName, benchmarkName)
}

// start is Start with the names of the binaries to look up.
func start(tb testing.TB, server, benchmark string) *Server {
	tb.Helper()
	s := &Server{Server: redistest.Start(tb, redistest.Config{Binary: server}), tb: tb, benchmark: benchmark}
	if _, err := s.Do("SET", benchmarkKey, benchmarkValue); err != nil {
		tb.Fatalf("redisbench: %v", err)
	}
	return s
}

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
		"-s", s.Socket(),
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
