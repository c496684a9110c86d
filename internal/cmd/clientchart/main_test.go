package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkClients/op=get/clients=1/transport=shm-2   40000  1900 ns/op  520.0 kreq/s  14.0 redis-kreq/s  37.1 x-redis
BenchmarkClients/op=get/clients=1/transport=shm-2   40000  1900 ns/op  540.0 kreq/s  12.0 redis-kreq/s  45.0 x-redis
BenchmarkClients/op=get/clients=1/transport=shm-2   40000  1900 ns/op  600.0 kreq/s  16.0 redis-kreq/s  37.5 x-redis
BenchmarkClients/op=get/clients=1/transport=unix-2  40000  1900 ns/op  20.0 kreq/s  14.0 redis-kreq/s  1.4 x-redis
BenchmarkBusy/op=set/clients=8/transport=shm-2      60000  4000 ns/op  250.0 kreq/s  30.0 redis-kreq/s  8.3 x-redis
PASS
`

func TestParse(t *testing.T) {
	s, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		k       key
		clients int
		want    float64
	}{
		{key{"get", false, "shmkit"}, 1, 540},
		{key{"get", false, "redis"}, 1, 14},
		{key{"set", true, "shmkit"}, 8, 250},
		{key{"set", true, "redis"}, 8, 30},
	} {
		if got := median(s[c.k][c.clients]); got != c.want {
			t.Errorf("%+v at %d clients: median %v, want %v", c.k, c.clients, got, c.want)
		}
	}
	if n := len(s[key{"get", false, "shmkit"}][1]); n != 3 {
		t.Errorf("%d shm samples at one client, want 3 (the unix line is not one)", n)
	}
	if _, err := parse(strings.NewReader("PASS\n")); err == nil {
		t.Error("parse of output without benchmarks succeeded")
	}
}

func TestDraw(t *testing.T) {
	s, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.png")
	if err := draw2(path, "a machine", s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Fatalf("chart: %d bytes, %v; want a PNG", len(b), err)
	}
}
