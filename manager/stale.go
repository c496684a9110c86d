package manager

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shmkit/shmkit/internal/proc"
)

// dirPrefix starts the names of the directories Start makes, under
// os.TempDir, for its servers' sockets. The rest of a name records the
// process that made the directory, which removes it again at Shutdown:
// PID-START-NS-RANDOM, its pid, start time (see internal/proc) and pid
// namespace in decimal, then os.MkdirTemp's random number. A process
// killed with SIGKILL cannot remove its directory, and its server, a
// daemon, is killed with it; the name lets StaleDirs recognise such a
// directory as one whose owner is gone.
const dirPrefix = "shmkit-manager-"

// dirPattern returns the os.MkdirTemp pattern for this process's
// directories. Without /proc it has no identity to record, and returns a
// pattern that StaleDirs never judges.
func dirPattern() string {
	id, err := proc.Self()
	if err != nil {
		return dirPrefix
	}
	ns, err := proc.Namespace()
	if err != nil {
		return dirPrefix
	}
	return fmt.Sprintf("%s%d-%d-%d-", dirPrefix, id.Pid, id.Start, ns)
}

// dirOwner returns the process and pid namespace recorded in the name of
// a directory made with dirPattern.
func dirOwner(name string) (owner proc.ID, ns uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, dirPrefix)
	f := strings.Split(rest, "-")
	if !ok || len(f) != 4 || f[3] == "" {
		return proc.ID{}, 0, false
	}
	pid, err1 := strconv.ParseUint(f[0], 10, 31)
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	ns, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || pid == 0 {
		return proc.ID{}, 0, false
	}
	return proc.ID{Pid: int(pid), Start: start}, ns, true
}

// StaleDirs returns the socket directories that Start made, under
// os.TempDir, for processes that ended without Shutdown: killed with
// SIGKILL, say, which leaves a directory with a dead server's socket in
// it. A directory is stale only if it belongs to this user, its name
// records the process that made it, in this pid namespace, and that
// process (its pid and start time, so a reused pid does not count) is no
// longer running. So the directory of a live Manager, or of one being
// started, is never stale, and neither is one whose owner cannot be
// judged: made in another pid namespace, or by a version of this package
// that did not record its owner. Where there is no /proc to ask, none is.
func StaleDirs() ([]string, error) {
	ns, err := proc.Namespace()
	if errors.Is(err, proc.ErrNotSupported) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("manager: stale directories: %w", err)
	}
	dir := os.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("manager: stale directories: %w", err)
	}
	var stale []string
	for _, e := range ents {
		owner, dns, ok := dirOwner(e.Name())
		if !ok || dns != ns || !e.IsDir() { // IsDir: not a symbolic link either
			continue
		}
		path := filepath.Join(dir, e.Name())
		if ownedBySelf(path) && !proc.Alive(owner.Pid, owner.Start, ^uint64(0)) {
			stale = append(stale, path)
		}
	}
	return stale, nil
}

// RemoveStaleDirs removes the directories that StaleDirs returns, with
// what they hold, and returns those it removed. It goes on past a
// directory it cannot remove, and reports every failure. Start calls it,
// ignoring the result, so that directories left by killed processes do
// not pile up; `shmkit gc` calls it too.
func RemoveStaleDirs() ([]string, error) {
	stale, err := StaleDirs()
	errs := []error{err}
	var removed []string
	for _, path := range stale {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, fmt.Errorf("manager: remove stale directory: %w", err))
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}
