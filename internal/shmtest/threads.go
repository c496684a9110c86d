package shmtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Threads returns the number of OS threads of process pid (0: this
// process), or 0 if /proc does not say.
func Threads(pid int) int {
	if pid == 0 {
		pid = os.Getpid()
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
