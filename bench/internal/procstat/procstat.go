// Package procstat reads what the benchmark needs to know about a process and
// the machine from Linux's /proc: a process's CPU time (all its threads, user
// and system) and its resident memory, the machine's CPU time split into busy,
// idle and stolen, and the load average. Each reader takes a root so tests can
// point it at fixture files; Proc is the real /proc. Functions are safe to call
// from any goroutine.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrParse means a /proc file did not have the expected shape.
var ErrParse = errors.New("procstat: unexpected /proc format")

// Proc is the root of the proc filesystem.
const Proc = "/proc"

// userHZ is the unit of the tick counts in /proc/*/stat and /proc/stat. It is
// the kernel's USER_HZ, 100 on every Linux architecture Go supports.
const userHZ = 100

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// CPU returns the user plus system CPU time consumed so far by every thread of
// process pid (threads that exited included).
func CPU(root string, pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime+stime from a /proc/PID/stat line. The command name is
// in parentheses and may contain spaces or parentheses, so fields are counted
// from the last ')'.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat has no ')'", ErrParse)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields after the name", ErrParse, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: utime %q stime %q", ErrParse, f[11], f[12])
	}
	return ticks(u + st), nil
}

// Mem is a process's resident memory in bytes.
type Mem struct {
	RSS  int64 // now (VmRSS)
	Peak int64 // high-water mark since start (VmHWM)
}

// Memory returns process pid's resident memory.
func Memory(root string, pid int) (Mem, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "status"))
	if err != nil {
		return Mem{}, err
	}
	return parseStatus(string(b))
}

func parseStatus(s string) (Mem, error) {
	var m Mem
	var seen int
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return Mem{}, fmt.Errorf("%w: %s: %q", ErrParse, k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Mem{}, fmt.Errorf("%w: %s: %q", ErrParse, k, v)
		}
		if k == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.Peak = n << 10
		}
		seen++
	}
	if seen != 2 {
		return Mem{}, fmt.Errorf("%w: status lacks VmRSS or VmHWM", ErrParse)
	}
	return m, nil
}

// System is the machine's CPU time summed over all CPUs since boot.
type System struct {
	Busy  time.Duration // user, nice, system, irq, softirq
	Idle  time.Duration // idle and iowait
	Steal time.Duration // taken by the hypervisor for other guests
}

// Sub returns s - o, the CPU time spent between two readings.
func (s System) Sub(o System) System {
	return System{Busy: s.Busy - o.Busy, Idle: s.Idle - o.Idle, Steal: s.Steal - o.Steal}
}

// SystemCPU reads the aggregate "cpu" line of /proc/stat.
func SystemCPU(root string) (System, error) {
	b, err := os.ReadFile(filepath.Join(root, "stat"))
	if err != nil {
		return System{}, err
	}
	return parseProcStat(string(b))
}

func parseProcStat(s string) (System, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return System{}, fmt.Errorf("%w: first line of stat is %q", ErrParse, line)
	}
	var n [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range n {
		v, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return System{}, fmt.Errorf("%w: cpu field %d %q", ErrParse, i+1, f[i+1])
		}
		n[i] = v
	}
	// guest time is already counted in user and nice, so it is not added.
	return System{
		Busy:  ticks(n[0] + n[1] + n[2] + n[5] + n[6]),
		Idle:  ticks(n[3] + n[4]),
		Steal: ticks(n[7]),
	}, nil
}

// LoadAvg returns the 1-minute load average.
func LoadAvg(root string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(root, "loadavg"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("%w: empty loadavg", ErrParse)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("%w: loadavg %q", ErrParse, f[0])
	}
	return v, nil
}
