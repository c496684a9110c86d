package redisbench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/shmtest"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

func TestRun(t *testing.T) {
	for _, c := range []struct{ clients, pipeline int }{{1, 1}, {1, 16}, {4, 1}} {
		t.Run(fmt.Sprintf("clients=%d/pipeline=%d", c.clients, c.pipeline), func(t *testing.T) {
			s := Start(t)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			got, err := s.Run(ctx, c.clients, c.pipeline, 5000, "get,set")
			if err != nil {
				t.Fatal(err)
			}
			for _, test := range []string{"GET", "SET"} {
				if got[test] <= 0 {
					t.Errorf("%s: %v requests/s, want > 0 (all results: %v)", test, got[test], got)
				}
			}
			t.Logf("%s: GET %.0f requests/s, SET %.0f requests/s", s.Socket(), got["GET"], got["SET"])
		})
	}
}

// TestStartStoresKey checks that GET run alone finds the key SET would
// have stored.
func TestStartStoresKey(t *testing.T) {
	s := Start(t)
	got, err := s.Do("TYPE", benchmarkKey)
	if err != nil {
		t.Fatal(err)
	}
	if got != "string" {
		t.Errorf("TYPE %s = %q, want %q", benchmarkKey, got, "string")
	}
}

func TestRunCanceled(t *testing.T) {
	s := Start(t)
	if _, err := exec.LookPath(benchmarkName); err != nil {
		t.Skipf("%s not installed", benchmarkName)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Run(ctx, 1, 1, 1000, "get")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a canceled context: %v, want %v", err, context.Canceled)
	}
}

func TestRunInvalid(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	for _, c := range []struct {
		clients, pipeline, requests int
		tests                       string
	}{
		{0, 1, 1, "get"},
		{1, 0, 1, "get"},
		{1, 1, 0, "get"},
		{1, 1, 1, ""},
	} {
		if _, err := s.Run(ctx, c.clients, c.pipeline, c.requests, c.tests); err == nil {
			t.Errorf("Run(%d, %d, %d, %q) succeeded, want an error", c.clients, c.pipeline, c.requests, c.tests)
		}
	}
}

// skipRecorder is a testing.TB that records the message it is skipped
// with.
type skipRecorder struct {
	testing.TB
	msg string
}

func (r *skipRecorder) Skipf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	r.TB.SkipNow()
}

func TestSkipWhenNotInstalled(t *testing.T) {
	t.Setenv(redistest.RequireEnv, "") // CI sets it; this test is of the skip
	const missing = "shmkit-no-such-binary"
	for _, c := range []struct {
		name string
		run  func(tb testing.TB)
		want string // Debian package the message must name
	}{
		{"server", func(tb testing.TB) { start(tb, missing, benchmarkName) }, "redis-server"},
		{"benchmark", func(tb testing.TB) {
			if _, err := exec.LookPath(serverName); err != nil {
				tb.SkipNow()
			}
			s := start(tb, serverName, missing)
			s.Run(context.Background(), 1, 1, 1, "get")
		}, "redis-tools"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &skipRecorder{}
			t.Run("skipped", func(t *testing.T) {
				r.TB = t
				c.run(r)
				t.Error("returned without skipping")
			})
			if r.msg == "" {
				t.Skip("not run")
			}
			t.Logf("skip message: %s", r.msg)
			if !strings.Contains(r.msg, missing) || !strings.Contains(r.msg, "Debian package "+c.want) {
				t.Errorf("skip message %q does not name %s and the Debian package %s", r.msg, missing, c.want)
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want map[string]float64
	}{
		{
			"redis7",
			`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","26315.79","0.029","0.016","0.031","0.031","0.079","0.311"
"GET","22831.05","0.033","0.016","0.031","0.055","0.103","3.023"
`,
			map[string]float64{"SET": 26315.79, "GET": 22831.05},
		},
		{
			"columns reordered, CRLF, commas in names",
			"\"rps\",\"test\"\r\n\"1.5\",\"MSET (10 keys)\"\r\n\"2\",\"a,b\"\r\n",
			map[string]float64{"MSET (10 keys)": 1.5, "a,b": 2},
		},
		{
			"redis6 without header",
			"\"PING_INLINE\",\"40000.00\"\n\"GET\",\"41000.50\"\n",
			map[string]float64{"PING_INLINE": 40000, "GET": 41000.5},
		},
		{"empty", "", nil},
		{"header only", "\"test\",\"rps\"\n", nil},
		{"rps not a number", "\"test\",\"rps\"\n\"GET\",\"fast\"\n", nil},
		{"rps negative", "\"test\",\"rps\"\n\"GET\",\"-1\"\n", nil},
		{"rps NaN", "\"test\",\"rps\"\n\"GET\",\"NaN\"\n", nil},
		{"short row", "\"test\",\"rps\"\n\"GET\"\n", nil},
		{"bad quoting", "\"test\",\"rps\"\n\"GET\"x,\"1\"\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseCSV([]byte(c.in))
			if c.want == nil {
				if err == nil {
					t.Errorf("parseCSV(%q) = %v, want an error", c.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCSV(%q): %v", c.in, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("parseCSV(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("\"test\",\"rps\",\"avg_latency_ms\"\n\"GET\",\"1.00\",\"0.1\"\n"))
	f.Add([]byte("\"GET\",\"1.00\"\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseCSV(in)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Errorf("parseCSV(%q) = %v with no error, want results", in, got)
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if v := got[k]; !(v >= 0) {
				t.Errorf("parseCSV(%q)[%q] = %v, want a non-negative number", in, k, v)
			}
		}
	})
}

// TestLaunch checks a server started for a program: it answers, Close
// stops it and removes its directory, and a second Close does nothing.
func TestLaunch(t *testing.T) {
	if _, err := exec.LookPath(serverName); err != nil {
		t.Skipf("%s not installed", serverName)
	}
	s, err := Launch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Errorf("PING = %q, %v; want PONG", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, %s: %v; want it gone", s.dir, err)
	}
	if !s.proc.Exited() {
		t.Error("after Close, the server's process has not been reaped")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLaunchNotInstalled(t *testing.T) {
	_, err := launch(t.Context(), "shmkit-no-such-binary", benchmarkName)
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "Debian package redis-server") {
		t.Errorf("launch of a missing binary: %v; want ErrNotInstalled naming the Debian package", err)
	}
}

func TestRequireEnv(t *testing.T) {
	if requireEnv != redistest.RequireEnv {
		t.Errorf("requireEnv = %q, want redistest's %q", requireEnv, redistest.RequireEnv)
	}
}

// TestDoSpaces checks that Do sends arguments holding spaces whole (it
// speaks RESP, not inline commands, which would split them).
func TestDoSpaces(t *testing.T) {
	s := Start(t)
	if _, err := s.Do("SET", "a b", "c d"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Do("GET", "a b"); got != "c d" || err != nil {
		t.Errorf("GET of a key with a space = %q, %v; want \"c d\"", got, err)
	}
}
