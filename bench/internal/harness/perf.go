package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrProfile means perf could not record or report a profile.
var ErrProfile = errors.New("harness: profile failed")

// PerfSession is one `perf record` attached to one or more processes. It
// samples on-CPU time (cpu-clock, so it works in VMs without hardware
// counters) across all their threads, user and kernel. One goroutine uses it:
// StartPerf, then Top once.
type PerfSession struct {
	perf string
	cmd  *exec.Cmd
	out  string
}

// StartPerf starts recording the processes pids into the file out.
func StartPerf(perf string, pids []int, out string) (*PerfSession, error) {
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = fmt.Sprint(p)
	}
	cmd := exec.Command(perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-p", strings.Join(ids, ","), "-o", out)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProfile, err)
	}
	// perf gives no sign of having attached; its start-up is well under this.
	time.Sleep(200 * time.Millisecond)
	return &PerfSession{perf: perf, cmd: cmd, out: out}, nil
}

// Top stops the recording and returns its n hottest symbols (perfTop), or
// one line saying why there are none: a profile that cannot be had is said
// so in a report, not silently dropped.
func (s *PerfSession) Top(n int) []string {
	var top []string
	err := s.stop()
	if err == nil {
		top, err = perfTop(s.perf, s.out, n)
	}
	switch {
	case err != nil:
		return []string{"no profile: " + err.Error()}
	case len(top) == 0:
		return []string{"no profile: perf recorded no samples"}
	}
	return top
}

// stop ends recording with SIGINT, as perf expects, and waits for perf to
// write its file.
func (s *PerfSession) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w: perf record did not stop", ErrProfile)
	}
	if fi, err := os.Stat(s.out); err != nil || fi.Size() == 0 {
		return fmt.Errorf("%w: perf wrote no data to %s", ErrProfile, s.out)
	}
	return nil
}

// perfTop returns the n hottest symbols of a recorded profile, flat (self
// time), each as "share  [.|k] symbol" ([k] is kernel code).
func perfTop(perf, data string, n int) ([]string, error) {
	out, err := exec.Command(perf, "report", "-i", data, "--stdio", "--no-children",
		"-F", "overhead,sym", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: perf report: %v", ErrProfile, err)
	}
	return parsePerfReport(string(out), n), nil
}

// parsePerfReport keeps the first n non-empty, non-comment lines of a quiet
// flat `perf report`, with runs of spaces squeezed.
func parsePerfReport(s string, n int) []string {
	var top []string
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(top) == n {
			break
		}
		top = append(top, strings.Join(strings.Fields(line), " "))
	}
	return top
}

// LookPerf returns the path of a perf that can record, or "" if there is none.
func LookPerf() string {
	p, err := exec.LookPath("perf")
	if err != nil {
		return ""
	}
	if exec.Command(p, "--version").Run() != nil {
		return ""
	}
	return p
}
