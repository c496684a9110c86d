package manager

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The server-side objects. Each has its own mutex, held for the whole of
// one request, so every operation on one object is atomic and operations
// on one object are totally ordered: a reply to one request synchronizes
// before any later request's handling on the same object. Keys and values
// are held as the CBOR bytes clients sent, copied out of the frame buffer.

// object is a server-held object.
type object interface {
	kind() kind
	// handle runs r, appending the results to w (whose response frame is
	// already begun). It returns errDeferred when it parked the request to
	// reply later, or a *serverError.
	handle(c *sconn, r request, w *frameWriter) error
}

// errDeferred reports that a handler parked its request.
var errDeferred = errors.New("deferred")

func unsupported(o op, k kind) error {
	return failf(statusBadRequest, fmt.Sprintf("operation %d is not supported by %s", o, k.withArticle()))
}

// newObject returns an empty object of kind k. capacity bounds a queue.
func newObject(k kind, capacity int64) (object, error) {
	switch k {
	case kindDict, kindNamespace:
		return &mapObj{k: k, index: map[string]int{}}, nil
	case kindList:
		return &listObj{}, nil
	case kindValue:
		return &valueObj{val: cborNull, ver: 1}, nil
	case kindLock:
		return &lockObj{}, nil
	case kindQueue:
		if capacity < 0 {
			return nil, failf(statusBadRequest, "negative queue capacity")
		}
		return &queueObj{capacity: int(capacity)}, nil
	case kindEvent:
		return &eventObj{}, nil
	}
	return nil, failf(statusBadRequest, fmt.Sprintf("unknown object kind %d", k))
}

var cborNull = []byte{0xf6}

// mapObj is a dict or namespace. Entries keep insertion order, as Python's
// dicts do: keys and items come back in the order keys were first set.
type mapObj struct {
	k     kind
	mu    sync.Mutex
	index map[string]int // key to position in order
	order []mapEntry     // holes (deleted entries) have ver == 0
	holes int
	clock uint64 // last version handed out
}

type mapEntry struct {
	key []byte
	val []byte
	ver uint64
}

func (m *mapObj) kind() kind { return m.k }

func (m *mapObj) get(key []byte) *mapEntry {
	if i, ok := m.index[string(key)]; ok {
		return &m.order[i]
	}
	return nil
}

// set stores val under key and returns the new version.
func (m *mapObj) set(key, val []byte) uint64 {
	m.clock++
	if e := m.get(key); e != nil {
		e.val = bytes.Clone(val)
		e.ver = m.clock
		return m.clock
	}
	k := bytes.Clone(key)
	m.index[string(k)] = len(m.order)
	m.order = append(m.order, mapEntry{key: k, val: bytes.Clone(val), ver: m.clock})
	return m.clock
}

func (m *mapObj) delete(key []byte) (val []byte, ok bool) {
	i, ok := m.index[string(key)]
	if !ok {
		return nil, false
	}
	val = m.order[i].val
	delete(m.index, string(key))
	m.order[i] = mapEntry{}
	m.holes++
	if m.holes > 32 && m.holes > len(m.order)/2 {
		m.compact()
	}
	return val, true
}

func (m *mapObj) compact() {
	live := m.order[:0]
	for _, e := range m.order {
		if e.ver != 0 {
			m.index[string(e.key)] = len(live)
			live = append(live, e)
		}
	}
	clear(m.order[len(live):])
	m.order, m.holes = live, 0
}

func (m *mapObj) handle(c *sconn, r request, w *frameWriter) error {
	a := args{it: r.args}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.op {
	case opMapGet:
		key := a.raw()
		if err := a.done(); err != nil {
			return err
		}
		e := m.get(key)
		if e == nil {
			return failf(statusNoKey, "no such key")
		}
		w.item(e.val)
	case opMapGetVersion:
		key := a.raw()
		if err := a.done(); err != nil {
			return err
		}
		if e := m.get(key); e != nil {
			w.uint(e.ver)
			w.item(e.val)
		} else {
			w.uint(0)
		}
	case opMapSet:
		key, val := a.value(), a.value()
		if err := a.done(); err != nil {
			return err
		}
		w.uint(m.set(key, val))
	case opMapSetIf:
		key, val, ver := a.value(), a.value(), a.uint()
		if err := a.done(); err != nil {
			return err
		}
		cur := uint64(0)
		if e := m.get(key); e != nil {
			cur = e.ver
		}
		if cur != ver {
			w.bool(false)
			w.uint(cur)
			return nil
		}
		w.bool(true)
		w.uint(m.set(key, val))
	case opMapDelete:
		key := a.raw()
		if err := a.done(); err != nil {
			return err
		}
		_, ok := m.delete(key)
		w.bool(ok)
	case opMapLen:
		if err := a.done(); err != nil {
			return err
		}
		w.uint(uint64(len(m.index)))
	case opMapKeys, opMapItems:
		if err := a.done(); err != nil {
			return err
		}
		for _, e := range m.order {
			if e.ver == 0 {
				continue
			}
			w.item(e.key)
			if r.op == opMapItems {
				w.item(e.val)
			}
			if c.tooLarge(w) {
				return failf(statusTooLarge, "the result exceeds the frame limit")
			}
		}
	case opMapClear:
		if err := a.done(); err != nil {
			return err
		}
		clear(m.index)
		clear(m.order)
		m.order, m.holes = m.order[:0], 0
	case opMapSetDefault:
		key, val := a.value(), a.value()
		if err := a.done(); err != nil {
			return err
		}
		if e := m.get(key); e != nil {
			w.item(e.val)
			return nil
		}
		m.set(key, val)
		w.item(val)
	case opMapPop:
		key := a.raw()
		if err := a.done(); err != nil {
			return err
		}
		val, ok := m.delete(key)
		if !ok {
			return failf(statusNoKey, "no such key")
		}
		w.item(val)
	case opMapUpdate:
		kv := a.rest()
		if err := a.done(); err != nil {
			return err
		}
		if len(kv)%2 != 0 {
			return failf(statusBadRequest, "update needs key, value pairs")
		}
		for i := 0; i < len(kv); i += 2 {
			m.set(kv[i], kv[i+1])
		}
	case opMapAdd:
		key, delta, t := a.value(), a.value(), a.numType()
		if err := a.done(); err != nil {
			return err
		}
		var old []byte
		if e := m.get(key); e != nil {
			old = e.val
		}
		sum, err := addNumbers(old, delta, t)
		if err != nil {
			return err
		}
		m.set(key, sum)
		w.item(sum)
	case opMapCAS:
		key, old, val := a.value(), a.raw(), a.value()
		if err := a.done(); err != nil {
			return err
		}
		e := m.get(key)
		if e == nil || !bytes.Equal(e.val, old) {
			w.bool(false)
			return nil
		}
		m.set(key, val)
		w.bool(true)
	default:
		return unsupported(r.op, m.k)
	}
	return nil
}

// valueObj is a single server-held value. A new one holds CBOR null, which
// decodes as the zero value of any Go type.
type valueObj struct {
	mu  sync.Mutex
	val []byte
	ver uint64
}

func (v *valueObj) kind() kind { return kindValue }

func (v *valueObj) store(val []byte) {
	v.val = bytes.Clone(val)
	v.ver++
}

func (v *valueObj) handle(c *sconn, r request, w *frameWriter) error {
	a := args{it: r.args}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch r.op {
	case opValueLoad:
		if err := a.done(); err != nil {
			return err
		}
		w.uint(v.ver)
		w.item(v.val)
	case opValueStore:
		val := a.value()
		if err := a.done(); err != nil {
			return err
		}
		v.store(val)
		w.uint(v.ver)
	case opValueSetIf:
		val, ver := a.value(), a.uint()
		if err := a.done(); err != nil {
			return err
		}
		if ver != v.ver {
			w.bool(false)
			w.uint(v.ver)
			return nil
		}
		v.store(val)
		w.bool(true)
		w.uint(v.ver)
	case opValueSwap:
		val := a.value()
		if err := a.done(); err != nil {
			return err
		}
		w.item(v.val)
		v.store(val)
	case opValueCAS:
		old, val := a.raw(), a.value()
		if err := a.done(); err != nil {
			return err
		}
		if !bytes.Equal(v.val, old) {
			w.bool(false)
			return nil
		}
		v.store(val)
		w.bool(true)
	case opValueAdd:
		delta, t := a.value(), a.numType()
		if err := a.done(); err != nil {
			return err
		}
		sum, err := addNumbers(v.val, delta, t)
		if err != nil {
			return err
		}
		v.store(sum)
		w.item(sum)
	default:
		return unsupported(r.op, kindValue)
	}
	return nil
}

// listObj is a list of values.
type listObj struct {
	mu   sync.Mutex
	vals [][]byte
}

func (l *listObj) kind() kind { return kindList }

// at resolves a Python-style index (negative counts from the end) into
// [0, n) or reports ErrIndex.
func at(i int64, n int) (int, error) {
	if i < 0 {
		i += int64(n)
	}
	if i < 0 || i >= int64(n) {
		return 0, failf(statusIndex, fmt.Sprintf("index %d out of range for length %d", i, n))
	}
	return int(i), nil
}

// clamp resolves a slice bound the way Python does: negative counts from
// the end, and out-of-range bounds are clipped.
func clamp(i int64, n int) int {
	if i < 0 {
		i += int64(n)
	}
	return int(min(max(i, 0), int64(n)))
}

func (l *listObj) handle(c *sconn, r request, w *frameWriter) error {
	a := args{it: r.args}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.op {
	case opListAppend:
		val := a.value()
		if err := a.done(); err != nil {
			return err
		}
		l.vals = append(l.vals, bytes.Clone(val))
		w.uint(uint64(len(l.vals)))
	case opListExtend:
		vals := a.rest()
		if err := a.done(); err != nil {
			return err
		}
		for _, v := range vals {
			l.vals = append(l.vals, bytes.Clone(v))
		}
		w.uint(uint64(len(l.vals)))
	case opListGet:
		i := a.int()
		if err := a.done(); err != nil {
			return err
		}
		j, err := at(i, len(l.vals))
		if err != nil {
			return err
		}
		w.item(l.vals[j])
	case opListSet:
		i, val := a.int(), a.value()
		if err := a.done(); err != nil {
			return err
		}
		j, err := at(i, len(l.vals))
		if err != nil {
			return err
		}
		l.vals[j] = bytes.Clone(val)
	case opListInsert:
		// Like Python's list.insert, any index is valid: it is clipped.
		i, val := a.int(), a.value()
		if err := a.done(); err != nil {
			return err
		}
		l.vals = slices.Insert(l.vals, clamp(i, len(l.vals)), bytes.Clone(val))
	case opListPop:
		i := a.int()
		if err := a.done(); err != nil {
			return err
		}
		j, err := at(i, len(l.vals))
		if err != nil {
			return err
		}
		w.item(l.vals[j])
		l.vals = slices.Delete(l.vals, j, j+1)
	case opListRemove:
		val := a.raw()
		if err := a.done(); err != nil {
			return err
		}
		j := l.index(val)
		if j >= 0 {
			l.vals = slices.Delete(l.vals, j, j+1)
		}
		w.bool(j >= 0)
	case opListLen:
		if err := a.done(); err != nil {
			return err
		}
		w.uint(uint64(len(l.vals)))
	case opListSlice:
		start, stop := a.int(), a.int()
		if err := a.done(); err != nil {
			return err
		}
		i, j := clamp(start, len(l.vals)), clamp(stop, len(l.vals))
		for ; i < j; i++ {
			w.item(l.vals[i])
			if c.tooLarge(w) {
				return failf(statusTooLarge, "the result exceeds the frame limit")
			}
		}
	case opListIndex:
		val := a.raw()
		if err := a.done(); err != nil {
			return err
		}
		w.int(int64(l.index(val)))
	case opListClear:
		if err := a.done(); err != nil {
			return err
		}
		clear(l.vals)
		l.vals = l.vals[:0]
	default:
		return unsupported(r.op, kindList)
	}
	return nil
}

func (l *listObj) index(val []byte) int {
	for i, v := range l.vals {
		if bytes.Equal(v, val) {
			return i
		}
	}
	return -1
}

// A waiter is a blocking request parked on an object until it is granted,
// times out, is cancelled, or its connection ends. Its fields other than
// done are fixed at creation; done is guarded by the object's mutex.
type waiter struct {
	c     *sconn
	id    uint64
	timer *time.Timer
	val   []byte // the value a parked queue Put carries
	done  bool
}

// parker is an object that can park waiters.
type parker interface {
	// abandon ends w with status s if it is still waiting.
	abandon(w *waiter, s status)
}

// park registers a waiter for request id on connection c, with a timer
// abandoning it after timeout (none when negative). It must be called with
// the object's mutex held; it fails when the connection is closing or the
// id is already parked.
func park(o parker, c *sconn, id uint64, timeout time.Duration, val []byte) (*waiter, error) {
	w := &waiter{c: c, id: id, val: val}
	if err := c.addWaiter(w, o); err != nil {
		return nil, err
	}
	if timeout >= 0 {
		w.timer = time.AfterFunc(timeout, func() { o.abandon(w, statusTimeout) })
	}
	return w, nil
}

// parkIn parks request id of connection c on the object o, appending it
// to list, and returns errDeferred; or, with a zero timeout, returns
// fail. The object's mutex must be held.
func parkIn(o parker, list *[]*waiter, c *sconn, id uint64, timeout time.Duration, val []byte, fail error) error {
	if timeout == 0 {
		return fail
	}
	w, err := park(o, c, id, timeout, val)
	if err != nil {
		return err
	}
	*list = append(*list, w)
	return errDeferred
}

// finish marks w done, replying with status s and the results fill
// appends. The object's mutex must be held.
func (w *waiter) finish(s status, fill func(*frameWriter)) {
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.c.removeWaiter(w)
	w.c.replyLater(w.id, s, fill)
}

// takeLive removes and returns the longest-waiting request in *ws whose
// answer can still be delivered (see sconn.deliverable), or nil if there
// is none. Requests of connections that are gone or ending are answered
// Closed and dropped on the way, so that an item, a lock or a parked Put's
// value is never handed to a client that cannot receive the answer; it
// goes to the next one instead. The object's mutex must be held.
func takeLive(ws *[]*waiter) *waiter {
	for len(*ws) > 0 {
		w := (*ws)[0]
		*ws = remove(*ws, w)
		if w.c.deliverable() {
			return w
		}
		w.finish(statusClosed, nil)
	}
	return nil
}

// remove deletes w from a FIFO of waiters.
func remove(ws []*waiter, w *waiter) []*waiter {
	for i, x := range ws {
		if x == w {
			copy(ws[i:], ws[i+1:])
			ws[len(ws)-1] = nil
			return ws[:len(ws)-1]
		}
	}
	return ws
}

// abandonIn ends w with status s if it is still parked in one of lists,
// taking the object's mutex mu.
func abandonIn(mu *sync.Mutex, w *waiter, s status, lists ...*[]*waiter) {
	mu.Lock()
	defer mu.Unlock()
	if !w.done {
		for _, l := range lists {
			*l = remove(*l, w)
		}
		w.finish(s, nil)
	}
}

// endAll answers every request parked in lists with NotFound, for an
// object whose name was removed.
func endAll(mu *sync.Mutex, lists ...*[]*waiter) {
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lists {
		for _, w := range *l {
			w.finish(statusNotFound, nil)
		}
		*l = nil
	}
}

// lockObj is a lock held by one connection at a time. Acquires are served
// in arrival order.
type lockObj struct {
	mu      sync.Mutex
	holder  *sconn
	died    bool   // the last holder's connection ended while holding it
	fence   uint64 // grants so far: the holder's fencing token
	waiters []*waiter
}

func (l *lockObj) kind() kind { return kindLock }

// grant gives the lock to c and returns the status to report.
func (l *lockObj) grant(c *sconn) status {
	l.holder = c
	l.fence++
	c.addHeld(l)
	if l.died {
		l.died = false
		return statusOwnerDead
	}
	return statusOK
}

func (l *lockObj) handle(c *sconn, r request, w *frameWriter) error {
	a := args{it: r.args}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.op {
	case opLockAcquire:
		timeout := a.timeout()
		if err := a.done(); err != nil {
			return err
		}
		if l.holder == nil {
			if s := l.grant(c); s != statusOK {
				return failf(s, statusText(s))
			}
			return nil
		}
		return parkIn(l, &l.waiters, c, r.id, timeout, nil, failf(statusTimeout, "lock is held"))
	case opLockRelease:
		if err := a.done(); err != nil {
			return err
		}
		if l.holder != c {
			return failf(statusNotOwner, "lock not held by this connection")
		}
		c.removeHeld(l)
		l.release()
	case opLockLocked:
		if err := a.done(); err != nil {
			return err
		}
		w.bool(l.holder != nil)
	case opLockFence:
		if err := a.done(); err != nil {
			return err
		}
		if l.holder != c {
			return failf(statusNotOwner, "lock not held by this connection")
		}
		w.uint(l.fence)
	default:
		return unsupported(r.op, kindLock)
	}
	return nil
}

// release hands the lock to the first waiter that can receive the grant,
// if any. A grant to a client that is gone would be released again, as a
// dead holder's, and tell the next holder ErrOwnerDead for nothing.
func (l *lockObj) release() {
	l.holder = nil
	if next := takeLive(&l.waiters); next != nil {
		next.finish(l.grant(next.c), nil)
	}
}

// holderGone releases the lock held by a connection that ended.
func (l *lockObj) holderGone(c *sconn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == c {
		l.died = true
		l.release()
	}
}

func (l *lockObj) removed()                    { endAll(&l.mu, &l.waiters) }
func (l *lockObj) abandon(w *waiter, s status) { abandonIn(&l.mu, w, s, &l.waiters) }

// queueObj is a FIFO queue, bounded when capacity > 0.
type queueObj struct {
	mu       sync.Mutex
	capacity int
	items    [][]byte
	head     int
	getters  []*waiter
	putters  []*waiter
}

func (q *queueObj) kind() kind { return kindQueue }

func (q *queueObj) len() int { return len(q.items) - q.head }

func (q *queueObj) push(v []byte) { q.items = append(q.items, v) }

func (q *queueObj) pop() []byte {
	v := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 64 && q.head > len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v
}

func (q *queueObj) handle(c *sconn, r request, w *frameWriter) error {
	a := args{it: r.args}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch r.op {
	case opQueuePut:
		val, timeout := a.value(), a.timeout()
		if err := a.done(); err != nil {
			return err
		}
		// Hand the value to the longest-waiting getter that can
		// receive it, so that it is not lost with a dead one.
		if g := takeLive(&q.getters); g != nil {
			v := bytes.Clone(val)
			g.finish(statusOK, func(w *frameWriter) { w.item(v) })
			return nil
		}
		if q.capacity == 0 || q.len() < q.capacity {
			q.push(bytes.Clone(val))
			return nil
		}
		return parkIn(q, &q.putters, c, r.id, timeout, bytes.Clone(val), failf(statusFull, "queue is full"))
	case opQueueGet:
		timeout := a.timeout()
		if err := a.done(); err != nil {
			return err
		}
		if q.len() > 0 {
			w.item(q.pop())
			// A dead putter's value is not stored, as when its
			// connection's end is noticed first.
			if p := takeLive(&q.putters); p != nil {
				q.push(p.val)
				p.finish(statusOK, nil)
			}
			return nil
		}
		return parkIn(q, &q.getters, c, r.id, timeout, nil, failf(statusEmpty, "queue is empty"))
	case opQueueLen:
		if err := a.done(); err != nil {
			return err
		}
		w.uint(uint64(q.len()))
	default:
		return unsupported(r.op, kindQueue)
	}
	return nil
}

func (q *queueObj) removed()                    { endAll(&q.mu, &q.getters, &q.putters) }
func (q *queueObj) abandon(w *waiter, s status) { abandonIn(&q.mu, w, s, &q.getters, &q.putters) }

// eventObj is a flag that waiters wait to see set.
type eventObj struct {
	mu      sync.Mutex
	set     bool
	waiters []*waiter
}

func (e *eventObj) kind() kind { return kindEvent }

func (e *eventObj) handle(c *sconn, r request, w *frameWriter) error {
	a := args{it: r.args}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch r.op {
	case opEventSet:
		if err := a.done(); err != nil {
			return err
		}
		e.set = true
		for _, wt := range e.waiters {
			s := statusClosed
			if wt.c.deliverable() {
				s = statusOK
			}
			wt.finish(s, nil)
		}
		clear(e.waiters)
		e.waiters = e.waiters[:0]
	case opEventClear:
		if err := a.done(); err != nil {
			return err
		}
		e.set = false
	case opEventIsSet:
		if err := a.done(); err != nil {
			return err
		}
		w.bool(e.set)
	case opEventWait:
		timeout := a.timeout()
		if err := a.done(); err != nil {
			return err
		}
		if e.set {
			return nil
		}
		return parkIn(e, &e.waiters, c, r.id, timeout, nil, failf(statusTimeout, "event is not set"))
	default:
		return unsupported(r.op, kindEvent)
	}
	return nil
}

func (e *eventObj) removed()                    { endAll(&e.mu, &e.waiters) }
func (e *eventObj) abandon(w *waiter, s status) { abandonIn(&e.mu, w, s, &e.waiters) }
