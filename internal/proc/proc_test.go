//go:build linux

package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseStatOddCommandNames(t *testing.T) {
	// The command name may hold spaces and parentheses; fields are counted
	// from the last ')'.
	line := "1234 (a) b (c)) S 99 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 777 100 200"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.ppid != 99 || st.start != 777 {
		t.Errorf("parseStat = %+v, want state S, ppid 99, start 777", st)
	}
	for _, bad := range []string{"", "1234 no paren", "1 (x) S 1 2", "1 (x) S notanumber 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 5"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = nil error", bad)
		}
	}
}

func TestSelfAndAlive(t *testing.T) {
	me, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if me.Pid != os.Getpid() || me.Start == 0 {
		t.Fatalf("Self = %+v", me)
	}
	if !Alive(me.Pid, me.Start, ^uint64(0)) {
		t.Error("Alive(self) = false")
	}
	if Alive(me.Pid, me.Start+1, ^uint64(0)) {
		t.Error("Alive(self with another start time) = true: pid reuse would fool it")
	}
	if Alive(0, 0, ^uint64(0)) {
		t.Error("Alive(pid 0) = true")
	}
}

func TestZombieIsDead(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	id, err := Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for it to exit without reaping it.
	deadline := time.Now().Add(5 * time.Second)
	for Alive(id.Pid, id.Start, ^uint64(0)) {
		if time.Now().After(deadline) {
			t.Fatal("child still alive after 5s")
		}
		time.Sleep(time.Millisecond)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, id.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("child not a zombie: %v", err)
	}
	if ppid, err := Parent(id.Pid); err != nil || ppid != os.Getpid() {
		t.Errorf("Parent(zombie) = %d, %v; want %d", ppid, err, os.Getpid())
	}
}

func TestScanUsers(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "users")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	u, err := ScanUsers()
	if err != nil {
		t.Fatal(err)
	}
	if pids, _ := u.Users(st.Dev, st.Ino); !slices.Equal(pids, []int{os.Getpid()}) {
		t.Errorf("Users = %v, want this process %d (holds it open)", pids, os.Getpid())
	}
	if err := unix.Ftruncate(int(f.Fd()), 4096); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	f.Close()
	u, err = ScanUsers()
	if err != nil {
		t.Fatal(err)
	}
	if pids, _ := u.Users(st.Dev, st.Ino); !slices.Equal(pids, []int{os.Getpid()}) {
		t.Errorf("Users after close = %v; want this process (maps it)", pids)
	}
	if pids, _ := u.Users(st.Dev, st.Ino+1<<40); len(pids) != 0 {
		t.Errorf("Users of a file nobody has = %v", pids)
	}
	ns, err := Namespace()
	if err != nil || ns == 0 {
		t.Errorf("Namespace = %d, %v", ns, err)
	}
}

func TestParseMapsLine(t *testing.T) {
	for _, tt := range []struct {
		line string
		id   FileID
		ok   bool
	}{
		{"7f0c1c000000-7f0c1c021000 rw-s 00000000 00:1a 12345  /dev/shm/a b (deleted)\n", FileID{unix.Mkdev(0, 0x1a), 12345}, true},
		{"00400000-00452000 r-xp 00000000 fd:01 9 /usr/bin/x", FileID{unix.Mkdev(0xfd, 1), 9}, true},
		{"00400000-00452000 r-xp 00000000 103:1f 9", FileID{unix.Mkdev(0x103, 0x1f), 9}, true},
		{"7ffd8a9e2000-7ffd8aa03000 rw-p 00000000 00:00 0   [stack]", FileID{}, false},
		{"7ffd8a9e2000-7ffd8aa03000 rw-p 00000000 00:00", FileID{}, false},
		{"a b c 0001 5", FileID{}, false},
		{"a b c zz:01 5", FileID{}, false},
		{"a b c 00:01 -5", FileID{}, false},
		{"", FileID{}, false},
	} {
		id, ok := parseMapsLine([]byte(tt.line))
		if id != tt.id || ok != tt.ok {
			t.Errorf("parseMapsLine(%q) = %v, %v; want %v, %v", tt.line, id, ok, tt.id, tt.ok)
		}
	}
}
