// Package rediscmd is the boundary between package manager, which maps its
// objects onto Redis commands, and package manager/redis, which runs those
// commands with a Redis client library. The split keeps the library out of
// programs that never talk to Redis: they do not import manager/redis, and
// nothing registers a dialer.
package rediscmd

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
)

// A Conn runs commands on a Redis server or cluster. It is safe for
// concurrent use and reconnects on its own after a connection breaks.
//
// Replies are nil (a nil bulk string or array), int64, string (a bulk or
// simple string), or []any of those. A Redis error reply is returned as
// an Error; any other error is the connection's.
type Conn interface {
	// Do runs one command.
	Do(ctx context.Context, args ...string) (any, error)
	// Pipeline runs cmds in order in as few round trips as the
	// connection allows and returns each reply and error. err is set
	// when the pipeline as a whole failed (a broken connection); the
	// replies of the commands sent before the failure are still
	// reported in errs.
	Pipeline(ctx context.Context, cmds [][]string) (replies []any, errs []error, err error)
	// Subscribe listens on a channel. The returned channel receives a
	// value for every message, dropping those that arrive while one is
	// waiting to be received (a subscriber only needs to know that
	// something happened). A Subscription lasts as long as its
	// connection: when that breaks, Err reports why and C receives a
	// value, so that a waiter wakes, looks again and subscribes anew.
	Subscribe(ctx context.Context, channel string) (Subscription, error)
	// Close closes the connection pool. Calls after Close fail.
	Close() error
}

// A Subscription is a Conn's subscription to one channel.
type Subscription interface {
	C() <-chan struct{}
	// Err is nil while the subscription holds, and then the reason its
	// connection ended; no more messages arrive after that.
	Err() error
	Close() error
}

// Error is a Redis error reply, such as "WRONGTYPE Operation against a key
// holding the wrong kind of value".
type Error string

func (e Error) Error() string { return string(e) }

// Options are what a Dialer needs beside the URL.
type Options struct {
	// TLSConfig, if set, is used for rediss:// URLs (and forces TLS for
	// others).
	TLSConfig *tls.Config
	// Cluster dials a Redis Cluster through the nodes in the URL (more
	// may follow as addr query parameters).
	Cluster bool
	// Scripts are the sources of the Lua scripts the caller runs with
	// EVALSHA. The Conn runs such a script with EVAL where the server
	// does not have it (after a restart), so that a NOSCRIPT reply never
	// reaches the caller, and in a Pipeline, where a retry would come
	// out of order.
	Scripts []string
}

// A Dialer returns a Conn to the server named by url: redis://, rediss://
// or unix:// with Redis's usual user, password and database parts. It
// checks that the server answers (and accepts the password) before it
// returns.
type Dialer func(ctx context.Context, url string, o Options) (Conn, error)

var (
	mu     sync.Mutex
	dialer Dialer
)

// Register sets the Dialer; package manager/redis calls it in its init.
func Register(d Dialer) {
	mu.Lock()
	defer mu.Unlock()
	dialer = d
}

// ErrNoDialer is returned by Dial when no Dialer is registered.
var ErrNoDialer = errors.New(`no Redis client registered: import _ "github.com/shmkit/shmkit/manager/redis"`)

// Dial dials with the registered Dialer.
func Dial(ctx context.Context, url string, o Options) (Conn, error) {
	mu.Lock()
	d := dialer
	mu.Unlock()
	if d == nil {
		return nil, ErrNoDialer
	}
	return d(ctx, url, o)
}
