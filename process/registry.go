package process

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/shmkit/shmkit/internal/funcs"
	"github.com/shmkit/shmkit/shm"
)

// registry maps names to the functions workers run. It is filled during
// package initialisation and read-only afterwards, like database/sql's
// driver table: every process of the program registers the same functions
// because it runs the same code.
var registry struct {
	sync.RWMutex
	funcs map[string]func(ctx context.Context, arg []byte) ([]byte, error)

	// warmers run each function's argument and result codecs once, so that
	// a spare worker has built their caches before it gets a job.
	warmers []func()
}

// Func is a function registered to run in worker processes, taking an
// argument of type A and returning a result of type R.
type Func[A, R any] struct {
	name string
}

// Register registers f under name, for workers to run, and returns a handle
// that starts them. Call it from package initialisation (a package-level
// var), so that workers, which run the same binary, register it too.
// Register panics if name is empty or already registered.
func Register[A, R any](name string, f func(ctx context.Context, arg A) (R, error)) *Func[A, R] {
	if name == "" || f == nil {
		panic("process: Register with empty name or nil function")
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.funcs == nil {
		registry.funcs = make(map[string]func(context.Context, []byte) ([]byte, error))
	}
	if _, dup := registry.funcs[name]; dup {
		panic("process: Register called twice for " + name)
	}
	registry.funcs[name] = func(ctx context.Context, argBytes []byte) ([]byte, error) {
		var arg A
		if err := wire.Unmarshal(argBytes, &arg); err != nil {
			return nil, fmt.Errorf("process: decode argument of %s: %w", name, err)
		}
		r, err := f(ctx, arg)
		if err != nil {
			return nil, err
		}
		// The parent decodes with wire's limits, so what wire encodes
		// it can decode: a result beyond them fails here, as the
		// function's error, rather than as a success whose result the
		// parent cannot read.
		b, err := wire.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("process: encode result of %s: %w", name, err)
		}
		return b, nil
	}
	funcs.Register(name, func(ctx context.Context, args []byte, max int, done *int, emit func([]byte, int) error) (int, error) {
		as, err := funcs.DecodeSlice[A](args)
		if err != nil {
			return 0, fmt.Errorf("process: decode arguments of %s: %w", name, err)
		}
		rs := make([]R, len(as))
		for i, a := range as {
			r, err := f(ctx, a)
			if err != nil {
				return i, err
			}
			rs[i] = r
			*done = i + 1
		}
		return emitResults(name, rs, max, emit)
	})
	registry.warmers = append(registry.warmers, func() {
		var a A
		var r R
		if b, err := wire.Marshal(a); err == nil {
			wire.Unmarshal(b, &a)
		}
		wire.Marshal(r)
	})
	return &Func[A, R]{name: name}
}

// emitResults hands rs to emit as encodings (funcs.EncodeSlice) of
// consecutive runs of at most max bytes each, halving a run that does not
// fit. It returns the
// index of a result that alone takes more than max, with an error.
func emitResults[R any](name string, rs []R, max int, emit func([]byte, int) error) (int, error) {
	var emitFrom func(off int, rs []R) (int, error)
	emitFrom = func(off int, rs []R) (int, error) {
		b, err := funcs.EncodeSlice(rs)
		if err == nil && len(b) <= max {
			return 0, emit(b, len(rs))
		}
		if len(rs) <= 1 {
			if err == nil {
				err = fmt.Errorf("%d bytes encoded, more than the %d a message carries", len(b), max)
			}
			return off, fmt.Errorf("process: encode result of %s: %w", name, err)
		}
		h := len(rs) / 2
		if i, err := emitFrom(off, rs[:h]); err != nil {
			return i, err
		}
		return emitFrom(off+h, rs[h:])
	}
	return emitFrom(0, rs)
}

func lookup(name string) func(context.Context, []byte) ([]byte, error) {
	registry.RLock()
	defer registry.RUnlock()
	return registry.funcs[name]
}

// Name returns the name fn was registered under.
func (fn *Func[A, R]) Name() string { return fn.name }

// Start starts a worker process running fn(arg) and returns without waiting
// for it. Start fails if arg cannot be encoded within the limits (see the
// package documentation) or the worker cannot be started; everything that
// happens in the worker is reported by Join.
func (fn *Func[A, R]) Start(arg A, opts ...Option) (*Process, error) {
	b, err := wire.Marshal(arg)
	if err != nil {
		return nil, fmt.Errorf("process: encode argument of %s: %w", fn.name, err)
	}
	return start(fn.name, b, opts)
}

// Run starts a worker running fn(arg), waits for it and returns its result.
// When ctx ends first, Run kills the worker and returns ctx.Err().
func (fn *Func[A, R]) Run(ctx context.Context, arg A, opts ...Option) (R, error) {
	var r R
	p, err := fn.Start(arg, opts...)
	if err != nil {
		return r, err
	}
	if err := p.Join(ctx); err != nil {
		if ctx.Err() != nil {
			p.Kill()
			<-p.Done()
		}
		return r, err
	}
	err = p.Result(&r)
	return r, err
}

// Option configures Start.
type Option func(*config)

type config struct {
	name   string
	daemon bool
	files  []*os.File
	segs   []*shm.Segment
}

// Name names the worker (default: the function's name and a sequence
// number, such as "square-3"). A worker sees it as Current().Name.
func Name(name string) Option { return func(c *config) { c.name = name } }

// Daemon makes the worker die with its parent; see the package
// documentation.
func Daemon() Option { return func(c *config) { c.daemon = true } }

// Files passes open files to the worker, which receives duplicates of them,
// in order, from InheritedFiles. The caller keeps ownership of its copies.
func Files(files ...*os.File) Option {
	return func(c *config) { c.files = append(c.files, files...) }
}

// Segments hands shared-memory segments to the worker, which maps them,
// in order, with InheritedSegments. Anonymous segments reach workers only this way;
// named ones may also be opened by name.
func Segments(segs ...*shm.Segment) Option {
	return func(c *config) { c.segs = append(c.segs, segs...) }
}
