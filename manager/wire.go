package manager

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"

	"github.com/shmkit/shmkit/internal/codec"
)

// The wire format is specified in docs/protocol.md; this file is its only
// encoder and decoder. A frame is a 4-byte big-endian body length followed by
// the body. A request body is
//
//	type=1 (1 byte) | id (8) | op (2) | object (4) | arguments
//
// and a response body is
//
//	type=2 (1 byte) | id (8) | status (1) | results
//
// Arguments and results are items: a 4-byte big-endian length followed by
// that many bytes holding one CBOR data item. All integers are big-endian.

const (
	frameLenSize      = 4
	requestHeaderLen  = 1 + 8 + 2 + 4
	responseHeaderLen = 1 + 8 + 1
	itemLenSize       = 4

	typeRequest  = 1
	typeResponse = 2

	// DefaultMaxFrame is the largest frame body accepted unless
	// Options.MaxFrame says otherwise.
	DefaultMaxFrame = 16 << 20
	minMaxFrame     = 4096
	maxMaxFrame     = 1<<31 - 1 // lengths are 32 bits; int may be too
)

// A kind is the type of a server-held object.
type kind uint8

const (
	kindDict kind = 1 + iota
	kindList
	kindNamespace
	kindValue
	kindLock
	kindQueue
	kindEvent
)

var kindNames = [...]string{"", "dict", "list", "namespace", "value", "lock", "queue", "event"}

func (k kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// withArticle returns the kind's name after "a" or "an", for messages.
func (k kind) withArticle() string {
	if k == kindEvent {
		return "an " + k.String()
	}
	return "a " + k.String()
}

// An op is a request's operation code. Object-less operations (below
// opFirstObject) ignore the object field.
type op uint16

const (
	opPing   op = 1 // -> []
	opAttach op = 2 // [kind, name, mode, capacity] -> [object]
	opRemove op = 3 // [kind, name] -> [existed]
	opCancel op = 4 // [request id]; no response

	opFirstObject op = 16

	// Dicts and namespaces. Keys and values are CBOR items; versions are
	// unsigned integers, 0 meaning "absent".
	opMapGet        op = 16 // [key] -> [value] | NoKey
	opMapGetVersion op = 17 // [key] -> [version, value?]
	opMapSet        op = 18 // [key, value] -> [version]
	opMapSetIf      op = 19 // [key, value, version] -> [swapped, version]
	opMapDelete     op = 20 // [key] -> [existed]
	opMapLen        op = 21 // [] -> [n]
	opMapKeys       op = 22 // [] -> [key...]
	opMapItems      op = 23 // [] -> [key, value, ...]
	opMapClear      op = 24 // [] -> []
	opMapSetDefault op = 25 // [key, value] -> [value]
	opMapPop        op = 26 // [key] -> [value] | NoKey
	opMapUpdate     op = 27 // [key, value, ...] -> []
	opMapAdd        op = 28 // [key, delta] -> [value]
	opMapCAS        op = 29 // [key, old, new] -> [swapped]

	// Values.
	opValueLoad  op = 40 // [] -> [version, value]
	opValueStore op = 41 // [value] -> [version]
	opValueSetIf op = 42 // [value, version] -> [swapped, version]
	opValueSwap  op = 43 // [value] -> [old]
	opValueCAS   op = 44 // [old, new] -> [swapped]
	opValueAdd   op = 45 // [delta] -> [value]

	// Lists. Indexes are integers; negative ones count from the end.
	opListAppend op = 56 // [value] -> [len]
	opListExtend op = 57 // [value...] -> [len]
	opListGet    op = 58 // [index] -> [value]
	opListSet    op = 59 // [index, value] -> []
	opListInsert op = 60 // [index, value] -> []
	opListPop    op = 61 // [index] -> [value]
	opListRemove op = 62 // [value] -> [removed]
	opListLen    op = 63 // [] -> [n]
	opListSlice  op = 64 // [start, stop] -> [value...]
	opListIndex  op = 65 // [value] -> [index] (-1 when absent)
	opListClear  op = 66 // [] -> []

	// Locks. Timeouts are nanoseconds; a negative one waits for ever.
	opLockAcquire op = 80 // [timeout] -> [] | OwnerDead | Timeout
	opLockRelease op = 81 // [] -> [] | NotOwner
	opLockLocked  op = 82 // [] -> [locked]
	opLockFence   op = 83 // [] -> [fence] | NotOwner

	// Queues.
	opQueuePut op = 96 // [value, timeout] -> [] | Full | Timeout
	opQueueGet op = 97 // [timeout] -> [value] | Empty | Timeout
	opQueueLen op = 98 // [] -> [n]

	// Events.
	opEventSet   op = 112 // [] -> []
	opEventClear op = 113 // [] -> []
	opEventIsSet op = 114 // [] -> [set]
	opEventWait  op = 115 // [timeout] -> [] | Timeout
)

// Attach modes.
const (
	attachOpenOrCreate = 0
	attachCreate       = 1 // fails with Exists if the name is taken
	attachOpen         = 2 // fails with NotFound if the name is free
)

// A status is the outcome code of a response. Every status but statusOK
// carries one item, a text string describing the failure.
type status uint8

const (
	statusOK         status = 0
	statusNotFound   status = 1  // no such object
	statusExists     status = 2  // the object name is taken
	statusKind       status = 3  // the object has another kind
	statusType       status = 4  // an argument or stored value has the wrong type
	statusIndex      status = 5  // list index out of range
	statusOwnerDead  status = 6  // lock acquired; its previous holder disconnected
	statusNotOwner   status = 7  // releasing a lock this connection does not hold
	statusTimeout    status = 8  // a blocking operation's timeout passed
	statusCanceled   status = 9  // a blocking operation was cancelled
	statusFull       status = 10 // queue full and the timeout was zero
	statusEmpty      status = 11 // queue empty and the timeout was zero
	statusBadRequest status = 12 // malformed request or unknown operation
	statusInternal   status = 13 // the handler failed unexpectedly (a panic)
	statusClosed     status = 14 // the server is shutting down
	statusTooLarge   status = 15 // the response would exceed the frame limit
	statusNoKey      status = 16 // no such key in a dict or namespace
)

// request is a decoded request frame. Its args alias the frame buffer.
type request struct {
	id   uint64
	op   op
	obj  uint32
	args items
}

// response is a decoded response frame. Its results alias the frame buffer.
type response struct {
	id      uint64
	status  status
	results items
}

var (
	errShortFrame = errors.New("frame shorter than its header")
	errFrameType  = errors.New("unknown frame type")
)

// parseRequest decodes a request body. It checks the framing of every item,
// so handlers can walk the arguments without further bounds checks; the
// items' CBOR is checked by whoever decodes or stores it.
func parseRequest(body []byte) (request, error) {
	if len(body) < requestHeaderLen {
		return request{}, errShortFrame
	}
	if body[0] != typeRequest {
		return request{}, errFrameType
	}
	r := request{
		id:  binary.BigEndian.Uint64(body[1:]),
		op:  op(binary.BigEndian.Uint16(body[9:])),
		obj: binary.BigEndian.Uint32(body[11:]),
	}
	var err error
	r.args, err = checkItems(body[requestHeaderLen:])
	return r, err
}

// parseResponse decodes a response body.
func parseResponse(body []byte) (response, error) {
	if len(body) < responseHeaderLen {
		return response{}, errShortFrame
	}
	if body[0] != typeResponse {
		return response{}, errFrameType
	}
	r := response{
		id:     binary.BigEndian.Uint64(body[1:]),
		status: status(body[9]),
	}
	var err error
	r.results, err = checkItems(body[responseHeaderLen:])
	return r, err
}

// items is a sequence of length-prefixed items whose framing was checked.
type items []byte

func checkItems(b []byte) (items, error) {
	for rest := b; len(rest) > 0; {
		if len(rest) < itemLenSize {
			return nil, errors.New("truncated item length")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-itemLenSize) {
			return nil, fmt.Errorf("item of %d bytes overruns its frame", n)
		}
		if n == 0 {
			return nil, errors.New("empty item")
		}
		rest = rest[itemLenSize+int(n):]
	}
	return items(b), nil
}

// count returns the number of items.
func (it items) count() int {
	n := 0
	for rest := it; len(rest) > 0; n++ {
		rest = rest[itemLenSize+int(binary.BigEndian.Uint32(rest)):]
	}
	return n
}

// next returns the first item and the rest. The caller has checked that
// the sequence is not empty.
func (it items) next() ([]byte, items) {
	n := int(binary.BigEndian.Uint32(it))
	return it[itemLenSize : itemLenSize+n], it[itemLenSize+n:]
}

// The codec. Keys and values are encoded deterministically (RFC 8949 core
// deterministic encoding), so that equal values have equal bytes: the server
// compares keys and compare-and-swap operands as bytes. Decoding limits
// bound what a peer can make us allocate; frameWriter.value refuses, before
// sending, a value beyond them (a cyclic one included), which the server
// would refuse.
var (
	values  *codec.Codec
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.Time = cbor.TimeRFC3339Nano
	var err error
	values, err = codec.New(codec.Limits{Depth: 32, Elements: 1 << 20}, eo, cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
		TagsMd:      cbor.TagsAllowed,
	})
	if err != nil {
		panic(err)
	}
	encMode, decMode = values.EncMode(), values.DecMode()
}

// wellformed reports whether b is exactly one well-formed CBOR item within
// the decoding limits.
func wellformed(b []byte) error { return decMode.Wellformed(b) }

// frameWriter appends frames to a byte slice.
type frameWriter struct {
	buf   []byte
	start int // offset of the current frame's length field
}

func (w *frameWriter) beginRequest(id uint64, o op, obj uint32) {
	w.start = len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0, typeRequest)
	w.buf = binary.BigEndian.AppendUint64(w.buf, id)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(o))
	w.buf = binary.BigEndian.AppendUint32(w.buf, obj)
}

func (w *frameWriter) beginResponse(id uint64, s status) {
	w.start = len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0, typeResponse)
	w.buf = binary.BigEndian.AppendUint64(w.buf, id)
	w.buf = append(w.buf, byte(s))
}

// item appends an already encoded item.
func (w *frameWriter) item(b []byte) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(b)))
	w.buf = append(w.buf, b...)
}

// value appends v encoded as CBOR, or fails if v is beyond the decoding
// limits.
func (w *frameWriter) value(v any) error {
	at := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	b, err := values.Marshal(v)
	if err != nil {
		w.buf = w.buf[:at]
		return err
	}
	w.buf = append(w.buf, b...)
	binary.BigEndian.PutUint32(w.buf[at:], uint32(len(b)))
	return nil
}

// uint appends a CBOR unsigned integer item.
func (w *frameWriter) uint(v uint64) {
	at := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	w.buf = appendCBORHead(w.buf, 0, v)
	binary.BigEndian.PutUint32(w.buf[at:], uint32(len(w.buf)-at-itemLenSize))
}

// int appends a CBOR integer item.
func (w *frameWriter) int(v int64) {
	if v >= 0 {
		w.uint(uint64(v))
		return
	}
	at := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	w.buf = appendCBORHead(w.buf, 1, uint64(-(v + 1)))
	binary.BigEndian.PutUint32(w.buf[at:], uint32(len(w.buf)-at-itemLenSize))
}

// bool appends a CBOR boolean item.
func (w *frameWriter) bool(v bool) {
	b := byte(0xf4)
	if v {
		b = 0xf5
	}
	w.buf = append(w.buf, 0, 0, 0, 1, b)
}

// text appends a CBOR text string item.
func (w *frameWriter) text(s string) {
	at := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	w.buf = appendCBORHead(w.buf, 3, uint64(len(s)))
	w.buf = append(w.buf, s...)
	binary.BigEndian.PutUint32(w.buf[at:], uint32(len(w.buf)-at-itemLenSize))
}

// end completes the current frame and reports its body length.
func (w *frameWriter) end() int {
	n := len(w.buf) - w.start - frameLenSize
	binary.BigEndian.PutUint32(w.buf[w.start:], uint32(n))
	return n
}

// discard drops the current, unfinished frame.
func (w *frameWriter) discard() { w.buf = w.buf[:w.start] }

// appendCBORHead appends the shortest head of a CBOR item of the major type
// with the argument v, as deterministic encoding requires.
func appendCBORHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= math.MaxUint8:
		return append(b, m|24, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), v)
}

// Decoders of the small items requests and responses carry.

func decodeBool(b []byte) (bool, error) {
	switch {
	case len(b) == 1 && b[0] == 0xf4:
		return false, nil
	case len(b) == 1 && b[0] == 0xf5:
		return true, nil
	}
	return false, errors.New("not a CBOR boolean")
}

// cborInt reads the CBOR item b when it is a lone integer head (major
// type 0 or 1, any argument length): the common case, read without the
// general decoder.
func cborInt(b []byte) (major byte, arg uint64, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	major, info := b[0]>>5, b[0]&0x1f
	if major > 1 {
		return 0, 0, false
	}
	if info < 24 {
		return major, uint64(info), len(b) == 1
	}
	if info > 27 || len(b) != 1+1<<(info-24) {
		return 0, 0, false
	}
	for _, c := range b[1:] {
		arg = arg<<8 | uint64(c)
	}
	return major, arg, true
}

func decodeUint(b []byte) (uint64, error) {
	if major, n, ok := cborInt(b); ok && major == 0 {
		return n, nil
	}
	var v uint64
	err := decMode.Unmarshal(b, &v)
	return v, err
}

func decodeInt(b []byte) (int64, error) {
	if major, n, ok := cborInt(b); ok && n <= math.MaxInt64 {
		if major == 1 {
			return -1 - int64(n), nil
		}
		return int64(n), nil
	}
	var v int64
	err := decMode.Unmarshal(b, &v)
	return v, err
}

func decodeText(b []byte) (string, error) {
	var v string
	err := decMode.Unmarshal(b, &v)
	return v, err
}

// frameReader reads frames from a byte stream. It keeps partial frames
// across calls, so a read interrupted by a deadline can be resumed without
// losing the stream's framing.
//
// Its buffer starts at frameBufSize and grows only when it is full of
// bytes that have arrived, to at most twice its size and never past the
// frame being read: a peer that announces a large frame and sends little
// of it makes the reader hold little. With a budget, the bytes beyond
// frameBufSize are charged to it while they are held.
type frameReader struct {
	r      io.Reader
	max    int
	budget *frameBudget // nil: no bound but max
	buf    []byte
	r0     int // start of unread bytes
	w      int // end of unread bytes
	last   int // bytes of the frame returned last, consumed at the next call
	held   int // bytes charged to budget: len(buf) - frameBufSize, or 0
}

// frameBufSize is the size of a frame reader's buffer while its frames
// fit: a connection holds this much however little it sends.
const frameBufSize = 64 << 10

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: r, max: max, buf: make([]byte, frameBufSize)}
}

// ErrFrameTooLarge reports a frame longer than the receiver's limit.
var errFrameTooLarge = errors.New("frame exceeds the size limit")

// errFrameBudget reports that a frame's buffer would take the frame
// buffers of all connections past their budget.
var errFrameBudget = errors.New("frame buffers of all connections at their limit")

// next returns the body of the next frame, valid until the following call.
func (fr *frameReader) next() ([]byte, error) {
	fr.r0 += fr.last
	fr.last = 0
	for {
		need := frameLenSize
		if avail := fr.w - fr.r0; avail >= frameLenSize {
			n := int(binary.BigEndian.Uint32(fr.buf[fr.r0:]))
			if n > fr.max {
				return nil, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, fr.max)
			}
			if avail >= frameLenSize+n {
				body := fr.buf[fr.r0+frameLenSize : fr.r0+frameLenSize+n]
				fr.last = frameLenSize + n
				return body, nil
			}
			need = frameLenSize + n
		}
		if err := fr.makeRoom(need); err != nil {
			return nil, err
		}
		m, err := fr.r.Read(fr.buf[fr.w:])
		fr.w += m
		if m > 0 {
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		if err == io.EOF && fr.w > fr.r0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// buffered reports whether a complete frame is already buffered.
func (fr *frameReader) buffered() bool {
	start := fr.r0 + fr.last
	avail := fr.w - start
	if avail < frameLenSize {
		return false
	}
	n := int(binary.BigEndian.Uint32(fr.buf[start:]))
	return avail >= frameLenSize+n
}

// makeRoom makes room to read more of a frame of need bytes from r0 on,
// of which fewer are buffered. It moves the unread bytes to the front if
// the frame would not fit after them, and grows the buffer only if it is
// full.
func (fr *frameReader) makeRoom(need int) error {
	if fr.r0 == fr.w {
		fr.r0, fr.w = 0, 0 // empty: read at the start again
	}
	if len(fr.buf)-fr.r0 >= need {
		return nil
	}
	if fr.r0 > 0 {
		fr.w = copy(fr.buf, fr.buf[fr.r0:fr.w])
		fr.r0 = 0
	}
	if fr.w < len(fr.buf) {
		return nil
	}
	// Full, and need > len(buf) bytes: double, up to need.
	size := min(need, 2*len(fr.buf))
	if b := fr.budget; b != nil {
		more := size - frameBufSize - fr.held
		if !b.take(more) {
			return fmt.Errorf("%w: a frame of %d bytes needs %d more buffered, and %d of %d are in use",
				errFrameBudget, need-frameLenSize, more, b.used.Load(), b.limit)
		}
		fr.held += more
	}
	nb := make([]byte, size)
	copy(nb, fr.buf[:fr.w])
	fr.buf = nb
	return nil
}

// shrink releases a buffer grown for a large frame once it is idle, and
// its charge to the budget.
func (fr *frameReader) shrink() {
	if len(fr.buf) > frameBufSize && fr.r0+fr.last == fr.w {
		fr.buf, fr.r0, fr.w, fr.last = make([]byte, frameBufSize), 0, 0, 0
		fr.release()
	}
}

// release returns the reader's charge to its budget, for a buffer that is
// going away.
func (fr *frameReader) release() {
	if fr.budget != nil {
		fr.budget.give(fr.held)
	}
	fr.held = 0
}

// A frameBudget bounds the bytes that a server's frame readers hold beyond
// their first frameBufSize, all connections together.
type frameBudget struct {
	limit int64
	used  atomic.Int64
}

// take charges n bytes, if they fit.
func (b *frameBudget) take(n int) bool {
	for {
		u := b.used.Load()
		if u+int64(n) > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+int64(n)) {
			return true
		}
	}
}

// give returns n bytes charged before.
func (b *frameBudget) give(n int) { b.used.Add(-int64(n)) }
