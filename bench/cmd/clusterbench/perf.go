package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// perfSession is one `perf record` of on-CPU time (cpu-clock: this VM has
// no hardware counters) over several processes at once, user and kernel.
type perfSession struct {
	perf, out string
	cmd       *exec.Cmd
}

func startPerf(perf string, pids []int, out string) (*perfSession, error) {
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = strconv.Itoa(p)
	}
	cmd := exec.Command(perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-p", strings.Join(ids, ","), "-o", out)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// perf gives no sign of having attached; it takes well under this.
	time.Sleep(300 * time.Millisecond)
	return &perfSession{perf: perf, out: out, cmd: cmd}, nil
}

// top stops the recording (SIGINT, as perf expects) and returns its n
// hottest symbols by self time, or one line saying why there are none.
func (s *perfSession) top(n int) []string {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		return []string{"no profile: perf record did not stop"}
	}
	if fi, err := os.Stat(s.out); err != nil || fi.Size() == 0 {
		return []string{"no profile: perf wrote no data"}
	}
	out, err := exec.Command(s.perf, "report", "-i", s.out, "--stdio", "--no-children",
		"-F", "overhead,sym", "-q").Output()
	if err != nil {
		return []string{fmt.Sprintf("no profile: perf report: %v", err)}
	}
	var top []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(top) == n {
			break
		}
		top = append(top, strings.Join(strings.Fields(line), " "))
	}
	if len(top) == 0 {
		return []string{"no profile: perf recorded no samples"}
	}
	return top
}
