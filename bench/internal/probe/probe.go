// Package probe measures the machine limits a broker benchmark is judged
// against, in the same run as the benchmark: the CPU model and count, and the
// disk's sequential write speed into the page cache, with an fsync after every
// chunk, and the latency of one fsync after a small append. Probes write only
// temporary files in the directory they are given and remove them. The
// functions are independent and may be called from any goroutine, though
// concurrent disk probes disturb each other's numbers.
package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrProbe wraps every failure of a probe.
var ErrProbe = errors.New("probe: failed")

// CPU describes the processors.
type CPU struct {
	Model string // first "model name" of /proc/cpuinfo
	Count int    // logical CPUs listed there
}

// ReadCPU reads /proc/cpuinfo (path is its location, for tests).
func ReadCPU(path string) (CPU, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return CPU{}, fmt.Errorf("%w: %v", ErrProbe, err)
	}
	var c CPU
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			c.Count++
		case "model name":
			if c.Model == "" {
				c.Model = strings.TrimSpace(v)
			}
		}
	}
	if c.Count == 0 {
		return CPU{}, fmt.Errorf("%w: no processor in %s", ErrProbe, path)
	}
	return c, nil
}

// Write is the result of a sequential write probe.
type Write struct {
	Bytes    int64
	Chunk    int64
	Synced   bool // an fsync followed every chunk
	Elapsed  time.Duration
	MBPerSec float64 // 10^6 bytes per second
}

// SeqWrite writes total bytes in chunk-sized writes to a new file in dir,
// with an fsync after every chunk when sync is set, and returns the rate. The
// data is pseudo-random so no layer can compress it.
func SeqWrite(dir string, total, chunk int64, sync bool) (Write, error) {
	if chunk <= 0 || total < chunk {
		return Write{}, fmt.Errorf("%w: total %d, chunk %d", ErrProbe, total, chunk)
	}
	f, err := os.CreateTemp(dir, "probe-*.dat")
	if err != nil {
		return Write{}, fmt.Errorf("%w: %v", ErrProbe, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := noise(int(chunk))
	start := time.Now()
	var n int64
	for n < total {
		if _, err := f.Write(buf); err != nil {
			return Write{}, fmt.Errorf("%w: %v", ErrProbe, err)
		}
		n += chunk
		if sync {
			if err := f.Sync(); err != nil {
				return Write{}, fmt.Errorf("%w: %v", ErrProbe, err)
			}
		}
	}
	el := time.Since(start)
	return Write{Bytes: n, Chunk: chunk, Synced: sync, Elapsed: el, MBPerSec: float64(n) / 1e6 / el.Seconds()}, nil
}

// Fsync is the latency distribution of fsync after a small append.
type Fsync struct {
	N        int
	P50, P99 time.Duration
}

// FsyncLatency appends size bytes and fsyncs, n times, to a new file in dir,
// and returns the fsync latency percentiles.
func FsyncLatency(dir string, n, size int) (Fsync, error) {
	if n < 1 || size < 1 {
		return Fsync{}, fmt.Errorf("%w: n %d, size %d", ErrProbe, n, size)
	}
	f, err := os.CreateTemp(dir, "probe-*.dat")
	if err != nil {
		return Fsync{}, fmt.Errorf("%w: %v", ErrProbe, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := noise(size)
	lat := make([]time.Duration, 0, n)
	for range n {
		if _, err := f.Write(buf); err != nil {
			return Fsync{}, fmt.Errorf("%w: %v", ErrProbe, err)
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			return Fsync{}, fmt.Errorf("%w: %v", ErrProbe, err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return Fsync{N: n, P50: lat[(n-1)*50/100], P99: lat[(n-1)*99/100]}, nil
}

// FSType returns the filesystem type and device of the mount holding dir,
// from mounts (normally /proc/mounts): the longest mount point prefixing it.
func FSType(mounts, dir string) (fstype, device string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrProbe, err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	b, err := os.ReadFile(mounts)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrProbe, err)
	}
	best := -1
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if !(abs == mp || mp == "/" || strings.HasPrefix(abs, mp+"/")) {
			continue
		}
		if len(mp) > best {
			best, device, fstype = len(mp), f[0], f[2]
		}
	}
	if best < 0 {
		return "", "", fmt.Errorf("%w: no mount holds %s", ErrProbe, abs)
	}
	return fstype, device, nil
}

// noise returns n bytes from a xorshift generator: cheap and incompressible.
func noise(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}
