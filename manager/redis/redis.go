// Package redis lets package manager's proxies run against Redis (or
// Valkey): importing it registers the client that manager.Dial uses for
// the "redis" network,
//
//	import _ "github.com/shmkit/shmkit/manager/redis"
//
//	c, err := manager.Dial(ctx, "redis", "redis://:secret@host:6379/0", nil)
//	counts, err := manager.OpenDict[string, int](ctx, c, "counts")
//
// and keeps the Redis client library (github.com/redis/go-redis/v9) out
// of programs that do not. docs/redis.md specifies how objects map onto
// Redis keys and what each operation guarantees.
package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/manager/internal/rediscmd"
)

func init() { rediscmd.Register(dial) }

// client is what go-redis's Client and ClusterClient have in common that
// the manager uses.
type client interface {
	Do(ctx context.Context, args ...any) *goredis.Cmd
	Pipeline() goredis.Pipeliner
	Subscribe(ctx context.Context, channels ...string) *goredis.PubSub
	Close() error
}

type conn struct{ c client }

func dial(ctx context.Context, url string, o rediscmd.Options) (rediscmd.Conn, error) {
	load := func(ctx context.Context, cn *goredis.Conn) error {
		for _, s := range o.Scripts {
			if err := cn.ScriptLoad(ctx, s).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var c client
	if o.Cluster {
		opts, err := goredis.ParseClusterURL(url)
		if err != nil {
			return nil, err
		}
		opts.Protocol, opts.OnConnect = 2, load
		if o.TLSConfig != nil {
			opts.TLSConfig = o.TLSConfig
		}
		c = goredis.NewClusterClient(opts)
	} else {
		opts, err := goredis.ParseURL(url)
		if err != nil {
			return nil, err
		}
		// RESP2, whose replies are the few types rediscmd.Conn promises.
		opts.Protocol, opts.OnConnect, opts.DisableIdentity = 2, load, true
		if o.TLSConfig != nil {
			opts.TLSConfig = o.TLSConfig
		}
		c = goredis.NewClient(opts)
	}
	cn := &conn{c}
	if _, err := cn.Do(ctx, "PING"); err != nil {
		c.Close()
		return nil, err
	}
	return cn, nil
}

// reply converts a go-redis result and error to rediscmd's forms.
func reply(v any, err error) (any, error) {
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, goredis.Nil):
		return nil, nil
	}
	var re goredis.Error
	if errors.As(err, &re) {
		return nil, rediscmd.Error(re.Error())
	}
	return nil, err
}

func (c *conn) Do(ctx context.Context, args ...any) (any, error) {
	return reply(c.c.Do(ctx, args...).Result())
}

func (c *conn) Pipeline(ctx context.Context, cmds [][]any) ([]any, []error, error) {
	p := c.c.Pipeline()
	sent := make([]*goredis.Cmd, len(cmds))
	for i, args := range cmds {
		sent[i] = p.Do(ctx, args...)
	}
	_, _ = p.Exec(ctx) // each command's error is in its Cmd
	replies, errs := make([]any, len(cmds)), make([]error, len(cmds))
	var failed error
	for i, cmd := range sent {
		replies[i], errs[i] = reply(cmd.Result())
		var re rediscmd.Error
		if errs[i] != nil && !errors.As(errs[i], &re) && failed == nil {
			failed = errs[i]
		}
	}
	return replies, errs, failed
}

func (c *conn) Subscribe(ctx context.Context, channel string) (rediscmd.Subscription, error) {
	ps := c.c.Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", channel, err)
	}
	s := &subscription{ps: ps, c: make(chan struct{}, 1)}
	go func() {
		for range ps.Channel() {
			select {
			case s.c <- struct{}{}:
			default:
			}
		}
	}()
	return s, nil
}

func (c *conn) Close() error { return c.c.Close() }

type subscription struct {
	ps *goredis.PubSub
	c  chan struct{}
}

func (s *subscription) C() <-chan struct{} { return s.c }
func (s *subscription) Close() error       { return s.ps.Close() }
