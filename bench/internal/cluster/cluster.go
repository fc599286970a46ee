// Package cluster runs local multi-node Poste clusters for benchmarks: three
// (or more) `poste serve` processes started from server.properties files it
// writes, each of which can be killed with SIGKILL and started again on the
// same data; or one `poste dev cluster` process and the nodes it starts. It
// also has the Kafka-protocol helpers the cluster benchmarks need (topic
// creation, waiting for a full ISR, finding a partition's leader) and the
// pure computations of the failover benchmark (ack log, distributions).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrStart means a node or the cluster did not come up.
	ErrStart = errors.New("cluster: did not start")
	// ErrExit means a process exited on its own, or not cleanly when stopped.
	ErrExit = errors.New("cluster: process exited abnormally")
	// ErrNotReady means a topic, a leader or an ISR was not as awaited in time.
	ErrNotReady = errors.New("cluster: not ready")
)

// NodeConfig renders the server.properties of node id (1-based) of an
// n-node combined-mode cluster whose node i listens for clients on
// basePort+2(i-1) and for the quorum on the port above, as docs/cluster.md
// describes. Everything else is the broker's default.
func NodeConfig(id, n, basePort int, dataDir string) string {
	voters := make([]string, n)
	for i := 1; i <= n; i++ {
		voters[i-1] = fmt.Sprintf("%d@127.0.0.1:%d", i, quorumPort(i, basePort))
	}
	rf := min(3, n)
	client := fmt.Sprintf("127.0.0.1:%d", clientPort(id, basePort))
	var b strings.Builder
	fmt.Fprintf(&b, "node.id=%d\n", id)
	b.WriteString("process.roles=broker,controller\n")
	fmt.Fprintf(&b, "listeners=PLAINTEXT://%s,CONTROLLER://127.0.0.1:%d\n", client, quorumPort(id, basePort))
	fmt.Fprintf(&b, "advertised.listeners=PLAINTEXT://%s\n", client)
	fmt.Fprintf(&b, "controller.quorum.voters=%s\n", strings.Join(voters, ","))
	fmt.Fprintf(&b, "log.dirs=%s\n", dataDir)
	fmt.Fprintf(&b, "default.replication.factor=%d\n", rf)
	fmt.Fprintf(&b, "min.insync.replicas=%d\n", min(2, n))
	fmt.Fprintf(&b, "offsets.topic.replication.factor=%d\n", rf)
	fmt.Fprintf(&b, "transaction.state.log.replication.factor=%d\n", rf)
	return b.String()
}

func clientPort(id, base int) int { return base + 2*(id-1) }
func quorumPort(id, base int) int { return base + 2*(id-1) + 1 }

// FreePortRange returns a base port such that base..base+n-1 were all free on
// 127.0.0.1 when checked. Another process may still take one before the
// brokers bind; they then fail to start, visibly.
func FreePortRange(n int) (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(40000)
		ok := true
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("%w: no %d consecutive free ports", ErrStart, n)
}

// Node is one `poste serve` process of a Cluster, started from its own
// configuration file; it can be killed and started again on the same data.
// A Node is driven by one goroutine at a time (the benchmark's driver); the
// only other goroutine is the one reaping the current process.
type Node struct {
	ID         int32
	ClientAddr string // 127.0.0.1:port of the PLAINTEXT listener
	ConfigPath string
	DataDir    string
	LogPath    string // every start appends its output here

	bin     string
	cmd     *exec.Cmd // nil before the first Start
	exited  chan struct{}
	waitErr error // valid once exited is closed
}

// Start launches the node's process. It returns once the process runs; see
// Cluster.WaitReady to know when it serves.
func (n *Node) Start() error {
	if n.cmd != nil && n.Alive() {
		return fmt.Errorf("%w: node %d is already running", ErrStart, n.ID)
	}
	lf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStart, err)
	}
	fmt.Fprintf(lf, "=== start %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, "serve", "--config", n.ConfigPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("%w: node %d: %v", ErrStart, n.ID, err)
	}
	n.cmd, n.exited, n.waitErr = cmd, make(chan struct{}), nil
	exited := n.exited
	go func() {
		err := cmd.Wait()
		lf.Close()
		n.waitErr = err
		close(exited)
	}()
	return nil
}

// Pid is the current process's id, 0 if never started.
func (n *Node) Pid() int {
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Alive reports whether the current process has not exited.
func (n *Node) Alive() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits until the process is reaped. It returns the
// time just before the signal was sent.
func (n *Node) Kill() (time.Time, error) {
	if !n.Alive() {
		return time.Time{}, fmt.Errorf("%w: node %d is not running: %v", ErrExit, n.ID, n.waitErr)
	}
	at := time.Now()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return at, fmt.Errorf("%w: kill node %d: %v", ErrExit, n.ID, err)
	}
	<-n.exited
	return at, nil
}

// Stop sends SIGTERM (a controlled shutdown) and waits up to grace, then
// kills. It returns ErrExit if the node had died, needed SIGKILL or exited
// with a non-zero status; a node never started is not an error.
func (n *Node) Stop(grace time.Duration) error {
	if n.cmd == nil {
		return nil
	}
	select {
	case <-n.exited:
		return fmt.Errorf("%w: node %d exited before it was stopped: %v", ErrExit, n.ID, n.waitErr)
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if n.waitErr != nil {
			return fmt.Errorf("%w: node %d after SIGTERM: %v", ErrExit, n.ID, n.waitErr)
		}
		return nil
	case <-time.After(grace):
		_ = n.cmd.Process.Kill()
		<-n.exited
		return fmt.Errorf("%w: node %d ignored SIGTERM for %v", ErrExit, n.ID, grace)
	}
}

// Cluster is a set of combined broker+controller nodes on 127.0.0.1 whose
// files live under one directory. It is driven by one goroutine.
type Cluster struct {
	Dir   string
	Nodes []*Node // Nodes[i].ID == i+1
}

// New writes the configuration of an n-node cluster under dir (node-N/
// server.properties, node-N/data, node-N.log) on free ports. It starts nothing.
func New(bin, dir string, n int) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d nodes", ErrStart, n)
	}
	base, err := FreePortRange(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	for id := 1; id <= n; id++ {
		nd := filepath.Join(dir, fmt.Sprintf("node-%d", id))
		data := filepath.Join(nd, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStart, err)
		}
		cfg := filepath.Join(nd, "server.properties")
		if err := os.WriteFile(cfg, []byte(NodeConfig(id, n, base, data)), 0o644); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStart, err)
		}
		c.Nodes = append(c.Nodes, &Node{
			ID:         int32(id),
			ClientAddr: fmt.Sprintf("127.0.0.1:%d", clientPort(id, base)),
			ConfigPath: cfg,
			DataDir:    data,
			LogPath:    filepath.Join(dir, fmt.Sprintf("node-%d.log", id)),
			bin:        bin,
		})
	}
	return c, nil
}

// Bootstrap is every node's client address.
func (c *Cluster) Bootstrap() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.ClientAddr
	}
	return out
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id int32) *Node {
	if id < 1 || int(id) > len(c.Nodes) {
		return nil
	}
	return c.Nodes[id-1]
}

// Start starts every node.
func (c *Cluster) Start() error {
	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			c.Stop(5 * time.Second)
			return err
		}
	}
	return nil
}

// Stop stops every running node with SIGTERM, all at once, and joins their errors.
func (c *Cluster) Stop(grace time.Duration) error {
	errs := make(chan error, len(c.Nodes))
	for _, n := range c.Nodes {
		go func() { errs <- n.Stop(grace) }()
	}
	var all []error
	for range c.Nodes {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// WaitListening waits until every address accepts TCP connections, failing
// early if ctx ends or alive reports that a process died.
func WaitListening(ctx context.Context, addrs []string, alive func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if err := alive(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: %s not accepting after %v", ErrStart, a, timeout)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: %v", ErrStart, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// AllAlive returns an error naming the first node whose process has exited.
func (c *Cluster) AllAlive() error {
	for _, n := range c.Nodes {
		if n.cmd != nil && !n.Alive() {
			return fmt.Errorf("%w: node %d exited: %v (log %s)", ErrExit, n.ID, n.waitErr, n.LogPath)
		}
	}
	return nil
}
