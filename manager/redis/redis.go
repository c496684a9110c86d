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
	// Every command through the pipeline goroutines, which notice a
	// connection the server closed before a command is sent on it:
	// otherwise each pooled connection fails one call after a restart.
	opt.AlwaysPipelining = true
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
func (c *conn) command(args []any) rueidis.Completed {
	strs := make([]string, len(args))
	for i, a := range args {
		strs[i] = arg(a)
	}
	name := strs[0]
	keys := 0
	first := 1
	switch name {
	case "PING", "SCRIPT":
	case "EVAL", "EVALSHA":
		if len(strs) > 2 {
			keys, _ = strconv.Atoi(strs[2])
			first = 3
		}
	case "LMOVE", "BLMOVE":
		keys = 2
	default:
		keys = 1
	}
	keys = max(0, min(keys, len(strs)-first))
	b := c.c.B().Arbitrary(name).Args(strs[1:first]...)
	if keys > 0 {
		b = b.Keys(strs[first : first+keys]...)
	}
	b = b.Args(strs[first+keys:]...)
	if name == "BLMOVE" {
		return b.Blocking()
	}
	return b.Build()
}

// arg formats a command argument as Redis reads it.
func arg(a any) string {
	switch v := a.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(a)
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
func (c *conn) Do(ctx context.Context, args ...any) (any, error) {
	m, err := c.c.Do(ctx, c.command(args)).ToMessage()
	v, err := reply(&m, err)
	if src, ok := c.evalOf(args, err); ok {
		eval := append([]any{"EVAL", src}, args[2:]...)
		m, err = c.c.Do(ctx, c.command(eval)).ToMessage()
		return reply(&m, err)
	}
	return v, err
}

// evalOf reports whether args, an EVALSHA that got err, should be run
// again as EVAL, and with what source.
func (c *conn) evalOf(args []any, err error) (string, bool) {
	var re rediscmd.Error
	if !errors.As(err, &re) || !strings.HasPrefix(string(re), "NOSCRIPT") || len(args) < 2 || args[0] != "EVALSHA" {
		return "", false
	}
	sha, _ := args[1].(string)
	src, ok := c.scripts[sha]
	return src, ok
}

// Pipeline runs cmds in order. Scripts run as EVAL here, not EVALSHA: a
// NOSCRIPT reply in the middle of a pipeline could only be retried after
// the commands that followed it, out of order.
func (c *conn) Pipeline(ctx context.Context, cmds [][]any) ([]any, []error, error) {
	built := make(rueidis.Commands, len(cmds))
	for i, args := range cmds {
		if len(args) > 1 && args[0] == "EVALSHA" {
			if src, ok := c.scripts[arg(args[1])]; ok {
				args = append([]any{"EVAL", src}, args[2:]...)
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
	// Put back unsubscribed, for the connection to serve others.
	cancel := func() {
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		dc.Do(ctx, dc.B().Unsubscribe().Channel(channel).Build())
		dc.SetPubSubHooks(rueidis.PubSubHooks{})
		release()
	}
	s := &subscription{c: make(chan struct{}, 1), cancel: cancel}
	confirmed := make(chan struct{})
	var once sync.Once
	ended := dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(rueidis.PubSubMessage) {
			select {
			case s.c <- struct{}{}:
			default:
			}
		},
		OnSubscription: func(sub rueidis.PubSubSubscription) {
			if sub.Kind == "subscribe" {
				once.Do(func() { close(confirmed) })
			}
		},
	})
	if err := dc.Do(ctx, dc.B().Subscribe().Channel(channel).Build()).Error(); err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to %s: %w", channel, err)
	}
	select {
	case <-confirmed:
		return s, nil
	case err := <-ended:
		cancel()
		return nil, fmt.Errorf("subscribe to %s: %w", channel, errors.Join(err, errors.New("subscription ended")))
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
}

func (c *conn) Close() error {
	c.closeOnce.Do(c.c.Close)
	return nil
}

type subscription struct {
	c      chan struct{}
	cancel func()
	once   sync.Once
}

func (s *subscription) C() <-chan struct{} { return s.c }

// Close ends the subscription.
func (s *subscription) Close() error {
	s.once.Do(s.cancel)
	return nil
}
