//go:build linux

package shmconn_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// threads returns the number of OS threads of this process, or 0 if
// /proc does not say.
func threads() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// TestBellManyConns runs 256 connections whose both sides sleep (no
// polling), all on two Bells, and checks every echo and that the process
// does not hold a thread per sleeper: each round, every client's Read
// sleeps at once while the echoes wait for all the requests to arrive. On
// futexes, each of those sleeping Reads holds an OS thread.
func TestBellManyConns(t *testing.T) {
	const conns, rounds = 256, 5
	a, b := withBells(t, sleepNow)
	before := threads()
	if before == 0 {
		t.Fatal("no thread count in /proc/self/status")
	}
	pairs := make([]pair, conns)
	for i := range pairs {
		pairs[i] = newPairWith(t, 4096, a, b)
	}
	var (
		wg, arrived sync.WaitGroup
		errs        = make(chan error, 2*conns)
		peak        int
		release     = make(chan struct{})
	)
	for r := range rounds {
		arrived.Add(conns)
		for i, p := range pairs {
			wg.Add(2)
			go func() { // the echo: after every request of the round arrived
				defer wg.Done()
				buf := make([]byte, 8)
				n, err := p.server.Read(buf)
				arrived.Done()
				if err != nil {
					errs <- err
					return
				}
				<-release
				if _, err := p.server.Write(buf[:n]); err != nil {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				msg := []byte(strconv.Itoa(10000000 + 1000*r + i))
				buf := make([]byte, len(msg))
				if _, err := p.client.Write(msg); err != nil {
					errs <- err
					return
				}
				if n, err := io.ReadFull(p.client, buf); err != nil || !bytes.Equal(buf[:n], msg) {
					errs <- fmt.Errorf("echo %q, %v; want %q", buf[:n], err, msg)
				}
			}()
		}
		arrived.Wait()
		// Every client has written and is reading, soon asleep.
		for range 20 {
			time.Sleep(time.Millisecond)
			peak = max(peak, threads())
		}
		close(release)
		wg.Wait()
		release = make(chan struct{})
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if limit := before + 32; peak > limit {
		t.Errorf("threads rose from %d to %d with %d sleeping connections, want at most %d", before, peak, conns, limit)
	}
	t.Logf("threads: %d before, %d at the peak", before, peak)
}
