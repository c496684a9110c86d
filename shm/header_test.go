package shm

import (
	"encoding/binary"
	"testing"
)

func FuzzDecodeHeader(f *testing.F) {
	hdr := make([]byte, headerSize)
	encodeHeader(hdr, header{size: 8192, buckets: bucketCount(8192), creatorPid: 1})
	binary.LittleEndian.PutUint32(hdr[offState:], stateReady)
	f.Add(hdr, int64(8192))
	v1 := append([]byte(nil), hdr...)
	binary.LittleEndian.PutUint32(v1[offVersion:], 1)
	binary.LittleEndian.PutUint32(v1[offBuckets:], 0)
	encodeChecksum(v1)
	f.Add(v1, int64(8192))
	f.Add([]byte(magic), int64(8))
	f.Fuzz(func(t *testing.T, b []byte, fileSize int64) {
		h, err := decodeHeader(b, fileSize)
		if err != nil {
			return
		}
		if h.size != fileSize || h.size < minSize || len(b) < headerSize {
			t.Fatalf("accepted header with size %d for a %d-byte file (%d bytes read)", h.size, fileSize, len(b))
		}
		if h.version == 1 && h.buckets != 0 || h.version == 2 && (h.buckets == 0 || headerSize+4*int64(h.buckets) > h.size) {
			t.Fatalf("accepted version %d header with %d buckets in %d bytes", h.version, h.buckets, h.size)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	b := make([]byte, entrySize)
	encodeEntry(b, entry{name: "n", kind: "value", off: 4096, size: 64, metaOff: 4160, metaLen: 10, next: 3})
	f.Add(b, int64(8192), int64(4096))
	f.Fuzz(func(t *testing.T, b []byte, segSize, dataLow int64) {
		if len(b) < entrySize {
			return
		}
		e, err := decodeEntry(b, segSize, dataLow)
		if err != nil {
			return
		}
		if e.off < dataLow || e.off+e.size > segSize || e.metaOff+e.metaLen > segSize || e.size < 0 || e.next < 0 {
			t.Fatalf("accepted out-of-bounds entry %+v in segment of %d bytes, data from %d", e, segSize, dataLow)
		}
	})
}
