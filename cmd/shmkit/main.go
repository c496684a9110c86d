// Command shmkit lists, inspects and removes shmkit shared-memory segments,
// and measures how shared operations scale across processes.
//
// Usage:
//
//	shmkit [-dir DIR] COMMAND [ARGS]
//
// Segments are the files in DIR, which is /dev/shm unless -dir names
// another directory. Only shmkit segments, recognised by the magic number
// at the start of their header (docs/layout.md), are ever listed or
// removed: the shared memory of Python and other programs lives in the same
// directory and is left alone, as are directories, symbolic links and other
// special files. A file that this user may not read cannot be told apart
// from such a foreign file and is skipped too.
//
// # Commands
//
// ls [-json] lists the segments in DIR, sorted by name, one per line:
//
//	NAME  SIZE   OBJECTS  CREATOR     USERS   AGE
//	jobs  64.0K  3        4711 alive  4712,?  2h
//
// SIZE is the file's size. CREATOR is the pid of the process that created
// the segment and whether a process with that pid is running now; a
// process that has since been given the same pid counts. USERS lists the
// pids of the live processes that map the segment or hold it open, found by
// reading /proc, or "-" when there are none; a "?" at the end means that
// there may be users this command could not see (see "How gc decides"
// below). The command itself never counts as a user.
//
// A shmkit segment that fails validation (it is truncated or corrupt, was
// written by a newer version of shmkit, was never finished, or was made in
// another pid namespace) is listed with the reason in place of the columns,
// and so is one that this user may read but not write, since segments are
// always mapped read-write. The temporary files of segments being created
// (.shmkit-tmp-...) are not listed; gc removes those left behind.
//
// With -json, ls prints a JSON array with one object per segment. Its field
// names are stable: name; size (bytes); objects; creator_pid;
// creator_running; users (an array of pids); users_incomplete (the "?"
// above); created (RFC 3339); and error, present only for a segment that
// failed validation, for which objects, creator_pid and creator_running
// are zero and created is absent.
//
// inspect [-json] NAME prints the segment's header (size, bytes still
// available for objects, creator, creation time, users) and a table of its
// objects: name, kind, Go type, size in bytes, offset in the segment, and
// value. The value of a "value" object is its current contents, written
// as fmt's %+v would write them; an "array" object shows its length and
// its first eight elements; a "queue" or "jqueue" (joinable) object shows
// its statistics, read without attaching to it:
//
//	len 3 cap 1024 max 8B open abandoned 0 lost 0 procs 2
//
// that is the messages in it, its capacity, its largest message, whether
// it is open or closed for writing, how many claims of producers that died
// inside Put were released, for a joinable queue how many tasks consumers
// took with them when they died, and how many process records are in use
// (by live or dead processes). Other kinds show "-". Values are cut to 60
// characters, ending in "…". An object that cannot be decoded shows
// "error: ..." in its row, and the others are still listed. If the
// directory of objects cannot be read, inspect shows the header, reports
// the error and exits with status 1.
//
// With -json, inspect prints a JSON object instead. Its field names are
// stable: name; size (bytes); available (bytes); creator_pid;
// creator_running; created (RFC 3339); users (an array of pids);
// users_incomplete (a "?" in the users); objects, an array with one
// object per row of the table, with fields name, kind, type (empty for an
// object without one), size, offset, and value (the text of the VALUE
// column, "error: ..." included); and error, present only when the
// directory could not be read, for which objects is empty. A segment that
// cannot be opened at all is reported on standard error only.
//
// rm NAME... removes the named segments. It refuses files that are not
// shmkit segments. Processes that have a removed segment open keep using it;
// its memory is freed when the last of them closes it.
//
// gc [-json] [-n] removes the segments in DIR that no live process uses,
// the temporary files left behind by processes that died while creating a
// segment on a filesystem without O_TMPFILE, and the socket directories
// (shmkit-manager-..., in $TMPDIR or /tmp, whatever DIR is) left behind by
// processes that started a manager server and died without shutting it
// down, which manager.StaleDirs describes. With -n it prints what it would
// remove and removes nothing. It prints one line per file removed (or
// that would be removed), directories by their full path, and explains on
// standard error why it keeps a segment it cannot judge.
//
// With -json, gc prints instead one JSON array, [] if there is nothing to
// remove, with an object for each file or directory removed, or that
// would be removed, or that gc failed to remove. Its field names are
// stable: name (the name of a segment or temporary file, the full path of
// a directory); kind ("segment", "temp" or "manager-dir"); removed (false
// with -n and on failure); and error, present only when removing failed.
// A failure is also reported on standard error, and the reasons for
// keeping a segment go there too. gc prints the array even when it stops
// early on an error.
//
// bench [FLAGS] [FAMILY...] measures shared counters, locks, queues,
// pipes, pools and the manager as processes are added, next to Go's
// in-process primitives and, when python3 and redis-server are installed,
// Python's multiprocessing and Redis in the same run; it prints a table
// naming the machine and draws a chart. bench -h lists its families, rows
// and flags.
//
// version [-json] prints the version of shmkit, the Go release it was
// built with, and the operating system and architecture it was built for:
//
//	shmkit v0.3.0 go1.26.8 linux/amd64
//
// A shmkit built from a source tree to which the go command could give no
// version has version "(devel)". It is then followed by the commit the
// tree was at, with "+dirty" if the tree had uncommitted changes, and the
// commit's time, when the build recorded them:
//
//	shmkit (devel) 9d7ec8a1b2c3+dirty 2026-12-03T13:00:00Z go1.26.8 linux/amd64
//
// A shmkit built inside another module, as a tool of it for example,
// reports the version of shmkit that the module requires, and no commit.
// With -json, version prints a JSON object with the stable fields
// version; revision (the whole commit hash, or empty); time (RFC 3339, or
// empty); modified (the "+dirty" above); go; os; and arch. The commit
// fields are filled in whenever the build recorded them, whatever the
// version.
//
// help prints a usage summary.
//
// # How gc decides
//
// A segment is in use while some process maps it or holds a descriptor for
// it. gc examines every segment and closes its own mapping of each, then
// reads /proc/PID/maps and /proc/PID/fd of every process once, and looks
// each segment up by the file's device and inode number in what it read
// (ls and inspect find USERS the same way, so the commands cost segments
// plus processes, not their product). It removes the segment only if no
// process other than gc itself uses it, and only if that list can be
// trusted.
//
// The list may be incomplete: a process's /proc entries cannot be read by
// another user (unless that user is root), and some cannot be read at all.
// When that happens, gc keeps every segment that processes of other users
// may open: one owned by another user, or with any group or other
// permission bits. A segment that this user owns with mode 0600, the
// default, can only be opened by this user's processes (and by root's),
// which gc can normally inspect, so it is removed even then.
//
// gc also removes segments that are truncated, corrupt or were never
// finished, under the same rules, since no process can open them any more.
// It keeps segments made in another pid namespace and segments written by
// a newer version of shmkit, whose users may be processes that /proc does
// not show.
//
// A temporary file .shmkit-tmp-PID-HEX is removed when no process with pid
// PID is running and, by the rules above, no process uses the file.
//
// gc cannot know that a process will open a segment later: a program that
// creates a segment, closes it and expects another to open it afterwards
// loses it to gc, as it would to rm. Nor can gc stop a process from opening
// a segment between the scan of /proc and the removal; such a process keeps
// the segment it opened, but the name is gone.
//
// # Exit status
//
// shmkit exits with status 0 on success, 1 when something failed (each
// failure is reported on standard error as "shmkit: ..."), and 2 for an
// unknown command or wrong arguments.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

func main() {
	process.Main() // a worker process (bench) runs its function here and exits

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	// After the first interrupt, restore the default action, so that a
	// second one ends the command at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageText = `usage: shmkit [-dir DIR] COMMAND [ARGS]

Commands:
  ls [-json]            list the segments in DIR
  inspect [-json] NAME  show a segment's header and objects
  rm NAME...            remove segments
  gc [-json] [-n]       remove segments, temporary files and manager
                        directories that no process uses
  bench [FLAGS] [FAMILY...]
                        measure shared operations across processes, beside
                        Python and Redis (bench -h)
  version [-json]       show shmkit's version and the Go it was built with
  help                  show this summary

Flags:
  -dir DIR              directory holding the segments (default ` + shm.DefaultDir + `)
`

// invocation is what a subcommand works with: the directory, the output
// streams, how to find the users of files and the build information,
// and whether it has reported a failure.
type invocation struct {
	dir            string
	stdout, stderr io.Writer
	scan           func() (*proc.FileUsers, error) // proc.ScanUsers; tests count the calls
	buildInfo      func() (*debug.BuildInfo, bool) // debug.ReadBuildInfo; tests give other builds'
	failed         bool
}

// errorf reports a failure on standard error and makes the command exit
// with status 1 once it has finished.
func (inv *invocation) errorf(format string, args ...any) {
	fmt.Fprintf(inv.stderr, "shmkit: "+format+"\n", args...)
	inv.failed = true
}

// notef reports something that is not a failure on standard error.
func (inv *invocation) notef(format string, args ...any) {
	fmt.Fprintf(inv.stderr, "shmkit: "+format+"\n", args...)
}

// usageError reports a command line that does not make sense; run prints
// its message and the usage summary, unless the flag package has already
// explained the problem, and exits with status 2.
type usageError struct {
	msg      string
	reported bool // by the flag package
}

func (e usageError) Error() string { return e.msg }

// run runs the command line args (without the program name), writing to
// stdout and stderr, and returns the exit status. It stops early, with an
// error, when ctx is cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	inv := &invocation{stdout: stdout, stderr: stderr, scan: proc.ScanUsers, buildInfo: debug.ReadBuildInfo}
	return inv.run(ctx, args)
}

// run runs the command line args with inv's streams, scan and buildInfo,
// setting inv.dir from them, and returns the exit status.
func (inv *invocation) run(ctx context.Context, args []string) int {
	stdout, stderr := inv.stdout, inv.stderr
	global := flag.NewFlagSet("shmkit", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usageText) }
	dir := global.String("dir", shm.DefaultDir, "directory holding the segments")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if global.NArg() == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	if *dir == "" {
		fmt.Fprintf(stderr, "shmkit: -dir must not be empty\n%s", usageText)
		return 2
	}

	inv.dir = *dir
	cmd, rest := global.Arg(0), global.Args()[1:]
	var err error
	switch cmd {
	case "ls":
		err = runLs(ctx, inv, rest)
	case "inspect":
		err = runInspect(ctx, inv, rest)
	case "rm":
		err = runRm(ctx, inv, rest)
	case "gc":
		err = runGC(ctx, inv, rest)
	case "bench":
		err = runBench(ctx, rest, stdout)
	case "version":
		err = runVersion(inv, rest)
	case "help":
		fmt.Fprint(stdout, usageText)
	default:
		err = usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
	}

	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		// The flag package has printed the command's flags.
		return 0
	case errors.As(err, &ue):
		if !ue.reported {
			fmt.Fprintf(stderr, "shmkit: %s\n%s", ue.msg, usageText)
		}
		return 2
	case err != nil:
		inv.errorf("%v", err)
	}
	if inv.failed {
		return 1
	}
	return 0
}

// newFlagSet returns a flag set for the subcommand that synopsis
// describes ("ls [-json]"), which reports its errors on inv's standard
// error.
func newFlagSet(inv *invocation, synopsis string) *flag.FlagSet {
	name, _, _ := strings.Cut(synopsis, " ")
	fs := flag.NewFlagSet("shmkit "+name, flag.ContinueOnError)
	fs.SetOutput(inv.stderr)
	fs.Usage = func() {
		fmt.Fprintf(inv.stderr, "usage: shmkit [-dir DIR] %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's arguments. A bad flag, which the flag
// package reports, becomes a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{msg: err.Error(), reported: true}
	}
	return nil
}

// printJSON writes v to standard output as indented JSON, as the commands
// do with -json.
func printJSON(inv *invocation, v any) error {
	enc := json.NewEncoder(inv.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
