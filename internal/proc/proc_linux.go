//go:build linux

package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var self = sync.OnceValues(func() (ID, error) {
	pid := os.Getpid()
	st, err := readStat(pid)
	if err != nil {
		return ID{}, err
	}
	return ID{Pid: pid, Start: st.start}, nil
})

// Self returns the identity of the calling process. It reads /proc once.
func Self() (ID, error) { return self() }

type stat struct {
	state byte
	ppid  int
	start uint64
}

// readStat parses /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("proc: malformed stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return stat{}, errors.New("proc: malformed stat: too few fields")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return stat{}, fmt.Errorf("proc: malformed stat ppid: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("proc: malformed stat starttime: %w", err)
	}
	return stat{state: f[0][0], ppid: ppid, start: start}, nil
}

// Alive reports whether the process that started at start (compared on the
// bits in mask) still runs under pid. A zombie counts as dead: it runs no
// more code, and its parent may simply not have reaped it yet. When /proc
// cannot tell (it cannot be read, or hides other users' processes), Alive
// answers true unless the kernel says the pid does not exist, because
// declaring a live lock owner dead would break mutual exclusion while the
// opposite only delays recovery.
func Alive(pid int, start, mask uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ESRCH) {
			return true
		}
		// With /proc mounted hidepid=2, other users' processes have no
		// entry; ask the kernel whether the pid exists at all (EPERM: it
		// does, and is not ours).
		return unix.Kill(pid, 0) != unix.ESRCH
	}
	if st.state == 'Z' || st.state == 'X' || st.state == 'x' {
		return false
	}
	return st.start&mask == start&mask
}

// Lookup returns the identity of the process that now holds pid.
func Lookup(pid int) (ID, error) {
	st, err := readStat(pid)
	if err != nil {
		return ID{}, err
	}
	return ID{Pid: pid, Start: st.start}, nil
}

// Parent returns the parent pid of pid.
func Parent(pid int) (int, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return st.ppid, nil
}

// Namespace returns the inode of the calling process's pid namespace. Pids
// mean different things in different namespaces, so processes that share
// owner-tracking state must agree on it.
func Namespace() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return 0, &fs.PathError{Op: "stat", Path: "/proc/self/ns/pid", Err: err}
	}
	return st.Ino, nil
}

// ScanUsers reads the memory maps and open descriptors of every process
// once and returns, for each file they mention, the processes that map it
// or hold it open. Processes whose /proc entries cannot be read make the
// answer incomplete (see FileUsers.Users); processes that exit during the
// scan are left out.
func ScanUsers() (*FileUsers, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	u := &FileUsers{pids: make(map[FileID][]int)}
	used := make(map[FileID]struct{})
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		clear(used)
		err = filesUsed(pid, used)
		switch {
		case err == nil:
			for id := range used {
				u.pids[id] = append(u.pids[id], pid)
			}
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH):
			// The process exited while we looked.
		default:
			u.incomplete = true
		}
	}
	for _, pids := range u.pids {
		slices.Sort(pids)
	}
	return u, nil
}

// filesUsed adds to used the files that process pid maps or holds open.
func filesUsed(pid int, used map[FileID]struct{}) error {
	dir := "/proc/" + strconv.Itoa(pid)
	maps, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return err
	}
	for line := range bytes.Lines(maps) {
		if id, ok := parseMapsLine(line); ok {
			used[id] = struct{}{}
		}
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return err
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Stat(dir+"/fd/"+fd.Name(), &st) == nil { // an error: the descriptor was closed meanwhile
			used[FileID{Dev: st.Dev, Ino: st.Ino}] = struct{}{}
		}
	}
	return nil
}

// parseMapsLine returns the file that a line of /proc/PID/maps maps:
// "address perms offset major:minor inode [path]", with major and minor in
// hexadecimal and the inode in decimal. Anonymous mappings (inode 0) and
// malformed lines give ok == false.
func parseMapsLine(line []byte) (id FileID, ok bool) {
	f := bytes.Fields(line)
	if len(f) < 5 {
		return FileID{}, false
	}
	majorText, minorText, found := bytes.Cut(f[3], []byte(":"))
	major, err1 := strconv.ParseUint(string(majorText), 16, 32)
	minor, err2 := strconv.ParseUint(string(minorText), 16, 32)
	ino, err3 := strconv.ParseUint(string(f[4]), 10, 64)
	if !found || err1 != nil || err2 != nil || err3 != nil || ino == 0 {
		return FileID{}, false
	}
	return FileID{Dev: unix.Mkdev(uint32(major), uint32(minor)), Ino: ino}, true
}

// Threads returns the number of threads process pid has.
func Threads(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("proc: no thread count for %d", pid)
}
