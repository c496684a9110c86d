//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/layout"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/manager"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

// shmkit runs the command in this process on the segments in dir and
// returns its exit status and output.
func shmkit(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(t.Context(), append([]string{"-dir", dir}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// create creates the 64 KiB segment name in dir and closes it when the test
// ends; t.TempDir removes the file.
func create(t *testing.T, dir, name string) *shm.Segment {
	t.Helper()
	seg, err := shm.Create(name, 64<<10, shm.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Error(err)
		}
	})
	return seg
}

// writeFile writes a file that is not a segment.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// truncatedCopy copies the segment file src to dst, keeping only its
// first page: what a segment looks like after a careless truncate.
func truncatedCopy(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b[:4096], 0o600); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// line returns the line of out whose first field is name, or fails the
// test.
func line(t *testing.T, out, name string) string {
	t.Helper()
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return strings.TrimSuffix(l, "\n")
		}
	}
	t.Fatalf("no line for %s in output:\n%s", name, out)
	return ""
}

type holdArgs struct{ Dir, Name string }

// holder opens the segment a.Name in a.Dir, says so by writing a byte to
// the file it inherits, and keeps the segment open until it is killed (or
// its parent dies).
var holder = process.Register("cmd_test.holder", func(ctx context.Context, a holdArgs) (int, error) {
	ready := process.InheritedFiles()[0]
	seg, err := shm.Open(a.Name, shm.WithDir(a.Dir))
	if err != nil {
		ready.Close()
		return 0, err
	}
	defer seg.Close()
	_, err = ready.Write([]byte{1})
	if cerr := ready.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	<-ctx.Done()
	return 0, nil
})

// hold starts a worker process that keeps the segment name in dir open,
// and returns it once it has opened the segment. The worker is killed at
// the end of the test if the test has not done so.
func hold(t *testing.T, dir, name string) *process.Process {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := holder.Start(holdArgs{Dir: dir, Name: name}, process.Files(w))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, p) })
	// The worker holds the only other copy of w: end of file means that
	// it ended without opening the segment.
	if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
		t.Fatalf("holder ended before opening %s: %v", name, p.Join(t.Context()))
	}
	return p
}

// stop kills p and waits for it to end.
func stop(t *testing.T, p *process.Process) {
	t.Helper()
	p.Kill() // fails harmlessly if p has ended already
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ee *process.ExitError
	if err := p.Join(ctx); err != nil && !errors.As(err, &ee) {
		t.Errorf("join holder: %v", err)
	}
}

type point struct {
	X  int32
	Y  float64
	OK bool
}

func TestLs(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, dir, "alpha")
	if _, err := value.New[int64](seg, "hits"); err != nil {
		t.Fatal(err)
	}
	if _, err := array.New[float64](seg, "hist", 16); err != nil {
		t.Fatal(err)
	}
	if _, err := value.New[point](seg, "where"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "psm_foreign"), "Python's, not ours")
	truncatedCopy(t, filepath.Join(dir, "alpha"), filepath.Join(dir, "broken"))
	create(t, dir, "charlie") // after broken: its columns must still line up
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("alpha", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := shmkit(t, dir, "ls")
	if code != 0 || errOut != "" {
		t.Fatalf("ls: status %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("ls printed %d lines, want a header, alpha, broken and charlie:\n%s", len(lines), out)
	}
	if got, want := strings.Fields(lines[0]), []string{"NAME", "SIZE", "OBJECTS", "CREATOR", "USERS", "AGE"}; !slices.Equal(got, want) {
		t.Errorf("header = %q, want %q", got, want)
	}
	for _, col := range []string{"SIZE", "OBJECTS", "CREATOR", "USERS", "AGE"} {
		want := strings.Index(lines[0], col)
		for _, l := range []string{lines[1], lines[3]} {
			if l[want-2:want] != "  " || l[want] == ' ' {
				t.Errorf("%s column starts at %d in the header, not in\n%s\n%s", col, want, lines[0], l)
			}
		}
	}
	if want := strings.Index(lines[0], "SIZE"); strings.Index(lines[2], "error:") != want {
		t.Errorf("the error does not start in the SIZE column:\n%s\n%s", lines[0], lines[2])
	}
	// This process holds alpha open, but the command does not count itself.
	f := strings.Fields(lines[1])
	if want := []string{"alpha", "64.0K", "3", strconv.Itoa(os.Getpid()), "alive", "-"}; len(f) != 7 || !slices.Equal(f[:6], want) {
		t.Errorf("alpha's line = %q, want fields %q and an age", lines[1], want)
	}
	if f := strings.Fields(lines[2]); len(f) < 2 || f[0] != "broken" || f[1] != "error:" || !strings.Contains(lines[2], "truncated") {
		t.Errorf("broken's line = %q, want broken and a truncation error", lines[2])
	}
	if f := strings.Fields(lines[3]); len(f) != 7 || f[0] != "charlie" || f[2] != "0" {
		t.Errorf("charlie's line = %q, want charlie with no objects", lines[3])
	}
}

func TestLsJSON(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, dir, "one")
	if _, err := value.New[int64](seg, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := value.New[bool](seg, "b"); err != nil {
		t.Fatal(err)
	}
	truncatedCopy(t, filepath.Join(dir, "one"), filepath.Join(dir, "two"))
	p := hold(t, dir, "one")

	code, out, errOut := shmkit(t, dir, "ls", "-json")
	if code != 0 || errOut != "" {
		t.Fatalf("ls -json: status %d, stderr %q", code, errOut)
	}
	var fields []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("ls -json printed %q: %v", out, err)
	}
	if len(fields) != 2 {
		t.Fatalf("ls -json listed %d segments, want 2:\n%s", len(fields), out)
	}
	want := []string{"created", "creator_pid", "creator_running", "name", "objects", "size", "users", "users_incomplete"}
	if got := slices.Sorted(maps.Keys(fields[0])); !slices.Equal(got, want) {
		t.Errorf("fields of a sound segment = %q, want %q", got, want)
	}
	want = []string{"creator_pid", "creator_running", "error", "name", "objects", "size", "users", "users_incomplete"}
	if got := slices.Sorted(maps.Keys(fields[1])); !slices.Equal(got, want) {
		t.Errorf("fields of a truncated segment = %q, want %q", got, want)
	}

	type entry struct {
		Name            string `json:"name"`
		Size            int64  `json:"size"`
		Objects         int    `json:"objects"`
		CreatorPid      int    `json:"creator_pid"`
		CreatorRunning  bool   `json:"creator_running"`
		Users           []int  `json:"users"`
		UsersIncomplete bool   `json:"users_incomplete"`
		Created         string `json:"created"`
		Error           string `json:"error"`
	}
	var got []entry
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	one := got[0]
	if one.Name != "one" || one.Size != 64<<10 || one.Objects != 2 || one.CreatorPid != os.Getpid() || !one.CreatorRunning ||
		!slices.Equal(one.Users, []int{p.Pid()}) || one.UsersIncomplete || one.Error != "" {
		t.Errorf("ls -json listed %+v, want one of 65536 bytes with 2 objects, created by %d and used by the holder, %d",
			one, os.Getpid(), p.Pid())
	}
	if created, err := time.Parse(time.RFC3339, one.Created); err != nil || !created.Equal(seg.Created()) {
		t.Errorf("created = %q (%v), want %v", one.Created, err, seg.Created())
	}
	two := got[1]
	if two.Name != "two" || two.Size != 4096 || !strings.Contains(two.Error, "truncated") || string(fields[1]["users"]) != "[]" {
		t.Errorf("ls -json listed %+v (users %s), want two, truncated to 4096 bytes, with no users", two, fields[1]["users"])
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, dir, "data")
	hits, err := value.New[int64](seg, "hits")
	if err != nil {
		t.Fatal(err)
	}
	hits.Store(-1234567)
	where, err := value.New[point](seg, "where")
	if err != nil {
		t.Fatal(err)
	}
	pt := point{X: 3, Y: -1.5, OK: true}
	where.Store(pt)
	hist, err := array.New[int64](seg, "hist", 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		hist.Store(i, int64(i*i))
	}
	short, err := array.New[uint16](seg, "short", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		short.Store(i, uint16(7+i))
	}
	wide, err := value.New[[32]int64](seg, "wide")
	if err != nil {
		t.Fatal(err)
	}
	var w [32]int64
	for i := range w {
		w[i] = int64(1000 + i)
	}
	wide.Store(w)
	if _, err := seg.Alloc(shm.ObjectSpec{Name: "raw", Kind: "bytes", Size: 16}); err != nil {
		t.Fatal(err)
	}
	// A value whose size does not match its type, as another program
	// might write it.
	if _, err := seg.Alloc(shm.ObjectSpec{Name: "bad", Kind: value.Kind, Type: "int64", Layout: "int64", Size: 3}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := shmkit(t, dir, "inspect", "data")
	if code != 0 || errOut != "" {
		t.Fatalf("inspect: status %d, stderr %q", code, errOut)
	}
	for _, want := range []struct{ key, value string }{
		{"name:", "data"},
		{"size:", "65536 bytes (64.0K)"},
		{"available:", fmt.Sprintf("%d bytes", seg.Available())},
		{"creator:", fmt.Sprintf("pid %d (alive)", os.Getpid())},
		{"created:", seg.Created().Format(time.RFC3339)},
		{"users:", "-"},
		{"objects:", "7"},
	} {
		if l := line(t, out, want.key); !strings.Contains(l, want.value) {
			t.Errorf("header line %q, want it to contain %q", l, want.value)
		}
	}

	hitsObj, err := seg.Lookup("hits")
	if err != nil {
		t.Fatal(err)
	}
	wantWide := fmt.Sprint(w)
	wantWide = wantWide[:59] + "…"
	for _, want := range []struct {
		name, kind, typ, size, value string
	}{
		{"hits", "value", "int64", "8", "-1234567"},
		{"where", "value", "main.point", "112", fmt.Sprintf("%+v", pt)},
		{"hist", "array", "int64", "864", "[len 100] 0 1 4 9 16 25 36 49 …"},
		{"short", "array", "uint16", "70", "[len 3] 7 8 9"},
		{"wide", "value", "[32]int64", "576", wantWide},
		{"raw", "bytes", "-", "16", "-"},
		{"bad", "value", "int64", "3", "error: value: shm: object type mismatch"},
	} {
		l := line(t, out, want.name)
		f := strings.Fields(l)
		if len(f) < 6 || f[1] != want.kind || f[2] != want.typ || f[3] != want.size {
			t.Errorf("%s: line %q, want kind %s, type %s, size %s", want.name, l, want.kind, want.typ, want.size)
		}
		if want.name == "bad" {
			if !strings.Contains(l, want.value) {
				t.Errorf("%s: line %q, want it to contain %q", want.name, l, want.value)
			}
		} else if !strings.HasSuffix(l, "  "+want.value) {
			t.Errorf("%s: line %q, want value %q", want.name, l, want.value)
		}
	}
	if f := strings.Fields(line(t, out, "hits")); f[4] != strconv.FormatInt(hitsObj.Offset, 10) {
		t.Errorf("hits at offset %s, want %d", f[4], hitsObj.Offset)
	}
}

// inspectJSON is the output of inspect -json, decoded.
type inspectJSON struct {
	Name            string `json:"name"`
	Size            int64  `json:"size"`
	Available       int64  `json:"available"`
	CreatorPid      int    `json:"creator_pid"`
	CreatorRunning  bool   `json:"creator_running"`
	Created         string `json:"created"`
	Users           []int  `json:"users"`
	UsersIncomplete bool   `json:"users_incomplete"`
	Objects         []struct {
		Name   string `json:"name"`
		Kind   string `json:"kind"`
		Type   string `json:"type"`
		Size   int64  `json:"size"`
		Offset int64  `json:"offset"`
		Value  string `json:"value"`
	} `json:"objects"`
	Error string `json:"error"`
}

// decodeInspect decodes the output of inspect -json, checking that it
// has the fields wantFields and that each object has all of its fields.
func decodeInspect(t *testing.T, out string, wantFields []string) inspectJSON {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("inspect -json printed %q: %v", out, err)
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, wantFields) {
		t.Errorf("fields = %q, want %q", got, wantFields)
	}
	var objects []map[string]json.RawMessage
	if err := json.Unmarshal(fields["objects"], &objects); err != nil {
		t.Fatalf("objects = %s: %v", fields["objects"], err)
	}
	for _, o := range objects {
		if got, want := slices.Sorted(maps.Keys(o)), []string{"kind", "name", "offset", "size", "type", "value"}; !slices.Equal(got, want) {
			t.Errorf("fields of an object = %q, want %q", got, want)
		}
	}
	var r inspectJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInspectJSON(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, dir, "data")
	hits, err := value.New[int64](seg, "hits")
	if err != nil {
		t.Fatal(err)
	}
	hits.Store(42)
	hist, err := array.New[uint16](seg, "hist", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		hist.Store(i, uint16(7+i))
	}
	if _, err := seg.Alloc(shm.ObjectSpec{Name: "raw", Kind: "bytes", Size: 16}); err != nil {
		t.Fatal(err)
	}
	if _, err := seg.Alloc(shm.ObjectSpec{Name: "bad", Kind: value.Kind, Type: "int64", Layout: "int64", Size: 3}); err != nil {
		t.Fatal(err)
	}
	p := hold(t, dir, "data")

	code, out, errOut := shmkit(t, dir, "inspect", "-json", "data")
	if code != 0 || errOut != "" {
		t.Fatalf("inspect -json: status %d, stderr %q", code, errOut)
	}
	r := decodeInspect(t, out, []string{"available", "created", "creator_pid", "creator_running", "name", "objects", "size",
		"users", "users_incomplete"})
	if r.Name != "data" || r.Size != 64<<10 || r.Available != seg.Available() || r.CreatorPid != os.Getpid() ||
		!r.CreatorRunning || !slices.Equal(r.Users, []int{p.Pid()}) || r.UsersIncomplete {
		t.Errorf("inspect -json = %+v, want data of 65536 bytes, %d available, created by %d and used by the holder, %d",
			r, seg.Available(), os.Getpid(), p.Pid())
	}
	if created, err := time.Parse(time.RFC3339Nano, r.Created); err != nil || !created.Equal(seg.Created()) {
		t.Errorf("created = %q (%v), want %v", r.Created, err, seg.Created())
	}

	// The objects are those of the segment, with the values of the table.
	objs, err := seg.Objects()
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := shmkit(t, dir, "inspect", "data")
	if len(r.Objects) != len(objs) {
		t.Fatalf("inspect -json shows %d objects, want %d:\n%s", len(r.Objects), len(objs), out)
	}
	for i, o := range r.Objects {
		want := objs[i]
		if o.Name != want.Name || o.Kind != want.Kind || o.Type != want.Type || o.Size != want.Size || o.Offset != want.Offset {
			t.Errorf("object %d = %+v, want %s, %s, type %q, %d bytes at %d", i, o, want.Name, want.Kind, want.Type, want.Size, want.Offset)
		}
		if m := inspectRow.FindStringSubmatch(line(t, table, want.Name)); m == nil || o.Value != m[4] {
			t.Errorf("%s: value %q, want the table's, in\n%s", o.Name, o.Value, table)
		}
	}
	for name, value := range map[string]string{"hits": "42", "hist": "[len 3] 7 8 9", "raw": "-"} {
		if i := slices.IndexFunc(objs, func(o shm.Object) bool { return o.Name == name }); i < 0 || r.Objects[i].Value != value {
			t.Errorf("%s: value %+v, want %q", name, r.Objects, value)
		}
	}
	if i := slices.IndexFunc(objs, func(o shm.Object) bool { return o.Name == "bad" }); !strings.HasPrefix(r.Objects[i].Value, "error: ") {
		t.Errorf("bad: value %q, want an error", r.Objects[i].Value)
	}
}

// TestInspectCorrupt inspects a segment whose header is sound and whose
// directory is not: the header is shown, then the error, and the
// command fails.
func TestInspectCorrupt(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, dir, "good")
	if _, err := value.New[int64](seg, "hits"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "good"))
	if err != nil {
		t.Fatal(err)
	}
	// The first directory entry follows the header (256 bytes) and the
	// index, a u32 per bucket (docs/layout.md, sections 3 and 5): damage
	// its name, which its checksum covers.
	buckets := int(binary.LittleEndian.Uint32(b[36:]))
	b[256+4*buckets] ^= 0xff
	if err := os.WriteFile(filepath.Join(dir, "corrupt"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := shmkit(t, dir, "inspect", "corrupt")
	if code != 1 || !strings.Contains(errOut, shm.ErrCorrupt.Error()) || !strings.Contains(line(t, out, "name:"), "corrupt") {
		t.Errorf("inspect: status %d, stdout %q, stderr %q; want 1, the header and the error", code, out, errOut)
	}
	if strings.Contains(out, "objects:") {
		t.Errorf("inspect counted the objects of a corrupt directory:\n%s", out)
	}

	code, out, errOut = shmkit(t, dir, "inspect", "-json", "corrupt")
	if code != 1 || !strings.HasPrefix(errOut, "shmkit: ") || !strings.Contains(errOut, shm.ErrCorrupt.Error()) {
		t.Errorf("inspect -json: status %d, stderr %q; want 1 and the error", code, errOut)
	}
	r := decodeInspect(t, out, []string{"available", "created", "creator_pid", "creator_running", "error", "name", "objects",
		"size", "users", "users_incomplete"})
	if r.Name != "corrupt" || r.Size != 64<<10 || r.CreatorPid != os.Getpid() || !strings.Contains(r.Error, shm.ErrCorrupt.Error()) ||
		r.Objects == nil || len(r.Objects) != 0 {
		t.Errorf("inspect -json = %+v, want corrupt, of 65536 bytes, created by %d, with an error and no objects", r, os.Getpid())
	}
	if !strings.Contains(out, `"objects": []`) {
		t.Errorf("inspect -json printed %s, want an empty objects array", out)
	}
}

type takeArgs struct{ Dir, Segment, Queue string }

// taker gets one task from a joinable queue and exits without marking it
// done, as a consumer that crashed would: the task is lost.
var taker = process.Register("cmd_test.taker", func(ctx context.Context, a takeArgs) (_ string, err error) {
	seg, err := shm.Open(a.Segment, shm.WithDir(a.Dir))
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, seg.Close()) }()
	q, err := queue.OpenJoinable[string](seg, a.Queue)
	if err != nil {
		return "", err
	}
	return q.Get(ctx)
})

// inspectRow splits a row of inspect's object table into name, kind,
// type and value (which has spaces).
var inspectRow = regexp.MustCompile(`^(\S+)\s+(\S+)\s+(\S+)\s+\d+\s+\d+\s+(.*)$`)

// TestInspectQueues checks inspect's VALUE column for queues: a closed
// plain queue, a joinable queue that a dead consumer took a task from,
// and a queue object whose header is not a queue's.
func TestInspectQueues(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	seg := create(t, dir, "queues")
	jobs, err := queue.New[int64](seg, "jobs", queue.Capacity(4))
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(3) {
		if err := jobs.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := jobs.Close(); err != nil {
		t.Fatal(err)
	}
	tasks, err := queue.NewJoinable[string](seg, "tasks", queue.Capacity(2), queue.MaxMessage(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"a", "b"} {
		if err := tasks.Put(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := taker.Run(ctx, takeArgs{Dir: dir, Segment: "queues", Queue: "tasks"}); err != nil || got != "a" {
		t.Fatalf("taker got %q, %v; want a, nil", got, err)
	}
	if _, err := seg.Alloc(shm.ObjectSpec{Name: "notq", Kind: queue.Kind, Type: "int64", Size: 64}); err != nil {
		t.Fatal(err)
	}
	pipes := create(t, dir, "pipes") // a pipe does not fit beside the queues
	conn, err := queue.NewPipe[int64](pipes, "conn", queue.Capacity(4))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := queue.OpenPipe[int64](pipes, "conn")
	if err != nil {
		t.Fatal(err)
	}
	conn.Send(ctx, 1)
	conn.Send(ctx, 2)
	peer.Close()
	oneWay, err := queue.NewPipe[[]byte](pipes, "oneway", queue.OneWay(), queue.MaxMessage(64))
	if err != nil {
		t.Fatal(err)
	}
	defer oneWay.Close()
	pid := strconv.Itoa(os.Getpid())

	code, out, errOut := shmkit(t, dir, "inspect", "queues")
	if code != 0 || errOut != "" {
		t.Fatalf("inspect: status %d, stderr %q", code, errOut)
	}
	for _, want := range []struct{ name, kind, typ, value string }{
		// procs: the records of this process and of the dead taker.
		{"jobs", "queue", "int64", "len 3 cap 4 max 8B closed abandoned 0 lost 0 procs 1"},
		{"tasks", "jqueue", "string", "len 1 cap 2 max 100B open abandoned 0 lost 1 procs 2"},
		{"notq", "queue", "int64", `error: queue "notq": queue: corrupt: 64 bytes, less than`},
	} {
		l := line(t, out, want.name)
		m := inspectRow.FindStringSubmatch(l)
		if m == nil || m[2] != want.kind || m[3] != want.typ || !strings.HasPrefix(m[4], want.value) {
			t.Errorf("%s: line %q, want kind %s, type %s, value %q", want.name, l, want.kind, want.typ, want.value)
		}
	}
	code, out, errOut = shmkit(t, dir, "inspect", "pipes")
	if code != 0 || errOut != "" {
		t.Fatalf("inspect: status %d, stderr %q", code, errOut)
	}
	for _, want := range []struct{ name, kind, typ, value string }{
		{"conn", "pipe", "int64", "ends pid " + pid + "/closed waiting 0/2 cap 4 max 8B"},
		{"oneway", "pipe", "[]uint8", "one-way ends pid " + pid + "/unopened waiting 0 cap 16 max 64B"},
	} {
		l := line(t, out, want.name)
		m := inspectRow.FindStringSubmatch(l)
		if m == nil || m[2] != want.kind || m[3] != want.typ || m[4] != want.value {
			t.Errorf("%s: line %q, want kind %s, type %s, value %q", want.name, l, want.kind, want.typ, want.value)
		}
	}
	// inspect read the queues without attaching, and left them as they were.
	if n := tasks.Len(); n != 1 {
		t.Errorf("after inspect, tasks.Len() = %d, want 1", n)
	}
	if got, err := tasks.Get(ctx); err != nil || got != "b" {
		t.Fatalf("Get = %q, %v; want b, nil", got, err)
	}
	if err := tasks.TaskDone(); err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tasks.Join(jctx); !errors.Is(err, queue.ErrTasksLost) {
		t.Errorf("Join = %v, want the task the taker took lost", err)
	}
}

func TestInspectMissing(t *testing.T) {
	for _, args := range [][]string{{"inspect", "nonesuch"}, {"inspect", "-json", "nonesuch"}} {
		code, out, errOut := shmkit(t, t.TempDir(), args...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "shmkit: ") || !strings.Contains(errOut, "nonesuch") {
			t.Errorf("%q of a missing segment: status %d, stdout %q, stderr %q; want 1 and an error naming it", args, code, out, errOut)
		}
	}
}

// TestFormat checks that inspect's shortened formatting shows what
// layout.Type.Format would, for types small enough to format whole.
func TestFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, desc := range []string{
		"int64",
		"bool",
		"[0]int64",
		"[5]struct {}",
		"[100]int64",
		"[29]uint8",
		"[30]uint8",
		"[31]uint8",
		"[3][50]uint8",
		"[2][2][2][2][2][2][2]int8",
		"struct { A [40]int8; B int64 }",
		"struct { Name [70]bool }",
		"struct { A struct {}; B [0]int8; C complex128; D float32 }",
		"[4]struct { X int32; Y [31]uint8 }",
		"struct { Ä [8]int8; Ö [8]int8; Ü [8]int8 }",
		"struct { " + strings.Repeat("F uint8; ", 40) + "G uint8 }",
		// "{" + 56 + ":0" is 59 characters: the field after it decides
		// whether the text is longer than 60.
		"struct { " + strings.Repeat("N", 56) + " uint8; B uint8 }",
		"struct { " + strings.Repeat("N", 55) + " uint8; B uint8 }",
		// 60 bytes, but 30 characters.
		"struct { " + strings.Repeat("Ä", 30) + " uint8; B [40]int8 }",
	} {
		typ, err := layout.Parse(desc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			// Zeros first: they format shortest, which puts the cuts
			// closest to the edge.
			b := make([]byte, typ.Size)
			if i > 0 {
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
			}
			if got, want := truncate(format(typ, b), valueWidth), truncate(typ.Format(b), valueWidth); got != want {
				t.Errorf("%s: shows %q, want %q", desc, got, want)
			}
		}
	}

	// Parse accepts descriptors far too long to show whole, 10^18 empty
	// structs among them; format shows their beginning, quickly.
	for _, desc := range []string{"[8000][8000]struct {}", "[1000000000][1000000000]struct {}"} {
		typ, err := layout.Parse(desc)
		if err != nil {
			t.Fatal(err)
		}
		want := "[[" + strings.Repeat("{} ", 19)
		if got := truncate(format(typ, nil), valueWidth); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "…") {
			t.Errorf("huge value %s shows as %q", desc, got)
		}
	}
}

func TestGuard(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := os.Getpagesize()
	if err := f.Truncate(int64(2 * page)); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 2*page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := f.Truncate(int64(page)); err != nil {
		t.Fatal(err)
	}
	var b byte
	err = guard(func() error {
		b = mem[page]
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "memory fault") {
		t.Errorf("reading past the end of a truncated file: byte %d, error %v; want a memory fault", b, err)
	}
	if err := guard(func() error { return io.EOF }); err != io.EOF {
		t.Errorf("guard returned %v, want the function's error", err)
	}
}

func TestRm(t *testing.T) {
	dir := t.TempDir()
	create(t, dir, "gone").Close()
	create(t, dir, "gone too")
	writeFile(t, filepath.Join(dir, "foreign"), "not a segment")

	code, out, errOut := shmkit(t, dir, "rm", "gone", "foreign", "gone too", "missing")
	if code != 1 || out != "" {
		t.Errorf("rm: status %d, stdout %q; want 1 and nothing", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "foreign") || !strings.Contains(lines[0], shm.ErrNotSegment.Error()) ||
		!strings.Contains(lines[1], "missing") {
		t.Errorf("rm: stderr %q, want a line refusing foreign and one about missing", errOut)
	}
	for _, name := range []string{"gone", "gone too"} {
		if exists(t, filepath.Join(dir, name)) {
			t.Errorf("rm left %s", name)
		}
	}
	if !exists(t, filepath.Join(dir, "foreign")) {
		t.Error("rm removed a file that is not a segment")
	}
}

func TestGC(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // gc also looks for manager directories there
	dir := t.TempDir()
	create(t, dir, "unused").Close()
	create(t, dir, "held").Close()
	holderProc := hold(t, dir, "held")
	truncatedCopy(t, filepath.Join(dir, "unused"), filepath.Join(dir, "broken"))
	writeFile(t, filepath.Join(dir, "foreign"), "not a segment")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadTemp := fmt.Sprintf(".shmkit-tmp-%d-abc", dead.Process.Pid)
	writeFile(t, filepath.Join(dir, deadTemp), "")
	liveTemp := fmt.Sprintf(".shmkit-tmp-%d-def", os.Getpid())
	writeFile(t, filepath.Join(dir, liveTemp), "")

	gc := func(args ...string) []string {
		t.Helper()
		code, out, errOut := shmkit(t, dir, append([]string{"gc"}, args...)...)
		if code != 0 || errOut != "" {
			t.Fatalf("gc %q: status %d, stderr %q", args, code, errOut)
		}
		return strings.Fields(strings.ReplaceAll(out, "would remove", "would-remove"))
	}
	check := func(present, absent []string) {
		t.Helper()
		for _, name := range present {
			if !exists(t, filepath.Join(dir, name)) {
				t.Errorf("%s was removed", name)
			}
		}
		for _, name := range absent {
			if exists(t, filepath.Join(dir, name)) {
				t.Errorf("%s was not removed", name)
			}
		}
	}

	gcJSON := func(args ...string) []gcJSONEntry {
		t.Helper()
		code, out, errOut := shmkit(t, dir, append([]string{"gc", "-json"}, args...)...)
		if code != 0 || errOut != "" {
			t.Fatalf("gc -json %q: status %d, stderr %q", args, code, errOut)
		}
		return decodeGC(t, out)
	}

	got := gc("-n")
	if want := []string{"would-remove", deadTemp, "would-remove", "broken", "would-remove", "unused"}; !slices.Equal(got, want) {
		t.Errorf("gc -n printed %q, want %q", got, want)
	}
	check([]string{"unused", "held", "broken", "foreign", deadTemp, liveTemp}, nil)

	gotJSON := gcJSON("-n")
	want := []gcJSONEntry{{deadTemp, "temp", false, ""}, {"broken", "segment", false, ""}, {"unused", "segment", false, ""}}
	if !slices.Equal(gotJSON, want) {
		t.Errorf("gc -json -n printed %+v, want %+v", gotJSON, want)
	}
	check([]string{"unused", "held", "broken", "foreign", deadTemp, liveTemp}, nil)

	gotJSON = gcJSON()
	for i := range want {
		want[i].Removed = true
	}
	if !slices.Equal(gotJSON, want) {
		t.Errorf("gc -json printed %+v, want %+v", gotJSON, want)
	}
	check([]string{"held", "foreign", liveTemp}, []string{"unused", "broken", deadTemp})

	if got := gcJSON(); got == nil || len(got) != 0 {
		t.Errorf("gc -json with nothing to remove printed %+v, want []", got)
	}
	if got := gc("-n"); len(got) != 0 {
		t.Errorf("gc -n with nothing to remove printed %q", got)
	}

	stop(t, holderProc)
	if got, want := gc(), []string{"removed", "held"}; !slices.Equal(got, want) {
		t.Errorf("gc after the holder ended printed %q, want %q", got, want)
	}
	check([]string{"foreign", liveTemp}, []string{"held"})
}

// gcJSONEntry is an element of the output of gc -json, decoded.
type gcJSONEntry struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Removed bool   `json:"removed"`
	Error   string `json:"error"`
}

// decodeGC decodes the output of gc -json, checking that its elements
// have the fields of a removal that did not fail.
func decodeGC(t *testing.T, out string) []gcJSONEntry {
	t.Helper()
	var fields []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &fields); err != nil || fields == nil {
		t.Fatalf("gc -json printed %q, not a JSON array: %v", out, err)
	}
	for _, f := range fields {
		if got, want := slices.Sorted(maps.Keys(f)), []string{"kind", "name", "removed"}; !slices.Equal(got, want) {
			t.Errorf("fields = %q, want %q", got, want)
		}
	}
	var entries []gcJSONEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestGCReportFailure checks what gc -json says of a file it failed to
// remove, which is hard to arrange for real when the tests run as root.
func TestGCReportFailure(t *testing.T) {
	var out, errOut strings.Builder
	inv := &invocation{stdout: &out, stderr: &errOut}
	r := &gcReport{inv: inv, asJSON: true}
	r.add("held", "segment", errors.New("remove held: device or resource busy"))
	r.add("gone", "segment", nil)
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("gc -json printed %q: %v", out.String(), err)
	}
	want := []map[string]any{
		{"name": "held", "kind": "segment", "removed": false, "error": "remove held: device or resource busy"},
		{"name": "gone", "kind": "segment", "removed": true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) { // maps print sorted by key
		t.Errorf("gc -json printed %v, want %v", got, want)
	}
	if !inv.failed || errOut.String() != "shmkit: gc: remove held: device or resource busy\n" {
		t.Errorf("failed = %v, stderr %q; want the failure reported", inv.failed, errOut.String())
	}
}

// managerParent starts a manager server, writes the directory of its
// socket and the server's pid to the file it inherits, and waits to be
// killed.
var managerParent = process.Register("cmd_test.managerParent", func(ctx context.Context, _ int) (int, error) {
	m, err := manager.Start(ctx, nil)
	if err != nil {
		return 0, err
	}
	_, address := m.Address()
	f := process.InheritedFiles()[0]
	_, err = fmt.Fprintf(f, "%s %d\n", filepath.Dir(address), m.Process().Pid())
	f.Close()
	<-ctx.Done()
	return 0, errors.Join(err, m.Shutdown(context.Background()))
})

// TestGCManagerDirs has gc remove the socket directory of a manager server
// whose starting process was killed, and keep a live server's.
func TestGCManagerDirs(t *testing.T) {
	tmp, err := os.MkdirTemp("", "gc") // short: a socket's path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	live, err := manager.Start(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := live.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	_, address := live.Address()

	dir := t.TempDir()
	dead := deadManagerDir(t)
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"gc", "-n"}, "would remove " + dead + "\n"},
		{[]string{"gc"}, "removed " + dead + "\n"},
		{[]string{"gc"}, ""},
	} {
		code, out, errOut := shmkit(t, dir, tc.args...)
		if code != 0 || out != tc.out || errOut != "" {
			t.Errorf("shmkit %q: status %d, stdout %q, stderr %q; want 0 and %q", tc.args, code, out, errOut, tc.out)
		}
	}
	if exists(t, dead) {
		t.Errorf("gc left %s", dead)
	}

	dead = deadManagerDir(t)
	for _, tc := range []struct {
		args []string
		want []gcJSONEntry
	}{
		{[]string{"gc", "-json", "-n"}, []gcJSONEntry{{dead, "manager-dir", false, ""}}},
		{[]string{"gc", "-json"}, []gcJSONEntry{{dead, "manager-dir", true, ""}}},
		{[]string{"gc", "-json"}, []gcJSONEntry{}},
	} {
		code, out, errOut := shmkit(t, dir, tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("shmkit %q: status %d, stderr %q", tc.args, code, errOut)
		}
		if got := decodeGC(t, out); !slices.Equal(got, tc.want) {
			t.Errorf("shmkit %q printed %+v, want %+v", tc.args, got, tc.want)
		}
	}
	if exists(t, dead) {
		t.Errorf("gc left %s", dead)
	}
	if !exists(t, address) {
		t.Errorf("gc removed the socket %s of a live server", address)
	}
}

// deadManagerDir starts a manager server from a process that it then
// kills, and returns the socket directory that the process leaves behind.
func deadManagerDir(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := managerParent.Start(0, process.Files(w))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var dead string
	var server int
	_, err = fmt.Fscan(r, &dead, &server)
	stop(t, p) // SIGKILL: the parent cannot remove the directory
	if err != nil {
		t.Fatalf("reading the manager's directory: %v", err)
	}
	// The server, a daemon, is killed with its parent.
	shmtest.WaitUntil(t, "the killed parent's server to die", func() bool { return !proc.Alive(server, 0, 0) })
	return dead
}

// TestScansProcOnce runs the segment commands on many segments: each
// command must read /proc once, not once per segment, so that its cost is
// segments + processes rather than their product.
func TestScansProcOnce(t *testing.T) {
	dir := t.TempDir()
	const segments = 12
	for i := range segments {
		create(t, dir, fmt.Sprintf("seg%02d", i)).Close()
	}
	truncatedCopy(t, filepath.Join(dir, "seg00"), filepath.Join(dir, "broken"))
	p := hold(t, dir, "seg03")
	for _, args := range [][]string{{"ls"}, {"ls", "-json"}, {"inspect", "seg03"}, {"inspect", "-json", "seg03"}, {"gc", "-n"}, {"gc", "-json", "-n"}, {"gc"}} {
		scans := 0
		var out, errOut strings.Builder
		inv := &invocation{stdout: &out, stderr: &errOut, scan: func() (*proc.FileUsers, error) {
			scans++
			return proc.ScanUsers()
		}}
		if code := inv.run(t.Context(), append([]string{"-dir", dir}, args...)); code != 0 || errOut.Len() != 0 {
			t.Fatalf("%q: status %d, stderr %q", args, code, errOut.String())
		}
		if scans != 1 {
			t.Errorf("%q on %d segments scanned /proc %d times, want once", args, segments+1, scans)
		}
		if !strings.Contains(out.String(), strconv.Itoa(p.Pid())) && args[0] != "gc" {
			t.Errorf("%q does not show the holder %d as a user:\n%s", args, p.Pid(), out.String())
		}
	}
	// The last gc kept only the segment in use.
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 || ents[0].Name() != "seg03" {
		t.Errorf("after gc the directory holds %v (%v), want seg03 alone", ents, err)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "usage: shmkit"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"inspect"}, 2, "inspect takes one segment name"},
		{[]string{"inspect", "a", "b"}, 2, "inspect takes one segment name"},
		{[]string{"inspect", "-json"}, 2, "inspect takes one segment name"},
		{[]string{"inspect", "-bogus", "a"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"rm"}, 2, "rm takes one or more segment names"},
		{[]string{"ls", "extra"}, 2, "ls takes no arguments"},
		{[]string{"ls", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"gc", "now"}, 2, "gc takes no arguments"},
		{[]string{"gc", "-json", "now"}, 2, "gc takes no arguments"},
		{[]string{"gc", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"help"}, 0, ""},
	} {
		code, out, errOut := shmkit(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) || tc.code == 2 && !strings.Contains(errOut, "usage: shmkit") {
			t.Errorf("shmkit %q: status %d, stderr %q; want %d and %q with usage", tc.args, code, errOut, tc.code, tc.stderr)
		}
		if tc.code == 0 && !strings.HasPrefix(out, "usage: shmkit") {
			t.Errorf("shmkit %q: stdout %q, want the usage summary", tc.args, out)
		}
	}
	// The global flag is not confused with a command.
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"-dir"}, &out, &errOut); code != 2 {
		t.Errorf("shmkit -dir: status %d, want 2", code)
	}
}

func TestBench(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "c.svg")
	code, out, errOut := shmkit(t, t.TempDir(), "bench", "-procs", "1,2", "-runs", "1", "-time", "5ms",
		"-workloads", "raw.add,mutex.lock,go.mutex,queue.putget,queue.batch,pipe.send,go.chan,pool.map,pool.map1,pool.submit", "-chart", chart, "-q")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, errOut)
	}
	for _, w := range []string{"raw.add", "mutex.lock", "go.mutex", "queue.putget", "queue.batch", "pipe.send", "go.chan", "pool.map", "pool.map1", "pool.submit"} {
		row := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(w) + `\s+[0-9.]+\s+[0-9.]+$`)
		if !row.MatchString(out) {
			t.Errorf("no table row with two figures for %s in:\n%s", w, out)
		}
	}
	svg, err := os.ReadFile(chart)
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("mutex.lock")) {
		t.Errorf("chart %s: %v, %d bytes", chart, err, len(svg))
	}

	for _, bad := range [][]string{{"-procs", "0"}, {"-workloads", "nope"}, {"-chart", "c.gif"}, {"-runs", "0"}} {
		args := append([]string{"bench", "-q", "-time", "1ms", "-procs", "1", "-workloads", "raw.add"}, bad...)
		if code, _, _ := shmkit(t, t.TempDir(), args...); code == 0 {
			t.Errorf("bench %v succeeded", bad)
		}
	}
}

func TestFigure(t *testing.T) {
	for _, tc := range []struct {
		m    float64
		want string
	}{
		{123.456, "123.46"},
		{5.312, "5.31"},
		{0.512, "0.51"},
		{0.1, "0.10"},
		{0.0528, "0.053"},
		{0.00528, "0.0053"},
		{0, "0.00"},
	} {
		if got := figure(tc.m); got != tc.want {
			t.Errorf("figure(%v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}
