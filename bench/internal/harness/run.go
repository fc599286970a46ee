package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/poste-io/poste/bench/internal/procstat"
	"github.com/poste-io/poste/bench/internal/workload"
)

// Options are the settings shared by every run of one benchmark; a read-only value.
type Options struct {
	Workload     workload.Config // Brokers is replaced by each run's broker address
	Workdir      string          // data directories, logs and profiles go here
	StartTimeout time.Duration
	StopGrace    time.Duration
	Perf         string // perf binary; "" records no profile
	ProfileTop   int    // profile entries kept per phase
	KeepData     bool   // leave data directories behind
}

// Result is one measured run of the workload against one broker. It is a plain
// value: Run fills it in and returns it, and nothing else refers to it.
type Result struct {
	Broker   string
	Round    int  // 1-based; 0 for a profiling run
	Profiled bool // perf recorded the broker during this run, so its timings are disturbed

	Produce workload.ProduceResult
	Consume workload.ConsumeResult

	CPUProduce time.Duration // broker CPU during the produce phase
	CPUConsume time.Duration // broker CPU during the consume phase
	CPUTotal   time.Duration // broker CPU from its start to the end of the consume phase
	RSSPeak    int64         // VmHWM at the end of the run
	RSSEnd     int64         // VmRSS at the end of the run
	DiskBytes  int64         // size of the data directory after the produce phase

	// Client CPU is this process's (the load generator's) CPU during each
	// phase: on a 2-core machine it tells whether the client was the limit.
	ClientCPUProduce time.Duration
	ClientCPUConsume time.Duration

	Load1    float64       // 1-minute load average before the run
	OtherCPU time.Duration // machine busy CPU during the run that was neither the broker nor this process
	Steal    time.Duration // CPU stolen by the hypervisor during the run

	ProfileProduce []string // top perf entries, produce phase
	ProfileConsume []string // top perf entries, consume phase

	LogPath string
	Err     error // the run failed; the measurements above are partial
	LogTail string
}

// CPUPerGBProduced is broker CPU-seconds per 10^9 value bytes produced.
func (r Result) CPUPerGBProduced() float64 { return perGB(r.CPUProduce, r.Produce.Bytes) }

// CPUPerGBConsumed is broker CPU-seconds per 10^9 value bytes consumed.
func (r Result) CPUPerGBConsumed() float64 { return perGB(r.CPUConsume, r.Consume.Bytes) }

func perGB(d time.Duration, bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	return d.Seconds() / (float64(bytes) / 1e9)
}

// Run starts b, creates the topic, runs the produce and then the consume phase
// against it, samples it, and stops it. Failures are reported in Result.Err,
// never hidden: a broker that crashed, stalled or returned wrong records fails
// the run. If profile is set and o.Perf names perf, each phase is recorded.
func Run(ctx context.Context, b Broker, round int, profile bool, o Options) (res Result) {
	// res is a named result so the deferred Stop can still record its error.
	res = Result{Broker: b.Name, Round: round, Profiled: profile && o.Perf != ""}
	tag := fmt.Sprintf("round%d", round)
	if res.Profiled {
		tag = "profile"
	}
	self := os.Getpid()
	res.Load1, _ = procstat.LoadAvg(procstat.Proc)
	sys0, err := procstat.SystemCPU(procstat.Proc)
	if err != nil {
		res.Err = err
		return res
	}
	self0, err := procstat.CPU(procstat.Proc, self)
	if err != nil {
		res.Err = err
		return res
	}

	p, err := Start(ctx, b, o.Workdir, tag, o.StartTimeout)
	if err != nil {
		res.Err = err
		return res
	}
	res.LogPath = p.LogPath
	defer func() {
		if err := p.Stop(o.StopGrace); err != nil {
			res.Err = errors.Join(res.Err, err)
		}
		if !o.KeepData {
			os.RemoveAll(p.DataDir)
		}
		if res.Err != nil {
			res.LogTail = tail(p.LogPath, 4096)
		}
	}()

	cfg := o.Workload
	cfg.Brokers = []string{p.Addr}
	if err := workload.EnsureTopic(ctx, cfg); err != nil {
		res.Err = err
		return res
	}

	phase := func(name string, run func() error) (cpu, client time.Duration, top []string, err error) {
		var sess *PerfSession
		if res.Profiled {
			sess, err = StartPerf(o.Perf, []int{p.Pid()}, fmt.Sprintf("%s/%s-%s.perf.data", o.Workdir, b.Name, name))
			if err != nil {
				return 0, 0, nil, err
			}
		}
		c0, err1 := procstat.CPU(procstat.Proc, p.Pid())
		s0, err2 := procstat.CPU(procstat.Proc, self)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, nil, err
		}
		runErr := run()
		c1, cerr := procstat.CPU(procstat.Proc, p.Pid())
		s1, serr := procstat.CPU(procstat.Proc, self)
		if sess != nil {
			top = sess.Top(o.ProfileTop)
		}
		if runErr != nil {
			return 0, 0, top, fmt.Errorf("%s: %w", name, runErr)
		}
		if cerr != nil {
			return 0, 0, top, fmt.Errorf("%s: broker gone: %w", name, cerr)
		}
		if serr != nil {
			return 0, 0, top, serr
		}
		return c1 - c0, s1 - s0, top, nil
	}

	res.CPUProduce, res.ClientCPUProduce, res.ProfileProduce, err = phase("produce", func() error {
		var err error
		res.Produce, err = workload.Produce(ctx, cfg)
		return err
	})
	if err != nil {
		res.Err = err
		return res
	}
	res.DiskBytes, _ = DirBytes(p.DataDir)

	res.CPUConsume, res.ClientCPUConsume, res.ProfileConsume, err = phase("consume", func() error {
		var err error
		res.Consume, err = workload.Consume(ctx, cfg, res.Produce.EndOffsets)
		return err
	})
	if err != nil {
		res.Err = err
		return res
	}

	if res.CPUTotal, err = procstat.CPU(procstat.Proc, p.Pid()); err != nil {
		res.Err = err
		return res
	}
	mem, err := procstat.Memory(procstat.Proc, p.Pid())
	if err != nil {
		res.Err = err
		return res
	}
	res.RSSPeak, res.RSSEnd = mem.Peak, mem.RSS
	sys1, err1 := procstat.SystemCPU(procstat.Proc)
	self1, err2 := procstat.CPU(procstat.Proc, self)
	if err := errors.Join(err1, err2); err != nil {
		res.Err = err
		return res
	}
	d := sys1.Sub(sys0)
	res.Steal = d.Steal
	res.OtherCPU = max(0, d.Busy-res.CPUTotal-(self1-self0))
	return res
}

// tail returns up to the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
