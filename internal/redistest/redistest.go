// Package redistest runs private redis-server processes for tests: on a
// Unix socket in the test's temporary directory, on a loopback port, with
// a password, or as the nodes of a Redis Cluster, keeping nothing on disk
// but a cluster's node table. Servers are stopped and reaped when the test
// ends, and killed by the kernel if the test process dies first (on
// Linux). Tests skip when redis-server (Debian package redis-server) is
// not installed, unless the environment sets SHMKIT_REQUIRE_REDIS=1 (as
// CI does), when they fail. The processes are package redisproc's.
package redistest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redisproc"
)

const (
	// ServerName is the binary looked up in $PATH; ServerPackage is the
	// Debian package that provides it.
	ServerName    = redisproc.ServerName
	ServerPackage = redisproc.ServerPackage

	clusterTimeout = 30 * time.Second
	// maxSocketPath is the longest path a Unix socket address holds on
	// Linux: sun_path is 108 bytes including the final NUL.
	maxSocketPath = 107
)

// Config says how to run a server.
type Config = redisproc.Config

// A Server is a redis-server process private to one test: Socket, Addr,
// URL, Do and Kill are redisproc's.
type Server struct {
	*redisproc.Server
	tb testing.TB
}

// Start starts a server as cfg says and returns once it answers PING. It
// calls tb.Skip if the binary is not installed and tb.Fatal if the server
// does not start.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	rs, err := redisproc.New(cfg, shortTempDir(tb))
	if errors.Is(err, redisproc.ErrNotInstalled) {
		missing(tb, "redistest: %v", err)
	}
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{Server: rs, tb: tb}
	tb.Cleanup(func() {
		if err := rs.Stop(); err != nil {
			tb.Errorf("redistest: %v", err)
		}
	})
	for attempt := 0; ; attempt++ {
		if cfg.TCP {
			rs.SetPort(freePort(tb, cfg.Cluster))
		}
		err := rs.Start(context.Background())
		if err == nil {
			return s
		}
		if !cfg.TCP || attempt == 4 {
			tb.Fatalf("redistest: %v\n%s", err, rs.LogTail())
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

// Restart kills the server, if it runs, and starts it again on the same
// socket or port (empty: nothing is saved).
func (s *Server) Restart() {
	s.tb.Helper()
	if !s.Exited() {
		s.Kill()
	}
	if err := s.Start(context.Background()); err != nil {
		s.tb.Fatalf("redistest: restart: %v\n%s", err, s.LogTail())
	}
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
	deadline := time.Now().Add(clusterTimeout)
	for _, s := range nodes {
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r\n") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster not ok within %v: %v %q", clusterTimeout, err, info)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes
}
