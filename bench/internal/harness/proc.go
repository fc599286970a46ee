// Package harness runs one broker under test as a child process and measures
// it while the workload runs: it starts the broker on a free loopback port
// with a fresh data directory, waits until it accepts connections, samples its
// CPU time and memory from /proc around each phase, optionally records a CPU
// profile with perf, and stops it with SIGTERM.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Sentinel errors of this package.
var (
	// ErrStart means the broker did not come up: it exited or never accepted a connection.
	ErrStart = errors.New("harness: broker did not start")
	// ErrExit means the broker exited on its own, or not cleanly after SIGTERM.
	ErrExit = errors.New("harness: broker exited abnormally")
)

// Broker says how to start one kind of broker. Args returns the argument list
// (without the program) for a broker that listens on 127.0.0.1:port and keeps
// its data in dataDir.
type Broker struct {
	Name string
	Bin  string
	Args func(port int, dataDir string) []string
}

// Poste is `poste serve` with fsync before every acknowledgement (the default
// policy, set explicitly so the benchmark states it) and partitions topics
// created without a count get partitions.
func Poste(bin string, partitions int32) Broker {
	return Broker{Name: "poste", Bin: bin, Args: func(port int, dir string) []string {
		l := "PLAINTEXT://127.0.0.1:" + strconv.Itoa(port)
		return []string{"serve",
			"--listeners", l,
			"--advertised.listeners", l,
			"--log.dirs", dir,
			"--num.partitions", strconv.Itoa(int(partitions)),
			"--log.flush.policy", "always",
		}
	}}
}

// KfakePeer is the kfakepeer program of this module: kfake with DataDir and
// SyncWrites and topic pre-created with partitions partitions.
func KfakePeer(bin, topic string, partitions int32) Broker {
	return Broker{Name: "kfake", Bin: bin, Args: func(port int, dir string) []string {
		return []string{
			"--port", strconv.Itoa(port),
			"--data-dir", dir,
			"--topic", topic,
			"--partitions", strconv.Itoa(int(partitions)),
		}
	}}
}

// Proc is a running broker. Its methods may be called from one goroutine at a
// time; Stop must be called exactly once, even after the broker died.
type Proc struct {
	Broker  Broker
	Addr    string // 127.0.0.1:port
	DataDir string
	LogPath string // the broker's stdout and stderr

	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid once exited is closed
}

// Start launches b with a new data directory under workdir and waits up to
// timeout until it accepts TCP connections.
func Start(ctx context.Context, b Broker, workdir, tag string, timeout time.Duration) (*Proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	dataDir, err := os.MkdirTemp(workdir, b.Name+"-data-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	logPath := filepath.Join(workdir, fmt.Sprintf("%s-%s.log", b.Name, tag))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	cmd := exec.Command(b.Bin, b.Args(port, dataDir)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	p := &Proc{
		Broker: b, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		DataDir: dataDir, LogPath: logPath, cmd: cmd, log: lf, exited: make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			p.log.Close()
			return nil, fmt.Errorf("%w: %s exited: %v (log %s)", ErrStart, b.Name, p.waitErr, logPath)
		case <-ctx.Done():
			p.Stop(time.Second)
			return nil, fmt.Errorf("%w: %v", ErrStart, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop(time.Second)
			return nil, fmt.Errorf("%w: %s not accepting on %s after %v (log %s)", ErrStart, b.Name, p.Addr, timeout, logPath)
		}
	}
}

// Pid is the broker's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the broker has not exited.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits up to grace for the broker to exit, then kills
// it. It returns ErrExit if the broker had already exited, needed SIGKILL, or
// exited with a non-zero status.
func (p *Proc) Stop(grace time.Duration) error {
	defer p.log.Close()
	select {
	case <-p.exited:
		return fmt.Errorf("%w: %s exited before it was stopped: %v", ErrExit, p.Broker.Name, p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("%w: %s after SIGTERM: %v", ErrExit, p.Broker.Name, p.waitErr)
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%w: %s ignored SIGTERM for %v and was killed", ErrExit, p.Broker.Name, grace)
	}
}

// freePort asks the kernel for an unused loopback port. Another process could
// take it before the broker binds; the broker then fails to start, visibly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DirBytes is the apparent size of every regular file under dir.
func DirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
