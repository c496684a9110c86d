//go:build linux

package shmconn_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmconn"
	"github.com/shmkit/shmkit/internal/shmtest"
)

// TestBellManyConns runs 256 connections whose both sides sleep (no
// polling), all on two Bells, and checks every echo and that the process
// does not hold a thread per sleeper: each round, every client's Read
// sleeps at once while the echoes wait for all the requests to arrive. On
// futexes, each of those sleeping Reads holds an OS thread.
func TestBellManyConns(t *testing.T) {
	const conns, rounds = 256, 5
	a, b := withBells(t, sleepNow)
	before := shmtest.Threads(0)
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
			peak = max(peak, shmtest.Threads(0))
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

// TestBellClearedAnnouncement: a peer may clear a sleeper's announcement
// and ring on its way out of an older publish, one the sleeper had already
// read; the Bell must wake the sleeper to announce again, or the next
// publish, finding no announcement, rings nothing and the sleeper sleeps
// on with data waiting.
func TestBellClearedAnnouncement(t *testing.T) {
	a, b := withBells(t, sleepNow)
	p := newPairWith(t, 4096, a, b)
	buf := make([]byte, 1)
	ch := goRead(p.server, buf)
	waitAsleep(t, p.server, 1)
	// The old publish's wake-up: clear bit 0 of the data wait word (at
	// offset 392 of the client-to-server ring), then ring.
	word := shmconn.Word32(p.c2s, 392)
	for atomic.LoadUint32(word)&1 == 0 {
		runtime.Gosched()
	}
	atomic.AndUint32(word, ^uint32(1))
	rings := shmconn.Rings(b.Bell)
	shmconn.Ring(a.Peer)
	for shmconn.Rings(b.Bell) == rings {
		runtime.Gosched()
	}
	time.Sleep(10 * time.Millisecond) // for the Bell's look at its sleepers
	// The next publish.
	if _, err := p.client.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	if res := await(t, "Read", ch); res.err != nil || buf[0] != 7 {
		t.Fatalf("Read = %v, %v; want 7", buf[0], res.err)
	}
}

// TestBellPollsWhilePays sends single messages a millisecond apart, each
// waking the reader's Bell: a poll after such a wake-up finds nothing,
// so the Bell must stop polling after most of them. A stream of messages
// afterwards must make it poll at every wake-up again.
func TestBellPollsWhilePays(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("a Bell never polls with one CPU")
	}
	a, b := withBells(t, sleepNow)
	p := newPairWith(t, 4096, a, b)
	const sporadic = 100
	buf := make([]byte, 1)
	done := make(chan error, 1)
	go func() {
		for range sporadic {
			if _, err := io.ReadFull(p.server, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range sporadic {
		if _, err := p.client.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rings, polls := shmconn.Rings(b.Bell), shmconn.Polls(b.Bell)
	t.Logf("%d sporadic messages: %d wake-ups, %d polls", sporadic, rings, polls)
	// Polls at wake-ups 1, 3, 7, 15, 31, 63, then every 64th: 6 of 100,
	// and a few more if the scheduler delayed a reader past a message.
	if rings < sporadic/2 {
		t.Fatalf("only %d wake-ups for %d messages a millisecond apart", rings, sporadic)
	}
	if polls > rings/3 {
		t.Errorf("the Bell polled after %d of %d wake-ups that found nothing to poll for", polls, rings)
	}

	// A stream of round trips: once a poll finds it, polling, not
	// ringing, carries it.
	const stream = 5000
	go func() {
		for range stream {
			if _, err := io.ReadFull(p.server, buf); err != nil {
				done <- err
				return
			}
			if _, err := p.server.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	echo := make([]byte, 1)
	for range stream {
		if _, err := p.client.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p.client, echo); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rings, polls = shmconn.Rings(b.Bell)-rings, shmconn.Polls(b.Bell)-polls
	t.Logf("a stream of %d round trips: %d wake-ups, %d polls", stream, rings, polls)
	if polls == 0 || rings > stream/10 {
		t.Errorf("a stream of %d round trips rang the Bell %d times and it polled %d times", stream, rings, polls)
	}
}
