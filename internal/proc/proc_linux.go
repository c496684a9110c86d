//go:build linux

package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// Users returns the pids of the processes that map the file identified by
// (dev, ino) or hold it open, and whether some processes could not be
// inspected (their /proc entries were not readable), in which case the answer
// may be incomplete.
func Users(dev, ino uint64) (pids []int, incomplete bool, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		uses, err := usesFile(pid, dev, ino)
		switch {
		case err == nil:
			if uses {
				pids = append(pids, pid)
			}
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH):
			// The process exited while we looked.
		default:
			incomplete = true
		}
	}
	return pids, incomplete, nil
}

func usesFile(pid int, dev, ino uint64) (bool, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	f, err := os.Open(dir + "/maps")
	if err != nil {
		return false, err
	}
	defer f.Close()
	major, minor := unix.Major(dev), unix.Minor(dev)
	devField := fmt.Sprintf("%02x:%02x", major, minor)
	inoField := strconv.FormatUint(ino, 10)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// address perms offset dev inode [path]
		fl := strings.Fields(sc.Text())
		if len(fl) >= 5 && fl[4] == inoField && fl[3] == devField {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Stat(dir+"/fd/"+fd.Name(), &st) == nil && st.Dev == dev && st.Ino == ino {
			return true, nil
		}
	}
	return false, nil
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
