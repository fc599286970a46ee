package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DevCluster is one `poste dev cluster` process and the nodes it started.
// It is driven by one goroutine; two more copy the command's output to its
// log file while watching for the lines Start waits for.
type DevCluster struct {
	Bootstrap []string      // client addresses, from the "bootstrap servers:" line
	Pids      map[int]int   // node number → pid of its `poste serve` process
	LogPath   string        // the command's stdout and stderr, nodes' lines included
	cmd       *exec.Cmd     // the `poste dev cluster` process
	exited    chan struct{} // closed once cmd is reaped
	waitErr   error         // valid once exited is closed
}

var startedLine = regexp.MustCompile(`started node-(\d+) \(pid (\d+)\)`)

// ParseStarted reads a "started node-N (pid P)" line of `poste dev cluster`.
func ParseStarted(line string) (node, pid int, ok bool) {
	m := startedLine.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	node, err1 := strconv.Atoi(m[1])
	pid, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return node, pid, true
}

// ParseBootstrap reads the "bootstrap servers: a,b,c" line of `poste dev cluster`.
func ParseBootstrap(line string) ([]string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "bootstrap servers:")
	if !ok {
		return nil, false
	}
	var out []string
	for a := range strings.SplitSeq(rest, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out, len(out) > 0
}

// StartDev runs `bin dev cluster --brokers n --dir dir --port P` on free
// ports and waits until it prints its bootstrap servers and the pid of every
// node, or timeout passes.
func StartDev(ctx context.Context, bin, dir string, n int, logPath string, timeout time.Duration) (*DevCluster, error) {
	base, err := FreePortRange(2 * n)
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	cmd := exec.Command(bin, "dev", "cluster", "--brokers", strconv.Itoa(n), "--dir", dir, "--port", strconv.Itoa(base))
	stdout, err1 := cmd.StdoutPipe()
	stderr, err2 := cmd.StderrPipe()
	if err1 != nil || err2 != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %v %v", ErrStart, err1, err2)
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	d := &DevCluster{Pids: map[int]int{}, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}

	type event struct {
		node, pid int
		boot      []string
	}
	events := make(chan event, 2*n+2)
	var w lockedWriter
	w.w = lf
	scan := func(r io.Reader, done chan<- struct{}) {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.writeLine(line)
			if node, pid, ok := ParseStarted(line); ok {
				select {
				case events <- event{node: node, pid: pid}:
				default:
				}
			} else if boot, ok := ParseBootstrap(line); ok {
				select {
				case events <- event{boot: boot}:
				default:
				}
			}
		}
	}
	outDone, errDone := make(chan struct{}), make(chan struct{})
	go scan(stdout, outDone)
	go scan(stderr, errDone)
	go func() {
		// Wait must follow the end of both pipes, or it may close them under the scanners.
		<-outDone
		<-errDone
		d.waitErr = cmd.Wait()
		lf.Close()
		close(d.exited)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(d.Pids) < n || d.Bootstrap == nil {
		select {
		case ev := <-events:
			if ev.boot != nil {
				d.Bootstrap = ev.boot
			} else {
				d.Pids[ev.node] = ev.pid
			}
		case <-d.exited:
			return nil, fmt.Errorf("%w: poste dev cluster exited: %v (log %s)", ErrStart, d.waitErr, logPath)
		case <-timer.C:
			d.Stop(10 * time.Second)
			return nil, fmt.Errorf("%w: poste dev cluster not ready after %v (log %s)", ErrStart, timeout, logPath)
		case <-ctx.Done():
			d.Stop(10 * time.Second)
			return nil, fmt.Errorf("%w: %v", ErrStart, ctx.Err())
		}
	}
	return d, nil
}

// Stop sends SIGINT (every node shuts down under control) and waits up to
// grace, then SIGKILLs the command (its nodes then die with it when their
// pipes close, or stay: their pids are in Pids). ErrExit if the command had
// exited, needed SIGKILL or reported a node that died (exit status 1).
func (d *DevCluster) Stop(grace time.Duration) error {
	select {
	case <-d.exited:
		return fmt.Errorf("%w: poste dev cluster exited before it was stopped: %v", ErrExit, d.waitErr)
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
		if d.waitErr != nil {
			return fmt.Errorf("%w: poste dev cluster: %v (log %s)", ErrExit, d.waitErr, d.LogPath)
		}
		return nil
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		for _, pid := range d.Pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-d.exited
		return fmt.Errorf("%w: poste dev cluster ignored SIGINT for %v", ErrExit, grace)
	}
}
