//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/layout"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// tempPrefix starts the names of the temporary files that package shm
// creates segments in on filesystems without O_TMPFILE:
// .shmkit-tmp-PID-HEX (docs/layout.md, section 2.3).
const tempPrefix = ".shmkit-tmp-"

// fileID identifies a file for as long as it exists, unlike its name.
type fileID struct{ dev, ino uint64 }

// statID returns the identity of the file fi describes.
func statID(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// openToOthers reports whether processes of users other than this one's
// may open the file fi describes: it belongs to another user, or its mode
// has group or other bits. A POSIX ACL cannot grant more than the mode's
// group bits (they hold the ACL mask), so the mode is enough. Processes
// that may ignore permissions (root's) are not considered.
func openToOthers(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o077 != 0
}

// probe is what ls and gc learn about one segment file.
type probe struct {
	name    string
	id      fileID
	size    int64 // the file's size
	shared  bool  // see openToOthers
	objects int
	creator int
	running bool // the creator still runs
	created time.Time
	err     error // why the file is not a usable segment; nil if it is one
}

// examine looks at the file dir/name. It reports ok == false, and a nil
// error, for a file that is not a shmkit segment, that this process may not
// open, that is gone, or that was replaced while examine looked at it. A
// shmkit segment that fails validation gives ok == true with the reason in
// p.err. examine closes everything it opened, its mapping of the segment
// included, before it returns, so that this process does not count among
// the segment's users.
func examine(dir, name string) (p probe, ok bool, err error) {
	path := filepath.Join(dir, name)
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return probe{}, false, nil
		}
		return probe{}, false, err
	}
	id, ok := statID(fi)
	if !ok || !fi.Mode().IsRegular() {
		return probe{}, false, nil
	}
	p = probe{name: name, id: id, size: fi.Size(), shared: openToOthers(fi)}

	seg, err := shm.Open(name, shm.WithDir(dir))
	if errors.Is(err, fs.ErrPermission) {
		seg, err = openReadOnly(path)
	}
	switch {
	case errors.Is(err, shm.ErrNotSegment) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		return probe{}, false, nil
	case err != nil:
		// Make sure that the verdict is about the file stat'ed above.
		if same, serr := isFile(path, id); !same || serr != nil {
			return probe{}, false, serr
		}
		p.err = err
		return p, true, nil
	}

	fi, err = segmentStat(seg)
	if err == nil && !sameFile(fi, id) {
		return probe{}, false, seg.Close()
	}
	if err == nil {
		p.size, p.shared = fi.Size(), openToOthers(fi)
		p.creator, p.created, p.running = seg.Creator(), seg.Created(), seg.CreatorRunning()
		p.err = guard(func() error {
			objs, err := seg.Objects()
			p.objects = len(objs)
			return err
		})
	}
	if cerr := seg.Close(); cerr != nil || err != nil {
		return probe{}, false, errors.Join(err, cerr)
	}
	return p, true, nil
}

// errReadOnly reports a segment that this user may read but not write,
// and so cannot map: segments are always mapped read-write.
var errReadOnly = errors.New("segment not writable by this user")

// openReadOnly maps the segment at path through a read-only descriptor.
// That cannot succeed, but shm.FromFile validates the header before it maps
// (docs/layout.md, section 4), which is enough to tell a segment this user
// may only read (errReadOnly) from a foreign file (shm.ErrNotSegment).
func openReadOnly(path string) (*shm.Segment, error) {
	// O_NONBLOCK: a FIFO put in the file's place must not block the open.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close() // read-only: nothing to lose
	seg, err := shm.FromFile(f)
	if errors.Is(err, fs.ErrPermission) {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errReadOnly}
	}
	return seg, err
}

// segmentStat returns the FileInfo of the file behind seg.
func segmentStat(seg *shm.Segment) (fs.FileInfo, error) {
	f, err := seg.File()
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return fi, err
}

func sameFile(fi fs.FileInfo, id fileID) bool {
	got, ok := statID(fi)
	return ok && got == id
}

// isFile reports whether path still names the file id.
func isFile(path string, id fileID) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sameFile(fi, id), nil
}

// guard runs f, which reads mapped segment memory, and turns a memory fault
// in it into an error. Another process may truncate a segment file after
// this one mapped it; reading beyond the new end raises SIGBUS, which would
// otherwise crash the command.
func guard(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		fault, ok := r.(interface{ Addr() uintptr })
		if !ok {
			panic(r)
		}
		err = fmt.Errorf("memory fault at %#x reading the segment (was its file truncated?)", fault.Addr())
	}()
	return f()
}

// users returns the pids of the live processes other than this one that
// mapped the file id or held it open when u was scanned, and whether there
// may be others that could not be seen: some processes could not be
// inspected and the file is open to processes of other users (see
// openToOthers).
func users(u *proc.FileUsers, id fileID, shared bool) (pids []int, incomplete bool) {
	pids, incomplete = u.Users(id.dev, id.ino)
	self := os.Getpid()
	return slices.DeleteFunc(slices.Clone(pids), func(pid int) bool { return pid == self }), incomplete && shared
}

// scanUsers reads /proc once, for a command to look up the users of every
// file it judges (see users).
func (inv *invocation) scanUsers() (*proc.FileUsers, error) {
	u, err := inv.scan()
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	return u, nil
}

// lsEntry is one segment in the output of ls. Its JSON field names are part
// of the command's interface.
type lsEntry struct {
	Name            string `json:"name"`
	Size            int64  `json:"size"`
	Objects         int    `json:"objects"`
	CreatorPid      int    `json:"creator_pid"`
	CreatorRunning  bool   `json:"creator_running"`
	Users           []int  `json:"users"`
	UsersIncomplete bool   `json:"users_incomplete"`
	Created         string `json:"created,omitempty"`
	Error           string `json:"error,omitempty"`

	created time.Time
}

func runLs(ctx context.Context, inv *invocation, args []string) error {
	flags := newFlagSet(inv, "ls [-json]")
	asJSON := flags.Bool("json", false, "print a JSON array instead of a table")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 0 {
		return usageError{msg: "ls takes no arguments"}
	}
	ents, err := os.ReadDir(inv.dir)
	if err != nil {
		return err
	}
	var probes []probe
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		p, ok, err := examine(inv.dir, e.Name())
		if err != nil {
			inv.errorf("ls: %s: %v", printable(e.Name()), err)
			continue
		}
		if ok {
			probes = append(probes, p)
		}
	}
	// One scan of /proc for all the segments, once they are all closed.
	list := []lsEntry{}
	if len(probes) > 0 {
		u, err := inv.scanUsers()
		if err != nil {
			return err
		}
		for _, p := range probes {
			pids, incomplete := users(u, p.id, p.shared)
			le := lsEntry{Name: p.name, Size: p.size, Users: append([]int{}, pids...), UsersIncomplete: incomplete}
			if p.err != nil {
				le.Error = cause(p.err)
			} else {
				le.Objects, le.CreatorPid, le.created = p.objects, p.creator, p.created
				le.CreatorRunning = p.running
				le.Created = p.created.Format(time.RFC3339Nano)
			}
			list = append(list, le)
		}
	}

	if *asJSON {
		return printJSON(inv, list)
	}
	// tabwriter aligns a column over consecutive lines that have it, so a
	// segment with an error is written with empty cells, and its message
	// then replaces them.
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tOBJECTS\tCREATOR\tUSERS\tAGE")
	now := time.Now()
	for _, le := range list {
		if le.Error != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t\t\n", printable(le.Name))
			continue
		}
		state := "dead"
		if le.CreatorRunning {
			state = "alive"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d %s\t%s\t%s\n", printable(le.Name), humanSize(le.Size), le.Objects,
			le.CreatorPid, state, pidList(le.Users, le.UsersIncomplete), humanAge(now.Sub(le.created)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(table.String(), "\n")
	sizeColumn := strings.Index(lines[0], "SIZE") // in characters, as the header is ASCII
	for i, le := range list {
		if le.Error != "" {
			name := []rune(lines[1+i])[:sizeColumn] // the name, padded
			lines[1+i] = string(name) + "error: " + printable(le.Error) + "\n"
		}
	}
	_, err = io.WriteString(inv.stdout, strings.Join(lines, ""))
	return err
}

// cause returns the message of err without the operation and path that an
// *fs.PathError adds, for a row that already names the file.
func cause(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return err.Error()
}

// pidList renders pids as "12,34", "-" for none, with ",?" (or "?" alone)
// when there may be more.
func pidList(pids []int, incomplete bool) string {
	s := make([]string, 0, len(pids)+1)
	for _, pid := range pids {
		s = append(s, strconv.Itoa(pid))
	}
	if incomplete {
		s = append(s, "?")
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// humanSize renders n bytes with a binary unit: 512B, 4.0K, 1.5M.
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	const units = "KMGTPE"
	f, i := float64(n)/1024, 0
	for f >= 1023.95 && i < len(units)-1 { // would round to 1024.0
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%c", f, units[i])
}

// humanAge renders d in its largest whole unit: 42s, 5m, 7h, 3d.
func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(max(d, 0)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int64(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int64(d/(24*time.Hour)))
	}
}

// printable returns s unchanged if it is valid UTF-8 made of printable
// characters, and quoted otherwise. Names and types come from other
// processes and may hold tabs, newlines or terminal escape sequences.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// valueWidth is how many characters of a value inspect shows.
const valueWidth = 60

// arrayShown is how many elements of an array inspect shows.
const arrayShown = 8

// inspectReport is what inspect shows of a segment. Its JSON field names
// are part of the command's interface.
type inspectReport struct {
	Name            string          `json:"name"`
	Size            int64           `json:"size"`
	Available       int64           `json:"available"`
	CreatorPid      int             `json:"creator_pid"`
	CreatorRunning  bool            `json:"creator_running"`
	Created         string          `json:"created"`
	Users           []int           `json:"users"`
	UsersIncomplete bool            `json:"users_incomplete"`
	Objects         []inspectObject `json:"objects"`
	Error           string          `json:"error,omitempty"` // why the directory could not be read

	created time.Time
}

// inspectObject is one row of inspect's table of objects.
type inspectObject struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Type   string `json:"type"` // empty for none
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
	Value  string `json:"value"` // the VALUE column, see describe
}

func runInspect(ctx context.Context, inv *invocation, args []string) error {
	flags := newFlagSet(inv, "inspect [-json] NAME")
	asJSON := flags.Bool("json", false, "print a JSON object instead of tables")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return usageError{msg: "inspect takes one segment name"}
	}
	seg, err := shm.Open(flags.Arg(0), shm.WithDir(inv.dir))
	if err != nil {
		return err
	}
	r := inspectReport{Objects: []inspectObject{}}
	var objs []shm.Object
	readErr := guard(func() error {
		r.Available = seg.Available()
		var err error
		objs, err = seg.Objects()
		return err
	})
	if readErr != nil {
		objs = nil
	}
	for _, obj := range objs {
		var v string
		if err := guard(func() error { v = describe(obj); return nil }); err != nil {
			v = "error: " + err.Error()
		}
		r.Objects = append(r.Objects, inspectObject{Name: obj.Name, Kind: obj.Kind, Type: obj.Type,
			Size: obj.Size, Offset: obj.Offset, Value: v})
	}
	fi, serr := segmentStat(seg)
	if cerr := seg.Close(); serr == nil {
		serr = cerr
	}
	if serr != nil {
		return errors.Join(readErr, serr)
	}
	u, err := inv.scanUsers()
	if err != nil {
		return errors.Join(readErr, err)
	}
	id, _ := statID(fi)
	pids, incomplete := users(u, id, openToOthers(fi))
	r.Name, r.Size = seg.Name(), seg.Size()
	r.CreatorPid, r.CreatorRunning, r.created = seg.Creator(), seg.CreatorRunning(), seg.Created()
	r.Created = r.created.Format(time.RFC3339Nano)
	r.Users, r.UsersIncomplete = append([]int{}, pids...), incomplete
	if readErr != nil {
		r.Error = readErr.Error()
	}

	if *asJSON {
		if err := printJSON(inv, r); err != nil {
			return errors.Join(readErr, err)
		}
		return readErr
	}
	tw := tabwriter.NewWriter(inv.stdout, 0, 0, 1, ' ', 0)
	state := "dead"
	if r.CreatorRunning {
		state = "alive"
	}
	now := time.Now()
	fmt.Fprintf(tw, "name:\t%s\n", printable(r.Name))
	fmt.Fprintf(tw, "size:\t%d bytes (%s)\n", r.Size, humanSize(r.Size))
	fmt.Fprintf(tw, "available:\t%d bytes\n", r.Available)
	fmt.Fprintf(tw, "creator:\tpid %d (%s)\n", r.CreatorPid, state)
	fmt.Fprintf(tw, "created:\t%s (%s ago)\n", r.created.Format(time.RFC3339), humanAge(now.Sub(r.created)))
	fmt.Fprintf(tw, "users:\t%s\n", pidList(r.Users, r.UsersIncomplete))
	if readErr == nil {
		fmt.Fprintf(tw, "objects:\t%d\n", len(r.Objects))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	if len(r.Objects) == 0 {
		return nil
	}

	fmt.Fprintln(inv.stdout)
	tw = tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tTYPE\tSIZE\tOFFSET\tVALUE")
	for _, o := range r.Objects {
		typ := o.Type
		if typ == "" {
			typ = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", printable(o.Name), printable(o.Kind), printable(typ),
			o.Size, o.Offset, o.Value)
	}
	return tw.Flush()
}

// describe renders the VALUE column of inspect for obj. It reads the
// segment's memory, so it must run under guard.
func describe(obj shm.Object) string {
	var s string
	var err error
	switch obj.Kind {
	case value.Kind:
		s, err = describeValue(obj)
	case array.Kind:
		s, err = describeArray(obj)
	case queue.Kind, queue.JoinableKind:
		s, err = describeQueue(obj)
	case queue.PipeKind:
		s, err = describePipe(obj)
	default:
		return "-"
	}
	if err != nil {
		return printable("error: " + err.Error())
	}
	return truncate(printable(s), valueWidth)
}

func describeValue(obj shm.Object) (string, error) {
	t, err := layout.Parse(obj.Layout)
	if err != nil {
		return "", err
	}
	if t.Size == 0 {
		// Nothing to read (and value.Peek cannot read an empty value);
		// shmkit never makes one, but other programs might.
		return format(t, nil), nil
	}
	b, err := value.Peek(obj)
	if err != nil {
		return "", err
	}
	if len(b) < t.Size {
		return "", fmt.Errorf("value: %d bytes for a %d-byte %s", len(b), t.Size, obj.Type)
	}
	return format(t, b), nil
}

func describeArray(obj shm.Object) (string, error) {
	b, n, err := array.Peek(obj, arrayShown)
	if err != nil {
		return "", err
	}
	t, err := layout.Parse(obj.Layout)
	if err != nil {
		return "", err
	}
	if t.Size == 0 {
		return "", fmt.Errorf("array: object %q has elements of no size", obj.Name)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "[len %d]", n)
	for e := range slices.Chunk(b[:len(b)/t.Size*t.Size], t.Size) {
		sb.WriteByte(' ')
		sb.WriteString(format(t, e))
	}
	if n > arrayShown {
		sb.WriteString(" …")
	}
	return sb.String(), nil
}

// describeQueue renders a queue's statistics (queue.Stats), for example
// "len 3 cap 1024 max 8B open abandoned 0 lost 0 procs 2". It reads the
// object without attaching to it, so inspect takes none of the queue's
// process records.
func describeQueue(obj shm.Object) (string, error) {
	st, err := queue.Stat(obj)
	if err != nil {
		return "", err
	}
	state := "open"
	if st.Closed {
		state = "closed"
	}
	return fmt.Sprintf("len %d cap %d max %s %s abandoned %d lost %d procs %d",
		st.Len, st.Cap, humanSize(int64(st.MaxMessage)), state, st.Abandoned, st.Lost, st.Processes), nil
}

// describePipe renders a pipe's statistics (queue.PipeStats) in the
// value column's width, for example "ends pid 812/closed waiting 0/2 cap 16
// max 1KiB": the state of end 0 and end 1, then the messages waiting to be
// received by each, with "one-way " in front and one count for a one-way
// pipe. An end is "unopened", "closed", "pid N" or "pid N dead" (its
// process died without closing it). Like describeQueue, it opens no end.
func describePipe(obj shm.Object) (string, error) {
	st, err := queue.StatPipe(obj)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	if st.OneWay {
		sb.WriteString("one-way ")
	}
	sb.WriteString("ends ")
	for e, end := range st.Ends {
		if e > 0 {
			sb.WriteString("/")
		}
		switch {
		case !end.Opened:
			sb.WriteString("unopened")
		case end.Closed:
			sb.WriteString("closed")
		case end.Dead:
			fmt.Fprintf(&sb, "pid %d dead", end.Pid)
		default:
			fmt.Fprintf(&sb, "pid %d", end.Pid)
		}
	}
	fmt.Fprintf(&sb, " waiting %d", st.Len[0])
	if !st.OneWay {
		fmt.Fprintf(&sb, "/%d", st.Len[1])
	}
	fmt.Fprintf(&sb, " cap %d max %s", st.Cap, humanSize(int64(st.MaxMessage)))
	return sb.String(), nil
}

// format renders b, a value of type t at least t.Size bytes long, as
// t.Format does, but only the part that fits in valueWidth characters,
// followed by arbitrary text where there is more. The descriptor comes
// from another process: "[1000000000][1000000000]struct {}" is a valid
// one, and formatting it whole would take forever.
func format(t *layout.Type, b []byte) string {
	short, _ := shorten(t, valueWidth)
	return short.Format(b)
}

// shorten returns a copy of t whose arrays and structs keep only as many
// elements and fields as it takes for t.Format to have written width
// characters, so that formatting the copy gives the same first width
// characters as formatting t, and more than width characters if and only
// if formatting t does. It also returns a lower bound, at most width, of
// the length of the copy's formatted text. Sizes and offsets are kept, so
// the copy formats t's bytes.
func shorten(t *layout.Type, width int) (*layout.Type, int) {
	switch t.Kind {
	case "array":
		elem, m := shorten(t.Elem, width)
		// Elements take at least m characters each and are separated by
		// a space, so the closing "]" after k of them comes at offset
		// k*(m+1) or later; past the first width characters once
		// k >= width/(m+1).
		c := *t
		c.Elem, c.Len = elem, min(t.Len, (width+m)/(m+1))
		return &c, min(width, 2+c.Len*(m+1)-min(c.Len, 1))
	case "struct":
		c := *t
		c.Fields = nil
		n := 1 // "{", then "Name:value" and a space or "}" per field
		for _, f := range t.Fields {
			if n > width {
				break
			}
			ft, m := shorten(f.Type, width)
			c.Fields = append(c.Fields, layout.Field{Name: f.Name, Off: f.Off, Type: ft})
			n += utf8.RuneCountInString(f.Name) + 1 + m + 1
		}
		return &c, min(width, max(n, 2))
	case "bool":
		return t, 4
	default:
		return t, 1
	}
}

// truncate cuts s to width characters, the last of them "…".
func truncate(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	i := 0
	for range width - 1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

func runRm(ctx context.Context, inv *invocation, args []string) error {
	flags := newFlagSet(inv, "rm NAME...")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		return usageError{msg: "rm takes one or more segment names"}
	}
	for _, name := range flags.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := shm.Remove(name, shm.WithDir(inv.dir)); err != nil {
			inv.errorf("rm: %v", err)
		}
	}
	return nil
}

func runGC(ctx context.Context, inv *invocation, args []string) (err error) {
	flags := newFlagSet(inv, "gc [-json] [-n]")
	asJSON := flags.Bool("json", false, "print a JSON array instead of a line per file")
	dryRun := flags.Bool("n", false, "print what would be removed, and remove nothing")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 0 {
		return usageError{msg: "gc takes no arguments"}
	}
	r := &gcReport{inv: inv, dryRun: *dryRun, asJSON: *asJSON}
	// The array is printed however gc ends, with what it removed by then.
	defer func() {
		if ferr := r.flush(); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}()
	ents, err := os.ReadDir(inv.dir)
	if err != nil {
		return err
	}
	// Judge the files first and find their users afterwards, with one scan
	// of /proc for all of them.
	var cands []candidate
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		var c candidate
		var ok bool
		if strings.HasPrefix(name, tempPrefix) {
			c, ok, err = tempCandidate(inv, name)
		} else {
			c, ok, err = segmentCandidate(inv, name)
		}
		switch {
		case err != nil:
			inv.errorf("gc: %s: %v", printable(name), err)
		case ok:
			cands = append(cands, c)
		}
	}
	var u *proc.FileUsers
	if len(cands) > 0 {
		if u, err = inv.scanUsers(); err != nil {
			return err
		}
	}
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !unused(inv, u, c) {
			continue
		}

		// Remove only the file judged above, not one that has taken its
		// name since. (A process can still open it between the scan and
		// the removal; see the package documentation.)
		path := filepath.Join(inv.dir, c.name)
		if same, err := isFile(path, c.id); !same || err != nil {
			if err != nil {
				inv.errorf("gc: %v", err)
			}
			continue
		}
		kind := "segment"
		if c.temp {
			kind = "temp"
		}
		switch {
		case *dryRun:
			err = nil
		case c.temp:
			err = os.Remove(path)
		default:
			err = shm.Remove(c.name, shm.WithDir(inv.dir))
		}
		r.add(c.name, kind, err)
	}
	gcManagerDirs(r)
	return nil
}

// candidate is a file that gc removes if no process uses it.
type candidate struct {
	name   string
	id     fileID // the file judged
	shared bool   // see openToOthers
	temp   bool   // a temporary file of package shm, not a segment
}

// segmentCandidate decides whether the file name is a candidate for gc: a
// shmkit segment, sound or damaged so that no process can open it any
// more.
func segmentCandidate(inv *invocation, name string) (candidate, bool, error) {
	p, ok, err := examine(inv.dir, name)
	if err != nil || !ok {
		return candidate{}, false, err
	}
	switch {
	case p.err == nil,
		errors.Is(p.err, shm.ErrTruncated),
		errors.Is(p.err, shm.ErrCorrupt),
		errors.Is(p.err, shm.ErrNotReady):
	default:
		// In particular ErrNamespace and ErrVersion: processes in another
		// pid namespace, which /proc does not show, may use it.
		inv.notef("gc: keeping %s: cannot tell who uses it: %s", printable(name), cause(p.err))
		return candidate{}, false, nil
	}
	return candidate{name: name, id: p.id, shared: p.shared}, true, nil
}

// tempCandidate decides whether the file name, which starts with tempPrefix,
// is a candidate for gc: it is named like package shm's temporary files,
// and the process that created it is gone.
func tempCandidate(inv *invocation, name string) (candidate, bool, error) {
	pidText, suffix, ok := strings.Cut(name[len(tempPrefix):], "-")
	pid, err := strconv.ParseUint(pidText, 10, 31)
	if !ok || err != nil || pid == 0 || suffix == "" || strings.Trim(suffix, "0123456789abcdef") != "" {
		return candidate{}, false, nil // not one of ours
	}
	if proc.Alive(int(pid), 0, 0) { // any process with the pid: a temporary file carries no start time
		return candidate{}, false, nil
	}
	fi, err := os.Lstat(filepath.Join(inv.dir, name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return candidate{}, false, err
	}
	id, ok := statID(fi)
	if !ok || !fi.Mode().IsRegular() {
		return candidate{}, false, nil
	}
	return candidate{name: name, id: id, shared: openToOthers(fi), temp: true}, true, nil
}

// unused reports whether, by the scan u, no process but this one uses the
// candidate c, and whether that answer can be trusted; it explains on
// standard error why it keeps a file it cannot judge.
func unused(inv *invocation, u *proc.FileUsers, c candidate) bool {
	pids, incomplete := users(u, c.id, c.shared)
	switch {
	case len(pids) > 0:
		return false
	case incomplete:
		inv.notef("gc: keeping %s: other users' processes may open it, and some processes could not be inspected",
			printable(c.name))
		return false
	}
	return true
}
