package manager

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shmkit/shmkit/manager/internal/rediscmd"
)

// redisEngine runs a Client's operations on Redis instead of a shmkit
// server: each operation becomes a command or a script on the object's
// keys (docs/redis.md), and its reply becomes the results a server would
// have sent, so that the proxies cannot tell the engines apart. Stored
// values come back in their Redis form and are decoded by the proxy's
// type (results.native).
type redisEngine struct {
	conn   rediscmd.Conn
	prefix string
	token  string        // this client's identity: owner of its locks, consumer of queues
	lease  time.Duration // of its locks and of the items it takes from queues

	mu     sync.Mutex
	held   map[string]bool // keys of the locks this client holds
	queues map[string]bool // keys of the consumer hashes of queues it takes from
	stop   chan struct{}   // closed by close
	done   chan struct{}   // closed when the renewer has returned; nil until it starts
}

// DefaultLease is the lease of a Redis engine's locks and taken items
// unless Options.Lease says otherwise.
const DefaultLease = 5 * time.Second

// DefaultKeyPrefix begins every Redis key of a Redis engine unless
// Options.KeyPrefix says otherwise.
const DefaultKeyPrefix = "shmkit:"

// isRedis reports whether network names the Redis engine.
func isRedis(network string) bool { return network == "redis" || network == "rediss" }

// redisURL turns a Dial address into a URL for the dialer: a URL is kept,
// a path is a Unix socket, anything else host:port.
func redisURL(network, address string, opts *Options) string {
	switch {
	case strings.Contains(address, "://"):
		return address
	case strings.HasPrefix(address, "/"):
		return "unix://" + address
	case network == "rediss" || opts.TLSConfig != nil:
		return "rediss://" + address
	}
	return "redis://" + address
}

func dialRedis(ctx context.Context, network, address string, opts *Options) (*redisEngine, error) {
	scripts := make([]string, len(redisScripts))
	for i, s := range redisScripts {
		scripts[i] = s.src
	}
	conn, err := rediscmd.Dial(ctx, redisURL(network, address, opts), rediscmd.Options{
		TLSConfig: opts.TLSConfig, Cluster: opts.RedisCluster, Scripts: scripts})
	if err != nil {
		if errors.Is(err, rediscmd.ErrNoDialer) {
			return nil, err // a program error, not a connection's
		}
		var re rediscmd.Error
		if errors.As(err, &re) {
			// Refused logins: a wrong password or none, or a password
			// given to a server without one ("AUTH <password> called
			// without any password configured").
			if code, _, _ := strings.Cut(string(re), " "); code == "WRONGPASS" || code == "NOAUTH" ||
				strings.Contains(string(re), "without any password") {
				return nil, fmt.Errorf("%w: redis: %s", ErrAuth, re)
			}
			return nil, redisErr(re)
		}
		return nil, fmt.Errorf("%w: redis: %w", ErrClosed, err)
	}
	var id [16]byte
	rand.Read(id[:])
	e := &redisEngine{conn: conn, prefix: opts.KeyPrefix, token: hex.EncodeToString(id[:]), lease: opts.Lease,
		held: map[string]bool{}, queues: map[string]bool{}, stop: make(chan struct{})}
	if e.prefix == "" {
		e.prefix = DefaultKeyPrefix
	}
	if e.lease <= 0 {
		e.lease = DefaultLease
	}
	return e, nil
}

// close stops the renewals (the locks this client holds are released by
// their leases' end, as a dead client's are, unless released first) and
// closes the connections.
func (e *redisEngine) close() error {
	e.mu.Lock()
	select {
	case <-e.stop:
		e.mu.Unlock()
		return nil
	default:
	}
	close(e.stop)
	done := e.done
	e.mu.Unlock()
	if done != nil {
		<-done
	}
	return e.conn.Close()
}

// key returns the Redis key of the object named name: the prefix and the
// name as a hash tag, so that a cluster keeps all of an object's keys in
// one slot; suffix, if any, names one of its other keys.
func (e *redisEngine) key(name, suffix string) string {
	k := e.prefix + "{" + name + "}"
	if suffix != "" {
		k += ":" + suffix
	}
	return k
}

// eval runs s.
func (e *redisEngine) eval(ctx context.Context, s *redisScript, keys []string, args ...string) (any, error) {
	// The Conn runs it as EVAL where the server lacks it (rediscmd.Options.Scripts).
	return e.conn.Do(ctx, evalCmd(s, keys, args...)...)
}

func evalCmd(s *redisScript, keys []string, args ...string) []string {
	cmd := make([]string, 0, 3+len(keys)+len(args))
	cmd = append(cmd, "EVALSHA", s.sha, strconv.Itoa(len(keys)))
	cmd = append(cmd, keys...)
	return append(cmd, args...)
}

// itoa formats an integer argument.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// redisStatusErr maps a Redis error reply to the status a server would
// have answered.
func redisStatusErr(re rediscmd.Error) *serverError {
	msg := string(re)
	code, text, _ := strings.Cut(msg, " ")
	switch code {
	case "WRONGTYPE":
		return failf(statusKind, "the name is taken by a Redis key of another type")
	case "TYPE":
		return failf(statusType, text)
	case "INDEX":
		return failf(statusIndex, text)
	case "NOTOWNER":
		return failf(statusNotOwner, text)
	case "NOAUTH", "WRONGPASS", "NOPERM":
		return failf(statusBadRequest, "redis: "+msg)
	case "ERR":
		switch {
		case strings.Contains(text, "index out of range"), strings.Contains(text, "no such key"):
			return failf(statusIndex, text)
		case strings.Contains(text, "not an integer"), strings.Contains(text, "not a valid float"),
			strings.Contains(text, "not a float"), strings.Contains(text, "overflow"),
			strings.Contains(text, "NaN or Infinity"):
			return failf(statusType, text)
		}
	}
	return failf(statusInternal, "redis: "+msg)
}

// A redisOp is an operation translated into one command, whose reply
// reply turns into results; or, for an operation that takes more than a
// command (blocking ones, a queue's Get), into run.
type redisOp struct {
	cmd   []string
	reply func(v any, w *frameWriter) error
	run   func(ctx context.Context, w *frameWriter) error
}

// do runs operation o on r's object with the encoded arguments args, as
// a server would, and completes cl with the results (see settle).
func (e *redisEngine) do(ctx context.Context, cl *call, r *ref, o op, args items) (*call, error) {
	rop, err := e.plan(r, o, args)
	cl.native = true
	w := &cl.body
	if err == nil {
		if rop.run != nil {
			err = rop.run(ctx, w)
		} else {
			var v any
			if v, err = e.conn.Do(ctx, rop.cmd...); err == nil {
				err = rop.reply(v, w)
			}
		}
	}
	return e.settle(cl, err)
}

// settle completes cl with the results in cl.body or the failure err: a
// Redis error reply or a handler's error becomes a status, as a server's
// reply would carry it; a connection's error is ErrClosed, and cl is
// recycled.
func (e *redisEngine) settle(cl *call, err error) (*call, error) {
	if err == nil {
		cl.resp = response{status: statusOK, results: items(cl.body.buf)}
		return cl, nil
	}
	err = redisErr(err)
	var re *RemoteError
	switch {
	case err == nil:
		cl.resp = response{status: statusOK, results: items(cl.body.buf)}
	case errors.As(err, &re):
		cl.body.buf = cl.body.buf[:0]
		cl.body.text(re.Message)
		cl.resp = response{status: re.status, results: items(cl.body.buf)}
	default:
		cl.recycle()
		return nil, err
	}
	return cl, nil
}

// redisErr converts an error of a Redis command or of the engine: a Redis
// error reply or a handler's error becomes a RemoteError, as a server's
// reply would; a connection's error is ErrClosed.
func redisErr(err error) error {
	if err == nil {
		return nil
	}
	var (
		re rediscmd.Error
		se *serverError
	)
	if errors.As(err, &re) {
		err = redisStatusErr(re)
	}
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return &RemoteError{status: se.status, Message: se.msg}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrClosed):
		return err
	}
	return fmt.Errorf("%w: redis: %v", ErrClosed, err)
}

// attach checks that the name is free or holds a Redis key of the kind's
// type, and records a queue's capacity. Redis cannot tell a dict from a
// namespace (both hashes), nor a value from an event (both strings).
func (e *redisEngine) attach(ctx context.Context, k kind, name string, capacity int64) error {
	typ, err := e.conn.Do(ctx, "TYPE", e.key(name, ""))
	if err != nil {
		return redisErr(err)
	}
	want := map[kind]string{kindDict: "hash", kindNamespace: "hash", kindLock: "hash", kindList: "list",
		kindQueue: "list", kindValue: "string", kindEvent: "string"}[k]
	if t, _ := typ.(string); t != "none" && t != want {
		return &RemoteError{status: statusKind, Message: fmt.Sprintf("%q is a Redis %s, not %s", name, t, k.withArticle())}
	}
	if k == kindQueue && capacity > 0 {
		if _, err := e.conn.Do(ctx, "SET", e.key(name, "capacity"), itoa(capacity), "NX"); err != nil {
			return redisErr(err)
		}
	}
	return nil
}

// remove deletes every key of the object named name.
func (e *redisEngine) remove(ctx context.Context, name string) (bool, error) {
	v, err := e.eval(ctx, removeObject, []string{e.key(name, ""), e.key(name, "capacity"), e.key(name, "consumers")},
		e.key(name, "pending:"))
	if err != nil {
		return false, redisErr(err)
	}
	n, _ := v.(int64)
	return n > 0, nil
}

// version is what Update compares: derived from the stored bytes (the
// first 60 bits of their SHA-1, plus one so that 0 stays "absent"), as
// setIfBody computes it on the server.
func version(s string) uint64 {
	sum := sha1.Sum([]byte(s))
	return binary.BigEndian.Uint64(sum[:])>>4 + 1
}

func versionHex(v uint64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%015x", v-1)
}

// bulk returns a reply that must be a bulk string (or nil).
func bulk(v any) (string, bool, error) {
	switch s := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return s, true, nil
	}
	return "", false, fmt.Errorf("%w: unexpected Redis reply %T", ErrProtocol, v)
}

func integer(v any) (int64, error) {
	if n, ok := v.(int64); ok {
		return n, nil
	}
	return 0, fmt.Errorf("%w: unexpected Redis reply %T", ErrProtocol, v)
}

// Replies.

func rawReply(missing *serverError) func(v any, w *frameWriter) error {
	return func(v any, w *frameWriter) error {
		s, ok, err := bulk(v)
		switch {
		case err != nil:
			return err
		case !ok && missing != nil:
			return missing
		case !ok:
			w.buf = append(w.buf, 0, 0, 0, 1, 0xf6) // null: the zero value
		default:
			w.raw(s)
		}
		return nil
	}
}

func intReply(v any, w *frameWriter) error {
	n, err := integer(v)
	w.int(n)
	return err
}

func boolReply(v any, w *frameWriter) error {
	n, err := integer(v)
	w.bool(n != 0)
	return err
}

func uintReply(v any, w *frameWriter) error {
	n, err := integer(v)
	if err == nil && n < 0 {
		err = fmt.Errorf("%w: negative Redis reply %d", ErrProtocol, n)
	}
	w.uint(uint64(n))
	return err
}

func noReply(any, *frameWriter) error { return nil }

// versionReply answers a store with the version of the value stored.
func versionReply(val string) func(any, *frameWriter) error {
	return func(_ any, w *frameWriter) error { w.uint(version(val)); return nil }
}

func rawsReply(v any, w *frameWriter) error {
	vs, ok := v.([]any)
	if !ok && v != nil {
		return fmt.Errorf("%w: unexpected Redis reply %T", ErrProtocol, v)
	}
	for _, x := range vs {
		s, ok, err := bulk(x)
		if err != nil || !ok {
			return fmt.Errorf("%w: unexpected Redis reply in an array", ErrProtocol)
		}
		w.raw(s)
	}
	return nil
}

var (
	errNoKey = failf(statusNoKey, "no such key")
	errEmpty = failf(statusIndex, "list index out of range")

	// The replies of a bulk string, made once rather than per operation.
	rawOrNull  = rawReply(nil)
	rawOrNoKey = rawReply(errNoKey)
	rawOrEmpty = rawReply(errEmpty)
)

// incrReply answers an integer increment with its result.
func incrReply(v any, w *frameWriter) error {
	n, err := integer(v)
	w.raw(strconv.FormatInt(n, 10))
	return err
}

// isZeroItem reports whether the CBOR item b is a zero value: what a
// Value never stored holds, for CompareAndSwap.
func isZeroItem(b []byte) bool {
	var v any
	if err := decMode.Unmarshal(b, &v); err != nil {
		return false
	}
	return isZero(v)
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case uint64:
		return x == 0
	case int64:
		return x == 0
	case float64:
		return x == 0 && !math.Signbit(x)
	case string:
		return x == ""
	case []byte:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case map[any]any:
		for _, e := range x {
			if !isZero(e) {
				return false
			}
		}
		return true
	}
	return false
}

// addOp returns the operation of an Add of the CBOR number delta to a
// hash field (hash) or a string key, for a proxy of number type t.
// Integers of int64 and untyped ones add with HINCRBY or INCRBY, floats
// with HINCRBYFLOAT or INCRBYFLOAT: exact, and refused by Redis without
// effect on overflow. Other types (narrow integers, uint64, float32) add
// as a server adds them (addNumbers, with its range checks), through a
// conditional store retried until no other client changed the entry in
// between.
func (e *redisEngine) addOp(key string, hash bool, field string, delta []byte, t numType) (redisOp, error) {
	d, err := decodeNumber(delta)
	if err != nil {
		return redisOp{}, err
	}
	// cmd is the command named hname on a dict's entry, name on a value.
	cmd := func(hname, name string, arg string) []string {
		if hash {
			return []string{hname, key, field, arg}
		}
		return []string{name, key, arg}
	}
	switch {
	case d.isFloat && t == numAny:
		return redisOp{cmd: cmd("HINCRBYFLOAT", "INCRBYFLOAT", d.String()), reply: rawOrNull}, nil
	case !d.isFloat && (t == numAny || t == numInt64) && d.n <= math.MaxInt64:
		return redisOp{cmd: cmd("HINCRBY", "INCRBY", d.String()), reply: incrReply}, nil
	}
	get, setIf := []string{"GET", key}, strSetIf
	if hash {
		get, setIf = []string{"HGET", key, field}, hashSetIf
	} else {
		field = ""
	}
	return redisOp{run: func(ctx context.Context, w *frameWriter) error {
		for {
			v, err := e.conn.Do(ctx, get...)
			if err != nil {
				return err
			}
			cur, ok, err := bulk(v)
			if err != nil {
				return err
			}
			var old []byte
			ver := uint64(0)
			if ok {
				if old, err = redisNumber(cur); err != nil {
					return err
				}
				ver = version(cur)
			}
			sum, err := addNumbers(old, delta, t)
			if err != nil {
				return err
			}
			val := toRedis(sum)
			v, err = e.eval(ctx, setIf, []string{key}, field, val, versionHex(ver))
			if err != nil {
				return err
			}
			if n, _ := v.(int64); n == 1 {
				w.raw(val)
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}}, nil
}

// redisNumber returns the CBOR item of a number stored in its Redis form.
func redisNumber(s string) ([]byte, error) {
	if strings.HasPrefix(s, cborMagic) {
		return []byte(s[len(cborMagic):]), nil
	}
	var w frameWriter
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		w.int(n)
	} else if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		w.uint(u)
	} else if f, err := strconv.ParseFloat(s, 64); err == nil {
		if err := w.value(f); err != nil {
			return nil, err
		}
	} else {
		return nil, errNotNumber
	}
	return w.buf[itemLenSize:], nil
}

// plan translates operation o with arguments args on r's object.
func (e *redisEngine) plan(r *ref, o op, in items) (redisOp, error) {
	a := redisArgs{args{it: in}}
	name, key := r.name, r.rkey
	var rop redisOp
	switch o {
	// Dicts and namespaces: a hash.
	case opMapGet:
		f := a.redis()
		rop = redisOp{cmd: []string{"HGET", key, f}, reply: rawOrNoKey}
	case opMapGetVersion:
		f := a.redis()
		rop = redisOp{cmd: []string{"HGET", key, f}, reply: func(v any, w *frameWriter) error {
			s, ok, err := bulk(v)
			if !ok || err != nil {
				w.uint(0)
				return err
			}
			w.uint(version(s))
			w.raw(s)
			return nil
		}}
	case opMapSet:
		f, val := a.redis(), a.redis()
		rop = redisOp{cmd: []string{"HSET", key, f, val}, reply: versionReply(val)}
	case opMapSetIf:
		f, val, ver := a.redis(), a.redis(), a.uint()
		rop = redisOp{cmd: evalCmd(hashSetIf, []string{key}, f, val, versionHex(ver)), reply: setIfReply(val)}
	case opMapDelete:
		rop = redisOp{cmd: []string{"HDEL", key, a.redis()}, reply: boolReply}
	case opMapLen:
		rop = redisOp{cmd: []string{"HLEN", key}, reply: func(v any, w *frameWriter) error {
			n, err := integer(v)
			w.uint(uint64(n))
			return err
		}}
	case opMapKeys:
		rop = redisOp{cmd: []string{"HKEYS", key}, reply: rawsReply}
	case opMapItems:
		rop = redisOp{cmd: []string{"HGETALL", key}, reply: rawsReply}
	case opMapClear, opListClear:
		rop = redisOp{cmd: []string{"DEL", key}, reply: noReply}
	case opMapSetDefault:
		f, val := a.redis(), a.redis()
		rop = redisOp{cmd: evalCmd(hashSetDefault, []string{key}, f, val), reply: rawOrNull}
	case opMapPop:
		rop = redisOp{cmd: evalCmd(hashPop, []string{key}, a.redis()), reply: rawOrNoKey}
	case opMapUpdate:
		cmd := []string{"HSET", key}
		for _, b := range a.rest() {
			cmd = append(cmd, toRedis(b))
		}
		if len(cmd)%2 != 0 {
			a.fail("a key without a value")
		}
		if len(cmd) == 2 {
			cmd = []string{"EXISTS", key} // nothing to store
		}
		rop = redisOp{cmd: cmd, reply: noReply}
	case opMapAdd:
		f, delta, t := a.redis(), a.value(), a.numType()
		if a.err == nil {
			var err error
			if rop, err = e.addOp(key, true, f, delta, t); err != nil {
				return rop, err
			}
		}
	case opMapCAS:
		f, old, val := a.redis(), a.redis(), a.redis()
		rop = redisOp{cmd: evalCmd(hashCAS, []string{key}, f, old, val, "0"), reply: boolReply}

	// Values: a string.
	case opValueLoad:
		rop = redisOp{cmd: []string{"GET", key}, reply: func(v any, w *frameWriter) error {
			s, ok, err := bulk(v)
			if err != nil {
				return err
			}
			if !ok {
				w.uint(0)
				w.buf = append(w.buf, 0, 0, 0, 1, 0xf6)
				return nil
			}
			w.uint(version(s))
			w.raw(s)
			return nil
		}}
	case opValueStore:
		val := a.redis()
		rop = redisOp{cmd: []string{"SET", key, val}, reply: versionReply(val)}
	case opValueSetIf:
		val, ver := a.redis(), a.uint()
		rop = redisOp{cmd: evalCmd(strSetIf, []string{key}, "", val, versionHex(ver)), reply: setIfReply(val)}
	case opValueSwap:
		rop = redisOp{cmd: []string{"SET", key, a.redis(), "GET"}, reply: rawOrNull}
	case opValueCAS:
		old := a.value()
		zero := "0"
		if a.err == nil && isZeroItem(old) {
			zero = "1"
		}
		val := a.redis()
		rop = redisOp{cmd: evalCmd(stringCAS, []string{key}, "", toRedis(old), val, zero), reply: boolReply}
	case opValueAdd:
		delta, t := a.value(), a.numType()
		if a.err == nil {
			var err error
			if rop, err = e.addOp(key, false, "", delta, t); err != nil {
				return rop, err
			}
		}

	// Lists.
	case opListAppend:
		rop = redisOp{cmd: []string{"RPUSH", key, a.redis()}, reply: lenReply}
	case opListExtend:
		cmd := []string{"RPUSH", key}
		for _, b := range a.rest() {
			cmd = append(cmd, toRedis(b))
		}
		if len(cmd) == 2 {
			cmd = []string{"LLEN", key}
		}
		rop = redisOp{cmd: cmd, reply: lenReply}
	case opListGet:
		rop = redisOp{cmd: []string{"LINDEX", key, itoa(a.int())}, reply: rawOrEmpty}
	case opListSet:
		i, val := a.int(), a.redis()
		rop = redisOp{cmd: []string{"LSET", key, itoa(i), val}, reply: noReply}
	case opListInsert:
		i, val := a.int(), a.redis()
		rop = redisOp{cmd: evalCmd(listInsert, []string{key}, itoa(i), val), reply: noReply}
	case opListPop:
		rop = redisOp{cmd: evalCmd(listPop, []string{key}, itoa(a.int())), reply: rawOrEmpty}
	case opListRemove:
		rop = redisOp{cmd: []string{"LREM", key, "1", a.redis()}, reply: boolReply}
	case opListLen:
		rop = redisOp{cmd: []string{"LLEN", key}, reply: lenReply}
	case opListSlice:
		i, j := a.int(), a.int()
		rop = redisOp{cmd: evalCmd(listSlice, []string{key}, itoa(i), itoa(j)), reply: rawsReply}
	case opListIndex:
		rop = redisOp{cmd: []string{"LPOS", key, a.redis()}, reply: func(v any, w *frameWriter) error {
			if v == nil {
				w.int(-1)
				return nil
			}
			return intReply(v, w)
		}}

	// Locks, queues and events.
	case opLockAcquire:
		timeout := a.timeout()
		rop = redisOp{run: func(ctx context.Context, w *frameWriter) error { return e.acquire(ctx, name, timeout) }}
	case opLockRelease:
		rop = redisOp{run: func(ctx context.Context, w *frameWriter) error { return e.release(ctx, name) }}
	case opLockLocked:
		rop = redisOp{cmd: evalCmd(lockLocked, []string{key}), reply: boolReply}
	case opLockFence:
		rop = redisOp{cmd: evalCmd(lockFence, []string{key}, e.token), reply: uintReply}
	case opQueuePut:
		val, timeout := a.redis(), a.timeout()
		rop = redisOp{run: func(ctx context.Context, w *frameWriter) error { return e.put(ctx, name, val, timeout) }}
	case opQueueGet:
		timeout := a.timeout()
		rop = redisOp{run: func(ctx context.Context, w *frameWriter) error { return e.take(ctx, name, timeout, w) }}
	case opQueueLen:
		rop = redisOp{cmd: []string{"LLEN", key}, reply: lenReply}
	case opEventSet:
		rop = redisOp{cmd: evalCmd(eventSet, []string{key}, e.key(name, "wake")), reply: noReply}
	case opEventClear:
		rop = redisOp{cmd: []string{"DEL", key}, reply: noReply}
	case opEventIsSet:
		rop = redisOp{cmd: []string{"EXISTS", key}, reply: boolReply}
	case opEventWait:
		timeout := a.timeout()
		rop = redisOp{run: func(ctx context.Context, w *frameWriter) error { return e.waitEvent(ctx, name, timeout) }}
	default:
		return redisOp{}, failf(statusBadRequest, fmt.Sprintf("operation %d is not supported on Redis", o))
	}
	if err := a.done(); err != nil {
		return redisOp{}, err
	}
	return rop, nil
}

// redisArgs reads arguments in their Redis form.
type redisArgs struct{ args }

func (a *redisArgs) redis() string {
	b := a.value()
	if a.err != nil {
		return ""
	}
	return toRedis(b)
}

func lenReply(v any, w *frameWriter) error {
	n, err := integer(v)
	w.uint(uint64(n))
	return err
}

func setIfReply(val string) func(any, *frameWriter) error {
	return func(v any, w *frameWriter) error {
		n, err := integer(v)
		w.bool(n == 1)
		w.uint(version(val))
		return err
	}
}

// ignore drops a reply.
func ignore(_ any, err error) error { return err }

// redisDo runs operation o, with the arguments build appends, on r's
// object through the client's Redis engine. Commands are not abandoned
// when ctx ends once sent (the client library waits for their replies),
// so that a Pop's value or a lock granted is not lost.
func (r *ref) redisDo(ctx context.Context, o op, build func(*frameWriter) error) (*call, error) {
	e, err := r.c.redisEngine()
	if err != nil {
		return nil, err
	}
	cl := newLocalCall()
	w := &cl.req
	w.beginRequest(0, o, 0)
	if build != nil {
		if err := build(w); err != nil {
			cl.recycle()
			return nil, fmt.Errorf("%w: %w", ErrType, err)
		}
	}
	if n := w.end(); n > r.c.opts.maxFrame() {
		cl.recycle()
		return nil, fmt.Errorf("%w: request of %d bytes, limit %d", ErrTooLarge, n, r.c.opts.maxFrame())
	}
	return e.do(ctx, cl, r, o, items(w.buf[frameLenSize+requestHeaderLen:]))
}

// attachRedis checks the object's name on Redis, with the attach modes of
// a server.
func (r *ref) attachRedis(ctx context.Context, mode uint64) error {
	e, err := r.c.redisEngine()
	if err != nil {
		return err
	}
	if mode != attachOpenOrCreate {
		n, err := e.conn.Do(ctx, "EXISTS", e.key(r.name, ""))
		if err != nil {
			return redisErr(err)
		}
		switch exists := n == int64(1); {
		case mode == attachCreate && exists:
			return &RemoteError{status: statusExists, Message: "name taken"}
		case mode == attachOpen && !exists:
			return &RemoteError{status: statusNotFound, Message: "no such object"}
		}
	}
	return e.attach(ctx, r.k, r.name, r.capacity)
}
