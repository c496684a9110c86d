//go:build linux

package shmconn_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmconn"
)

// FuzzHeader lays arbitrary bytes over the header of a ring, as a broken
// or hostile peer could, and checks that New either refuses the ring or
// returns a Conn whose Read, Write and Close return without panicking.
func FuzzHeader(f *testing.F) {
	const capacity = 4096
	valid := make([]byte, shmconn.HeaderSize)
	binary.LittleEndian.PutUint32(valid[shmconn.OffMagic:], 0x474e5253)
	binary.LittleEndian.PutUint32(valid[shmconn.OffVersion:], 1)
	binary.LittleEndian.PutUint64(valid[shmconn.OffCapacity:], capacity)
	f.Add(valid, false)
	f.Add(valid, true)
	for _, mut := range []struct {
		off int
		val uint64
	}{
		{shmconn.OffTail, 100}, {shmconn.OffTail, capacity + 1}, {shmconn.OffHead, 5}, {shmconn.OffHead, ^uint64(0)},
		{shmconn.OffProdClosed, 1}, {shmconn.OffConsClosed, 1}, {shmconn.OffDataWait, 0xffffffff}, {shmconn.OffCapacity, 1 << 40},
	} {
		h := append([]byte(nil), valid...)
		binary.LittleEndian.PutUint64(h[mut.off:], mut.val)
		f.Add(h, false)
		f.Add(h, true)
	}
	f.Add([]byte{}, false)

	seg := segment(f, capacity)
	c2s, s2c := rings(f, seg, capacity)
	buf := make([]byte, 2*capacity)
	f.Fuzz(func(t *testing.T, header []byte, onWrite bool) {
		for _, m := range [][]byte{c2s, s2c} {
			if err := shmconn.InitRing(m, capacity); err != nil {
				t.Fatal(err)
			}
		}
		rx, tx := s2c, c2s
		target := rx
		if onWrite {
			target = tx
		}
		copy(target[:shmconn.HeaderSize], header)
		c, err := shmconn.New(rx, tx, &shmconn.Options{Spin: -1})
		if err != nil {
			return
		}
		c.SetDeadline(time.Unix(1, 0)) // never block
		c.Read(buf)
		c.Write(buf)
		c.Read(buf[:1])
		c.Write(buf[:1])
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
