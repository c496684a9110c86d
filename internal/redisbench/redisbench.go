// Package redisbench runs a private Redis server and the redis-benchmark
// tool, so that the manager's benchmarks and `shmkit bench` can report
// Redis figures measured on the same machine in the same run.
//
// The server listens only on a Unix socket in a new temporary directory,
// keeps nothing on disk, and is stopped and reaped by Close (by the test's
// cleanup, for Start). Programs use Launch, which fails when redis-server
// (Debian package redis-server) is not installed; tests use Start, which
// skips then, unless SHMKIT_REQUIRE_REDIS is set (as CI does), when it
// fails. Run fails, or skips the test, when redis-benchmark (Debian
// package redis-tools) is missing.
package redisbench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shmkit/shmkit/internal/redisproc"
)

// Names of the binaries looked up in $PATH, and the Debian package that
// provides redis-benchmark.
const (
	serverName       = "redis-server"
	benchmarkName    = "redis-benchmark"
	benchmarkPackage = "redis-tools"
)

// Without -r, redis-benchmark's GET and SET tests use this one key, and SET
// stores a value of -d bytes (3 by default). A server stores a value of
// that size under the key so that GET hits even when run without SET.
const (
	benchmarkKey   = "key:__rand_int__"
	benchmarkValue = "xxx"
)

// requireEnv is the environment variable that turns a missing Redis into
// a failure of Start's test rather than a skip (redistest.RequireEnv).
const requireEnv = "SHMKIT_REQUIRE_REDIS"

// A Server is a redis-server process private to one program, test or
// benchmark.
type Server struct {
	dir       string
	proc      *redisproc.Server // nil until found
	tb        TB                // nil unless started by Start
	benchmark string            // name of the redis-benchmark binary, looked up by Run
	closeOnce sync.Once
	closeErr  error
}

// TB is the part of testing.TB that Start uses; *testing.T and
// *testing.B have it. (Asking for no more keeps package testing out of
// programs that use Launch.)
type TB interface {
	Helper()
	Cleanup(func())
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Start starts a server as Launch does, for a test or benchmark: it stores
// the key redis-benchmark's GET test reads, and the server is closed when
// tb ends. Start calls tb.Skip if redis-server is not installed (tb.Fatal
// if SHMKIT_REQUIRE_REDIS is set), and tb.Fatal if it does not start.
func Start(tb TB) *Server {
	tb.Helper()
	return start(tb, serverName, benchmarkName)
}

// start is Start with the names of the binaries to look up.
func start(tb TB, server, benchmark string) *Server {
	tb.Helper()
	s, err := launch(context.Background(), server, benchmark)
	if errors.Is(err, ErrNotInstalled) && os.Getenv(requireEnv) == "" {
		tb.Skipf("%v", err)
	}
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Fatalf("%v", err)
		}
	})
	s.tb = tb
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
// If redis-benchmark is not installed, Run fails with an error wrapping
// ErrNotInstalled, or, for a server from Start, calls tb.Skip with the tb
// given to Start; so it must then be called from the goroutine running
// that test or benchmark, not from a subtest or a RunParallel body.
func (s *Server) Run(ctx context.Context, clients, pipeline, requests int, tests string) (map[string]float64, error) {
	bin, err := lookPath(s.benchmark, benchmarkPackage)
	if err != nil {
		if s.tb != nil {
			s.tb.Helper()
			s.tb.Skipf("%v", err)
		}
		return nil, err
	}
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
