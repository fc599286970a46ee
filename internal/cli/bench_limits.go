package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/spf13/cobra"
)

// limitsChunk is the size of each write of the throughput probes: large, as a broker's
// writes of whole batches and responses are.
const limitsChunk = 1 << 20

// benchLimitsFlags are the flags of `poste bench limits`.
type benchLimitsFlags struct {
	dir     string
	size    string
	maxTime time.Duration
	fsyncs  int
	json    bool
}

func newBenchLimitsCommand() *cobra.Command {
	var lf benchLimitsFlags
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Measure this machine's loopback TCP, disk write and fsync limits",
		Long: `Measure, on the machine running the command, the limits a broker on it works within:

  loopback TCP      a sender and a receiver in this process over 127.0.0.1, 1 MiB writes
  write             sequential 1 MiB writes to a new file in --dir (the page cache)
  write+fsync       the same with an fsync after every MiB (the durable write rate)
  direct+fsync      the same with O_DIRECT (Linux): the disk without the page cache
  fsync 4 KiB       the latency of one fsync after a 4 KiB append, --fsyncs times

Each throughput probe moves --size bytes or stops after --max-time, whichever comes
first; the files are removed afterwards. Run it in the broker's data directory, on the
same machine and in the same session as the benchmarks it frames. It needs no broker.
The 1-minute load average (Linux) is reported beside the results: other work on the
machine lowers them. The disk probes also report the CPU this process spent per GB
written: on a virtual machine whose fresh memory pages are slow to touch, the page
cache's copy costs several times what the direct write does.`,
		Example: `  poste bench limits
  poste bench limits --dir /var/lib/poste --size 2GiB --json`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchLimits(cmd, &lf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&lf.dir, "dir", os.TempDir(), "directory for the disk probes (the broker's data directory)")
	f.StringVar(&lf.size, "size", "1GiB", "bytes each throughput probe moves (e.g. 256MiB, 1GiB)")
	f.DurationVar(&lf.maxTime, "max-time", 3*time.Second, "longest a throughput probe runs")
	f.IntVar(&lf.fsyncs, "fsyncs", 500, "fsyncs timed by the latency probe")
	f.BoolVar(&lf.json, "json", false, "print the result as one JSON object")
	return cmd
}

// rateProbe is the result of one throughput probe; MB are 10^6 bytes.
type rateProbe struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBPerS  float64 `json:"mb_per_s"`
	// CPUPerGB is this process's CPU seconds (user + system) per 10^9 bytes moved, for
	// the disk probes; 0 where unmeasured.
	CPUPerGB float64 `json:"cpu_s_per_gb,omitempty"`
}

func newRateProbe(bytes int64, d time.Duration) rateProbe {
	p := rateProbe{Bytes: bytes, Seconds: d.Seconds()}
	if d > 0 {
		p.MBPerS = float64(bytes) / 1e6 / d.Seconds()
	}
	return p
}

// fsyncProbe is the fsync latency distribution, in microseconds.
type fsyncProbe struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_us"`
	P99 float64 `json:"p99_us"`
	Max float64 `json:"max_us"`
}

// limitsReport is the result of `poste bench limits`.
type limitsReport struct {
	Command     string     `json:"command"`
	Dir         string     `json:"dir"`
	Load1       float64    `json:"load1,omitempty"` // 1-minute load average before the probes; absent where unknown
	LoopbackTCP rateProbe  `json:"loopback_tcp"`
	Write       rateProbe  `json:"write"`
	WriteFsync  rateProbe  `json:"write_fsync"`
	DirectFsync *rateProbe `json:"direct_fsync,omitempty"` // nil where --dir refuses O_DIRECT
	Fsync4KiB   fsyncProbe `json:"fsync_4kib"`
}

func runBenchLimits(cmd *cobra.Command, lf *benchLimitsFlags) error {
	size, ok := parseBytes(lf.size)
	switch {
	case !ok || size < limitsChunk:
		return usagef("--size %q: want a byte count of at least 1MiB (e.g. 256MiB)", lf.size)
	case lf.maxTime <= 0:
		return usagef("--max-time must be positive")
	case lf.fsyncs < 1:
		return usagef("--fsyncs must be positive")
	}
	if st, err := os.Stat(lf.dir); err != nil || !st.IsDir() {
		return usagef("--dir %q is not a directory", lf.dir)
	}
	r := limitsReport{Command: "limits", Dir: lf.dir, Load1: loadAverage("/proc/loadavg")}
	total := int64(size)
	var err error
	if r.LoopbackTCP, err = probeLoopback(total, lf.maxTime); err != nil {
		return err
	}
	if r.Write, err = probeWrite(lf.dir, total, lf.maxTime, false, false); err != nil {
		return err
	}
	if r.WriteFsync, err = probeWrite(lf.dir, total, lf.maxTime, true, false); err != nil {
		return err
	}
	switch d, err := probeWrite(lf.dir, total, lf.maxTime, true, true); {
	case errors.Is(err, errNoDirectIO):
		// Not measurable here: the report leaves the probe out.
	case err != nil:
		return err
	default:
		r.DirectFsync = &d
	}
	if r.Fsync4KiB, err = probeFsync(lf.dir, lf.fsyncs, 4096); err != nil {
		return err
	}
	return r.print(cmd.OutOrStdout(), lf.json)
}

func (r *limitsReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	load := "unknown"
	if r.Load1 > 0 {
		load = fmt.Sprintf("%.2f", r.Load1)
	}
	fmt.Fprintf(tw, "poste bench limits: dir %s, 1-minute load %s\n", r.Dir, load)
	fmt.Fprintf(tw, "probe\tMB/s\tMB\tseconds\tCPU-s/GB\n")
	type named struct {
		name string
		p    rateProbe
	}
	probes := []named{{"loopback-tcp", r.LoopbackTCP}, {"write", r.Write}, {"write+fsync", r.WriteFsync}}
	if r.DirectFsync != nil {
		probes = append(probes, named{"direct+fsync", *r.DirectFsync})
	}
	for _, p := range probes {
		cpu := "-"
		if p.p.CPUPerGB > 0 {
			cpu = fmt.Sprintf("%.2f", p.p.CPUPerGB)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.3f\t%s\n", p.name, p.p.MBPerS, float64(p.p.Bytes)/1e6, p.p.Seconds, cpu)
	}
	fmt.Fprintf(tw, "\nfsync after 4 KiB append\tp50 µs\tp99 µs\tmax µs\tn\n")
	fmt.Fprintf(tw, "fsync-4k\t%.0f\t%.0f\t%.0f\t%d\n", r.Fsync4KiB.P50, r.Fsync4KiB.P99, r.Fsync4KiB.Max, r.Fsync4KiB.N)
	return tw.Flush()
}

// loadAverage reads the 1-minute load average from a /proc/loadavg file, or 0.
func loadAverage(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return 0
	}
	return l
}

// probeNoise returns n incompressible bytes (xorshift), so no layer can shrink the data.
func probeNoise(n int) []byte {
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

// probeLoopback sends up to total bytes in 1 MiB writes over a loopback TCP connection to
// a receiver in this process, stopping early after maxTime, and returns the rate at which
// the receiver read them.
func probeLoopback(total int64, maxTime time.Duration) (rateProbe, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rateProbe{}, fmt.Errorf("loopback probe: %w", err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, limitsChunk)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				got <- result{n: n, end: time.Now()}
				return
			}
			if err != nil {
				got <- result{n: n, err: err}
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return rateProbe{}, fmt.Errorf("loopback probe: %w", err)
	}
	buf := probeNoise(limitsChunk)
	start := time.Now()
	var sent int64
	for sent < total && time.Since(start) < maxTime {
		k, err := c.Write(buf[:min(int64(len(buf)), total-sent)])
		sent += int64(k)
		if err != nil {
			c.Close()
			return rateProbe{}, fmt.Errorf("loopback probe: %w", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		c.Close()
		return rateProbe{}, fmt.Errorf("loopback probe: %w", err)
	}
	res := <-got
	c.Close()
	if res.err != nil {
		return rateProbe{}, fmt.Errorf("loopback probe: %w", res.err)
	}
	if res.n != sent {
		return rateProbe{}, fmt.Errorf("loopback probe: received %d of %d bytes", res.n, sent)
	}
	return newRateProbe(res.n, res.end.Sub(start)), nil
}

// probeWrite writes up to total bytes sequentially in 1 MiB writes to a new file in dir,
// with an fsync after each when sync is set, bypassing the page cache when direct is set
// (O_DIRECT, from a page-aligned buffer), stopping early after maxTime; the file is
// removed.
func probeWrite(dir string, total int64, maxTime time.Duration, sync, direct bool) (rateProbe, error) {
	what := "write probe"
	switch {
	case direct:
		what = "direct+fsync probe"
	case sync:
		what = "write+fsync probe"
	}
	f, err := os.CreateTemp(dir, "poste-bench-limits-*.dat")
	if err != nil {
		return rateProbe{}, fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := probeNoise(limitsChunk)
	if direct {
		if f, err = reopenDirect(f); err != nil {
			return rateProbe{}, fmt.Errorf("%s: %w", what, err)
		}
		defer f.Close()
		buf = alignedCopy(buf)
	}
	cpu0 := processCPU()
	start := time.Now()
	var n int64
	for n < total && time.Since(start) < maxTime {
		k, err := f.Write(buf[:min(int64(len(buf)), total-n)])
		n += int64(k)
		if err == nil && sync {
			err = f.Sync()
		}
		if err != nil {
			return rateProbe{}, fmt.Errorf("%s: %w", what, err)
		}
	}
	p := newRateProbe(n, time.Since(start))
	if cpu := processCPU() - cpu0; cpu > 0 && n > 0 {
		p.CPUPerGB = cpu.Seconds() / (float64(n) / 1e9)
	}
	return p, nil
}

// errNoDirectIO: the directory's file system (or the platform) does not take O_DIRECT.
var errNoDirectIO = errors.New("O_DIRECT not supported here")

// alignedCopy returns a copy of b starting on a 4096-byte boundary, as O_DIRECT wants.
func alignedCopy(b []byte) []byte {
	const align = 4096
	raw := make([]byte, len(b)+align)
	off := (align - int(uintptr(unsafe.Pointer(&raw[0]))%align)) % align
	out := raw[off : off+len(b)]
	copy(out, b)
	return out
}

// probeFsync appends size bytes and fsyncs, n times, to a new file in dir and returns
// the fsync latency distribution (nearest rank); the file is removed.
func probeFsync(dir string, n, size int) (fsyncProbe, error) {
	f, err := os.CreateTemp(dir, "poste-bench-limits-*.dat")
	if err != nil {
		return fsyncProbe{}, fmt.Errorf("fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := probeNoise(size)
	lat := make([]time.Duration, 0, n)
	for range n {
		if _, err := f.Write(buf); err != nil {
			return fsyncProbe{}, fmt.Errorf("fsync probe: %w", err)
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			return fsyncProbe{}, fmt.Errorf("fsync probe: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return fsyncProbe{N: n, P50: us(nearestRank(lat, 50)), P99: us(nearestRank(lat, 99)), Max: us(lat[n-1])}, nil
}

// nearestRank returns the p-th percentile (0 < p <= 100) of sorted by nearest rank.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}
