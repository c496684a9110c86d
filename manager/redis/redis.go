// Package redis lets package manager's proxies run against Redis (or
// Valkey): importing it registers the client that manager.Dial uses for
// the "redis" network,
//
//	import _ "github.com/shmkit/shmkit/manager/redis"
//
//	c, err := manager.Dial(ctx, "redis", "redis://:secret@host:6379/0", nil)
//	counts, err := manager.OpenDict[string, int](ctx, c, "counts")
//
// and keeps the Redis client library (github.com/redis/rueidis) out of
// programs that do not. docs/redis.md specifies how objects map onto
// Redis keys and what each operation guarantees.
//
// The library pipelines the commands of concurrent goroutines on shared
// connections, which is what makes many goroutines of one Client fast;
// blocking commands and subscriptions get connections of their own.
package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/shmkit/shmkit/manager/internal/rediscmd"
)

func init() { rediscmd.Register(dial) }

type conn struct {
	c         rueidis.Client
	scripts   map[string]string // Options.Scripts by SHA-1, hex
	closeOnce sync.Once
}

func dial(ctx context.Context, url string, o rediscmd.Options) (rediscmd.Conn, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	// RESP2, whose replies are the few types rediscmd.Conn promises; no
	// client-side cache, which would serve reads without a round trip
	// and so out of order with other clients' writes.
	opt.AlwaysRESP2, opt.DisableCache = true, true
	opt.ForceSingleClient = !o.Cluster
	// A command on a broken connection fails (ErrClosed, to the caller)
	// rather than being retried until the server is back; the next
	// command reconnects.
	opt.DisableRetry = true
	// AlwaysPipelining stays off: it would find a connection the server
	// closed before a command is sent on it, but it puts a lone caller's
	// commands through the pipeline goroutines, which halves the rate of
	// one goroutine with a context that cannot be cancelled. So after a
	// restart, each idle pooled connection fails its next call once.
	if o.TLSConfig != nil {
		opt.TLSConfig = o.TLSConfig
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		_, err = reply(nil, err)
		return nil, err
	}
	cn := &conn{c: c, scripts: make(map[string]string, len(o.Scripts))}
	for _, src := range o.Scripts {
		sum := sha1.Sum([]byte(src))
		cn.scripts[hex.EncodeToString(sum[:])] = src
	}
	if _, err := cn.Do(ctx, "PING"); err != nil {
		c.Close()
		return nil, err
	}
	return cn, nil
}

// command builds args as a command, marking its keys so that a cluster
// client routes it to their slot: the keys of EVAL and EVALSHA follow
// their count; LMOVE and BLMOVE name two; other commands with arguments
// name one, the first (every command the engine sends on an object
// does), save the few that name none.
func (c *conn) command(args []string) rueidis.Completed {
	name := args[0]
	keys := 0
	first := 1
	switch name {
	case "PING", "SCRIPT":
	case "EVAL", "EVALSHA":
		if len(args) > 2 {
			keys, _ = strconv.Atoi(args[2])
			first = 3
		}
	case "LMOVE", "BLMOVE":
		keys = 2
	default:
		keys = 1
	}
	first = min(first, len(args))
	keys = max(0, min(keys, len(args)-first))
	b := c.c.B().Arbitrary(name).Args(args[1:first]...)
	if keys > 0 {
		b = b.Keys(args[first : first+keys]...)
	}
	b = b.Args(args[first+keys:]...)
	if name == "BLMOVE" {
		return b.Blocking()
	}
	return b.Build()
}

// reply converts a rueidis reply and error to rediscmd's forms.
func reply(m *rueidis.RedisMessage, err error) (any, error) {
	if err == nil && m != nil {
		var v any
		if v, err = m.ToAny(); err == nil {
			return nested(v), nil
		}
	}
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		// The library drops the "ERR " of generic errors; the engine
		// reads the code, so put it back.
		msg := re.Error()
		if code, _, _ := strings.Cut(msg, " "); code == "" || strings.ToUpper(code) != code {
			msg = "ERR " + msg
		}
		return nil, rediscmd.Error(msg)
	}
	return nil, err
}

// nested turns the error replies that ToAny leaves in arrays (a nil
// element among them) into nil: the engine's scripts never answer arrays
// holding errors, and a nil element is what a missing value is.
func nested(v any) any {
	if vs, ok := v.([]any); ok {
		for i, e := range vs {
			if _, isErr := e.(error); isErr {
				vs[i] = nil
			} else {
				vs[i] = nested(e)
			}
		}
	}
	return v
}

// Do runs a command. An EVALSHA of a script the server does not have
// (it restarted, or its cache was flushed) is run again as EVAL, which
// caches it.
func (c *conn) Do(ctx context.Context, args ...string) (any, error) {
	m, err := c.c.Do(ctx, c.command(args)).ToMessage()
	v, err := reply(&m, err)
	if src, ok := c.evalOf(args, err); ok {
		eval := append([]string{"EVAL", src}, args[2:]...)
		m, err = c.c.Do(ctx, c.command(eval)).ToMessage()
		return reply(&m, err)
	}
	return v, err
}

// evalOf reports whether args, an EVALSHA that got err, should be run
// again as EVAL, and with what source.
func (c *conn) evalOf(args []string, err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var re rediscmd.Error
	if !errors.As(err, &re) || !strings.HasPrefix(string(re), "NOSCRIPT") || len(args) < 2 || args[0] != "EVALSHA" {
		return "", false
	}
	src, ok := c.scripts[args[1]]
	return src, ok
}

// Pipeline runs cmds in order. Scripts run as EVAL here, not EVALSHA: a
// NOSCRIPT reply in the middle of a pipeline could only be retried after
// the commands that followed it, out of order.
func (c *conn) Pipeline(ctx context.Context, cmds [][]string) ([]any, []error, error) {
	built := make(rueidis.Commands, len(cmds))
	for i, args := range cmds {
		if len(args) > 1 && args[0] == "EVALSHA" {
			if src, ok := c.scripts[args[1]]; ok {
				args = append([]string{"EVAL", src}, args[2:]...)
			}
		}
		built[i] = c.command(args)
	}
	results := c.c.DoMulti(ctx, built...)
	replies, errs := make([]any, len(cmds)), make([]error, len(cmds))
	var failed error
	for i, r := range results {
		m, err := r.ToMessage()
		replies[i], errs[i] = reply(&m, err)
		var re rediscmd.Error
		if errs[i] != nil && !errors.As(errs[i], &re) && failed == nil {
			failed = errs[i]
		}
	}
	return replies, errs, failed
}

// Subscribe subscribes on a connection of its own and returns once Redis
// has confirmed the subscription, so that a message published after it
// returns is seen.
func (c *conn) Subscribe(ctx context.Context, channel string) (rediscmd.Subscription, error) {
	dc, release := c.c.Dedicate()
	s := &subscription{c: make(chan struct{}, 1)}
	// Put back unsubscribed, for the connection to serve others; or
	// closed, if the subscription broke: over RESP2 a connection keeps
	// its subscriptions on a second connection of its own, which it
	// would not dial again.
	s.cancel = func() {
		if s.Err() != nil {
			dc.Close()
			return
		}
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		dc.Do(ctx, dc.B().Unsubscribe().Channel(channel).Build())
		dc.SetPubSubHooks(rueidis.PubSubHooks{})
		release()
	}
	confirmed := make(chan struct{})
	var once sync.Once
	ended := dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(rueidis.PubSubMessage) { s.notify() },
		OnSubscription: func(sub rueidis.PubSubSubscription) {
			if sub.Kind == "subscribe" {
				once.Do(func() { close(confirmed) })
			}
		},
	})
	if err := dc.Do(ctx, dc.B().Subscribe().Channel(channel).Build()).Error(); err != nil {
		dc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", channel, err)
	}
	select {
	case <-confirmed:
		// ended closes when Close replaces the hooks, or gets the
		// connection's error first.
		go func() {
			err, ok := <-ended
			if !ok {
				err = errors.New("subscription ended")
			}
			s.err.Store(&err)
			s.notify()
		}()
		return s, nil
	case err := <-ended:
		dc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", channel, errors.Join(err, errors.New("subscription ended")))
	case <-ctx.Done():
		s.cancel()
		return nil, ctx.Err()
	}
}

func (c *conn) Close() error {
	c.closeOnce.Do(c.c.Close)
	return nil
}

type subscription struct {
	c      chan struct{}
	err    atomic.Pointer[error] // set when the connection ended
	cancel func()
	once   sync.Once
}

func (s *subscription) C() <-chan struct{} { return s.c }

// notify sends on c unless a value is already waiting there.
func (s *subscription) notify() {
	select {
	case s.c <- struct{}{}:
	default:
	}
}

func (s *subscription) Err() error {
	if err := s.err.Load(); err != nil {
		return *err
	}
	return nil
}

// Close ends the subscription.
func (s *subscription) Close() error {
	s.once.Do(s.cancel)
	return nil
}
