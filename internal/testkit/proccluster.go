package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of the process cluster.
var (
	// ErrNodeExited: a node's process ended while it was expected to run or start.
	ErrNodeExited = errors.New("testkit: node process exited")
	// ErrStartTimeout: a node did not serve Kafka requests in time.
	ErrStartTimeout = errors.New("testkit: node did not start in time")
	// ErrStopTimeout: a node did not exit in time after SIGTERM (it was then SIGKILLed).
	ErrStopTimeout = errors.New("testkit: node did not stop in time")
	// ErrNoAnswer: no reachable node answered a metadata question.
	ErrNoAnswer = errors.New("testkit: no node answered")
)

// Timeouts of node processes.
const (
	procStartTimeout = 90 * time.Second // the broker itself gives up after 60 s
	procStopTimeout  = 45 * time.Second // the broker's controlled shutdown is bounded by 30 s
)

var built struct {
	sync.Mutex
	dir, bin string
	err      error
}

// PosteBinary builds ./cmd/poste once per test binary and returns its path. The module
// root is found with `go env GOMOD`. RemovePosteBinary removes it (call it from TestMain).
func PosteBinary(t testing.TB) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if built.bin == "" && built.err == nil {
		built.bin, built.err = buildPoste()
	}
	if built.err != nil {
		t.Fatalf("build poste: %v", built.err)
	}
	return built.bin
}

// RemovePosteBinary deletes the binary PosteBinary built, if any.
func RemovePosteBinary() {
	built.Lock()
	defer built.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
		built.dir, built.bin, built.err = "", "", nil
	}
}

func buildPoste() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the poste module")
	}
	dir, err := os.MkdirTemp("", "poste-bin-")
	if err != nil {
		return "", err
	}
	built.dir = dir
	bin := filepath.Join(dir, "poste")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/poste")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, out)
	}
	return bin, nil
}

// TCPProxy is a pass-through TCP proxy on a loopback port that can be switched to a
// blackhole: then it closes every connection it carries and every new one as soon as it
// is accepted, which to both ends looks like an unreachable peer. Its address never
// changes, so a node restarted behind it is reached at the same place.
//
// All methods may be called from any goroutine.
type TCPProxy struct {
	// Addr is where the proxy listens (host:port).
	Addr   string
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		blackhole bool
		closed    bool
		conns     map[net.Conn]struct{}
	}
}

// NewTCPProxy listens on a free loopback port and forwards every connection to target.
func NewTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCPProxy{Addr: ln.Addr().String(), target: target, ln: ln}
	p.mu.conns = make(map[net.Conn]struct{})
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetBlackhole switches the proxy between passing traffic (false) and cutting it (true).
func (p *TCPProxy) SetBlackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.blackhole = on
	if on {
		p.cutLocked()
	}
}

// Blackholed reports whether the proxy cuts traffic.
func (p *TCPProxy) Blackholed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.blackhole
}

// cutLocked closes every carried connection; their goroutines then end.
func (p *TCPProxy) cutLocked() {
	for c := range p.mu.conns {
		c.Close()
	}
	clear(p.mu.conns)
}

// Close stops the proxy and waits for its goroutines.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	p.cutLocked()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers c unless the proxy is closed or blackholed.
func (p *TCPProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed || p.mu.blackhole {
		return false
	}
	p.mu.conns[c] = struct{}{}
	return true
}

func (p *TCPProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.conns, c)
}

func (p *TCPProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	if !p.track(client) {
		reset(client)
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		// The node is down: a reset, not an orderly close, is the nearest thing to the
		// refused connection a client would get without the proxy.
		reset(client)
		return
	}
	defer server.Close()
	// The proxy may have been blackholed while dialing: track refuses then.
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(server, client)
		server.Close()
		client.Close()
	}()
	io.Copy(client, server)
	client.Close()
	server.Close()
	<-done
}

// reset makes the next Close of c send a TCP reset.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// ProcClusterConfig describes a cluster of poste processes.
type ProcClusterConfig struct {
	// Nodes is the number of nodes (ids 1..Nodes), each a broker and a controller voter.
	Nodes int
	// Extra are configuration keys for every node, over the cluster defaults.
	Extra map[string]string
	// LogLevel is the nodes' --log-level (default info).
	LogLevel string
	// Dir holds every node's data and log; default a test temp dir.
	Dir string
}

// ProcCluster is a cluster of `poste serve` child processes on loopback, for fault
// tests: each node can be killed, stopped, paused, restarted and cut off the network.
//
// Every node's PLAINTEXT listener is reached only through a TCPProxy (In) that the node
// advertises, so clients and followers depend on it; the controller quorum is reached
// through one proxy per ordered pair of nodes (Pair[x][y] carries x's raft and controller
// traffic to y), because each node is given its own controller.quorum.voters in which
// every other voter's address is that pair's proxy. Isolate blackholes a node's inbound
// proxy and every pair proxy to or from it. What Isolate does not cut: the node's own
// connections to the other nodes' PLAINTEXT listeners (as a follower fetching from them),
// which pass through their shared inbound proxies.
//
// Ports are chosen once, so a restarted node keeps its addresses. A node's real PLAINTEXT
// address stays reachable directly (RealAddr), to talk to a node the proxies cut off.
// Each node's stdout and stderr go to its LogPath; the tails are logged when the test
// fails. Methods may be called from any goroutine; a node's process operations are
// serialized by the node.
type ProcCluster struct {
	Nodes []*ProcNode
	// In[i] fronts node i+1's PLAINTEXT listener; Pair[i][j] carries node i+1's quorum
	// traffic to node j+1 (nil on the diagonal).
	In   []*TCPProxy
	Pair [][]*TCPProxy

	t   testing.TB
	bin string
	cfg ProcClusterConfig

	mu struct {
		sync.Mutex
		isolated map[int32]bool
	}
}

// ProcNode is one node of a ProcCluster.
type ProcNode struct {
	ID int32
	// Addr is the advertised PLAINTEXT address (the node's inbound proxy); RealAddr is the
	// listener itself; CtrlAddr is the controller listener.
	Addr, RealAddr, CtrlAddr string
	// DataDir is log.dirs; LogPath the process output.
	DataDir, LogPath string

	c          *ProcCluster
	configPath string

	mu struct {
		sync.Mutex
		cmd    *exec.Cmd
		exited chan struct{} // closed when cmd has been waited for
		paused bool
	}
}

// StartProcCluster builds poste, writes each node's configuration, starts every node and
// waits until all of them serve. Everything is torn down when the test ends.
func StartProcCluster(t testing.TB, cfg ProcClusterConfig) *ProcCluster {
	t.Helper()
	if cfg.Nodes < 1 {
		cfg.Nodes = 3
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	c := &ProcCluster{t: t, bin: PosteBinary(t), cfg: cfg}
	c.mu.isolated = make(map[int32]bool)
	t.Cleanup(c.teardown)
	n := cfg.Nodes
	ports := newPortSet(t)
	for i := range n {
		id := int32(i + 1)
		nd := &ProcNode{ID: id, c: c, RealAddr: ports.addr(), CtrlAddr: ports.addr(),
			DataDir: filepath.Join(cfg.Dir, fmt.Sprintf("node-%d", id), "data"),
			LogPath: filepath.Join(cfg.Dir, fmt.Sprintf("node-%d.log", id))}
		in, err := NewTCPProxy(nd.RealAddr)
		if err != nil {
			t.Fatalf("proxy: %v", err)
		}
		nd.Addr = in.Addr
		c.In = append(c.In, in)
		c.Nodes = append(c.Nodes, nd)
	}
	c.Pair = make([][]*TCPProxy, n)
	for i := range n {
		c.Pair[i] = make([]*TCPProxy, n)
		for j := range n {
			if i == j {
				continue
			}
			p, err := NewTCPProxy(c.Nodes[j].CtrlAddr)
			if err != nil {
				t.Fatalf("proxy: %v", err)
			}
			c.Pair[i][j] = p
		}
	}
	for i, nd := range c.Nodes {
		if err := os.MkdirAll(nd.DataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		nd.configPath = filepath.Join(cfg.Dir, fmt.Sprintf("node-%d.properties", nd.ID))
		if err := os.WriteFile(nd.configPath, []byte(c.nodeConfig(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ports.release()
	if err := c.StartAll(); err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	return c
}

// nodeConfig is the server.properties of node i (index into Nodes).
func (c *ProcCluster) nodeConfig(i int) string {
	nd := c.Nodes[i]
	var voters []string
	for j, o := range c.Nodes {
		addr := o.CtrlAddr
		if j != i {
			addr = c.Pair[i][j].Addr
		}
		voters = append(voters, fmt.Sprintf("%d@%s", o.ID, addr))
	}
	kv := map[string]string{
		"node.id":                                  strconv.Itoa(int(nd.ID)),
		"process.roles":                            "broker,controller",
		"listeners":                                "PLAINTEXT://" + nd.RealAddr + ",CONTROLLER://" + nd.CtrlAddr,
		"advertised.listeners":                     "PLAINTEXT://" + nd.Addr,
		"controller.quorum.voters":                 strings.Join(voters, ","),
		"log.dirs":                                 nd.DataDir,
		"default.replication.factor":               strconv.Itoa(min(3, len(c.Nodes))),
		"min.insync.replicas":                      strconv.Itoa(min(2, len(c.Nodes))),
		"offsets.topic.replication.factor":         strconv.Itoa(min(3, len(c.Nodes))),
		"transaction.state.log.replication.factor": strconv.Itoa(min(3, len(c.Nodes))),
		"offsets.topic.num.partitions":             "3",
		"transaction.state.log.num.partitions":     "3",
	}
	for k, v := range c.cfg.Extra {
		kv[k] = v
	}
	var b strings.Builder
	b.WriteString("# written by the poste fault suite\n")
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	return b.String()
}

// teardown kills every node, closes the proxies and, if the test failed, logs the tail of
// every node's log.
func (c *ProcCluster) teardown() {
	for _, nd := range c.Nodes {
		nd.Kill()
	}
	for _, p := range c.In {
		p.Close()
	}
	for _, row := range c.Pair {
		for _, p := range row {
			if p != nil {
				p.Close()
			}
		}
	}
	if c.t.Failed() {
		c.LogTails(16 << 10)
	}
}

// LogTails logs the last n bytes of every node's log.
func (c *ProcCluster) LogTails(n int) {
	for _, nd := range c.Nodes {
		c.t.Logf("---- node %d log (%s), last %d bytes ----\n%s", nd.ID, nd.LogPath, n, nd.Tail(n))
	}
}

// Node returns the node with the given id.
func (c *ProcCluster) Node(id int32) *ProcNode { return c.Nodes[id-1] }

// Addrs returns every node's advertised address, for seed brokers.
func (c *ProcCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		out[i] = nd.Addr
	}
	return out
}

// StartAll starts every node that is not running, concurrently (a quorum needs several
// of them at once), and waits until each serves.
func (c *ProcCluster) StartAll() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, nd := range c.Nodes {
		if nd.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.Start()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// KillAll SIGKILLs every node at once.
func (c *ProcCluster) KillAll() {
	for _, nd := range c.Nodes {
		nd.signal(syscall.SIGKILL)
	}
	for _, nd := range c.Nodes {
		nd.Kill()
	}
}

// RestartAll SIGKILLs every node and starts them again.
func (c *ProcCluster) RestartAll() error {
	c.KillAll()
	return c.StartAll()
}

// StopAll stops every node with SIGTERM at once and waits for them to exit.
func (c *ProcCluster) StopAll() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, nd := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Isolate cuts node id off from clients and from the other nodes: its inbound proxy and
// every quorum proxy to or from it become blackholes.
func (c *ProcCluster) Isolate(id int32) { c.setIsolated(id, true) }

// Heal undoes Isolate.
func (c *ProcCluster) Heal(id int32) { c.setIsolated(id, false) }

func (c *ProcCluster) setIsolated(id int32, on bool) {
	c.mu.Lock()
	c.mu.isolated[id] = on
	c.mu.Unlock()
	i := int(id - 1)
	c.In[i].SetBlackhole(on)
	for j := range c.Nodes {
		if j != i {
			c.Pair[i][j].SetBlackhole(on)
			c.Pair[j][i].SetBlackhole(on)
		}
	}
}

// Isolated reports whether node id is isolated.
func (c *ProcCluster) Isolated(id int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.isolated[id]
}

// reachable returns the nodes whose answers reflect the cluster: running, not paused,
// not isolated.
func (c *ProcCluster) reachable() []*ProcNode {
	var out []*ProcNode
	for _, nd := range c.Nodes {
		if nd.Running() && !nd.Paused() && !c.Isolated(nd.ID) {
			out = append(out, nd)
		}
	}
	return out
}

// metadataTimeout bounds one metadata question to one node.
const metadataTimeout = 3 * time.Second

// Metadata asks the node, on its real address, for the metadata of topics (every topic if
// none). It uses one plain connection per call, so the answer is the node's own view.
func (nd *ProcNode) Metadata(ctx context.Context, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(8) // leader epochs, controller id; not flexible
	req.AllowAutoTopicCreation = false
	if len(topics) > 0 {
		for _, tn := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(tn)
			req.Topics = append(req.Topics, rt)
		}
	} else {
		req.Topics = nil // null: every topic
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	resp, err := roundTripKafka(ctx, nd.RealAddr, req)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", nd.ID, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// Metadata returns the active controller's metadata (or, if there is none, any reachable
// node's) for topics (every topic if none).
func (c *ProcCluster) Metadata(ctx context.Context, topics ...string) (*kmsg.MetadataResponse, error) {
	if id, err := c.ActiveController(ctx); err == nil {
		if md, err := c.Node(id).Metadata(ctx, topics...); err == nil {
			return md, nil
		}
	}
	var errs []error
	for _, nd := range c.reachable() {
		md, err := nd.Metadata(ctx, topics...)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoAnswer, errors.Join(errs...))
}

// FindPartition returns a partition of a metadata answer (nil if absent).
func FindPartition(md *kmsg.MetadataResponse, topic string, partition int32) *kmsg.MetadataResponseTopicPartition {
	for i := range md.Topics {
		t := &md.Topics[i]
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		for j := range t.Partitions {
			if t.Partitions[j].Partition == partition {
				return &t.Partitions[j]
			}
		}
	}
	return nil
}

// Leader returns the leader of a partition and its leader epoch, as the reachable node with
// the newest view (the highest leader epoch) has it; -1 when the partition has no leader.
func (c *ProcCluster) Leader(ctx context.Context, topic string, partition int32) (leader, epoch int32, err error) {
	leader, epoch = -1, -1
	found := false
	var errs []error
	for _, nd := range c.reachable() {
		md, err := nd.Metadata(ctx, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p := FindPartition(md, topic, partition)
		if p == nil {
			continue
		}
		if !found || p.LeaderEpoch > epoch {
			leader, epoch, found = p.Leader, p.LeaderEpoch, true
		}
	}
	if !found {
		return -1, -1, fmt.Errorf("%w about %s/%d: %w", ErrNoAnswer, topic, partition, errors.Join(errs...))
	}
	return leader, epoch, nil
}

// ActiveController returns the node that leads the metadata quorum: the controller id
// named by a majority of all nodes, provided that node is reachable and names itself. (A
// node that knows no leader names itself, so one node's word is not enough.)
func (c *ProcCluster) ActiveController(ctx context.Context) (int32, error) {
	votes := map[int32]int{}
	var errs []error
	for _, nd := range c.reachable() {
		md, err := nd.Metadata(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		votes[md.ControllerID]++
	}
	for id, n := range votes {
		if n > len(c.Nodes)/2 && id > 0 && int(id) <= len(c.Nodes) && slices.Contains(c.reachable(), c.Node(id)) {
			return id, nil
		}
	}
	return -1, fmt.Errorf("%w: no majority names a controller (%v): %w", ErrNoAnswer, votes, errors.Join(errs...))
}

// FullISR reports whether, as the active controller sees it, every node is a live
// (unfenced) broker and every partition of topics (every topic if none) has a leader and all
// its replicas in sync; why says what is missing.
func (c *ProcCluster) FullISR(ctx context.Context, topics ...string) (ok bool, why string) {
	md, err := c.Metadata(ctx, topics...)
	if err != nil {
		return false, err.Error()
	}
	if len(md.Brokers) != len(c.Nodes) {
		var ids []int32
		for _, b := range md.Brokers {
			ids = append(ids, b.NodeID)
		}
		return false, fmt.Sprintf("live brokers %v", ids)
	}
	for _, t := range md.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if t.ErrorCode != 0 {
			return false, fmt.Sprintf("%s: error code %d", name, t.ErrorCode)
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 || len(p.ISR) != len(p.Replicas) {
				return false, fmt.Sprintf("%s/%d: leader %d replicas %v isr %v", name, p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
	}
	return true, ""
}

// Running reports whether the node's process is alive (possibly paused).
func (nd *ProcNode) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.runningLocked()
}

func (nd *ProcNode) runningLocked() bool {
	if nd.mu.cmd == nil {
		return false
	}
	select {
	case <-nd.mu.exited:
		return false
	default:
		return true
	}
}

// Paused reports whether the node is stopped by SIGSTOP.
func (nd *ProcNode) Paused() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.mu.paused && nd.runningLocked()
}

// Start starts the node's process if it is not running and waits until it answers Kafka
// requests on its real address (the broker serves only once registered and unfenced).
func (nd *ProcNode) Start() error {
	nd.mu.Lock()
	if nd.runningLocked() {
		nd.mu.Unlock()
		return nil
	}
	logf, err := os.OpenFile(nd.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		nd.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "==== %s: starting node %d ====\n", time.Now().Format(time.RFC3339Nano), nd.ID)
	cmd := exec.Command(nd.c.bin, "serve", "--config", nd.configPath, "--log-level", nd.c.cfg.LogLevel)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		nd.mu.Unlock()
		return err
	}
	logf.Close() // the child has its own descriptor
	exited := make(chan struct{})
	nd.mu.cmd, nd.mu.exited, nd.mu.paused = cmd, exited, false
	go func() {
		cmd.Wait()
		close(exited)
	}()
	nd.mu.Unlock()

	deadline := time.Now().Add(procStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("node %d: %w during start (%v); log tail:\n%s", nd.ID, ErrNodeExited, cmd.ProcessState, nd.Tail(4096))
		default:
		}
		if err := pingKafka(nd.RealAddr, 500*time.Millisecond); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("node %d: %w; log tail:\n%s", nd.ID, ErrStartTimeout, nd.Tail(4096))
}

// signal sends sig to the process if it runs; it reports whether it did.
func (nd *ProcNode) signal(sig syscall.Signal) bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if !nd.runningLocked() {
		return false
	}
	nd.mu.cmd.Process.Signal(sig)
	switch sig {
	case syscall.SIGSTOP:
		nd.mu.paused = true
	case syscall.SIGCONT:
		nd.mu.paused = false
	}
	return true
}

// exitedCh returns the channel closed when the current process has exited (nil if none).
func (nd *ProcNode) exitedCh() chan struct{} {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.mu.exited
}

// Kill SIGKILLs the node and waits for the process to end; a no-op if it does not run.
func (nd *ProcNode) Kill() {
	if nd.signal(syscall.SIGKILL) {
		<-nd.exitedCh()
	}
}

// Stop asks the node to shut down cleanly (SIGTERM, after SIGCONT if paused) and waits for
// it; a node still running after procStopTimeout is SIGKILLed and ErrStopTimeout returned.
func (nd *ProcNode) Stop() error {
	nd.signal(syscall.SIGCONT)
	if !nd.signal(syscall.SIGTERM) {
		return nil
	}
	select {
	case <-nd.exitedCh():
		return nil
	case <-time.After(procStopTimeout):
		nd.Kill()
		return fmt.Errorf("node %d: %w (%v)", nd.ID, ErrStopTimeout, procStopTimeout)
	}
}

// Pause stops the process with SIGSTOP: it keeps its sockets but answers nothing.
func (nd *ProcNode) Pause() { nd.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (nd *ProcNode) Resume() { nd.signal(syscall.SIGCONT) }

// Restart SIGKILLs the node and starts it again.
func (nd *ProcNode) Restart() error {
	nd.Kill()
	return nd.Start()
}

// Tail returns the last n bytes of the node's log.
func (nd *ProcNode) Tail(n int) string {
	f, err := os.Open(nd.LogPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(0, st.Size()-int64(n))
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return err.Error()
	}
	return string(b)
}

// Grep returns the lines of the node's log that contain s.
func (nd *ProcNode) Grep(s string) []string {
	f, err := os.Open(nd.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// PartitionDir is where the node keeps a partition's log.
func (nd *ProcNode) PartitionDir(topic string, partition int32) string {
	return filepath.Join(nd.DataDir, fmt.Sprintf("%s-%d", topic, partition))
}

// ProduceDirect sends one record in its own Produce request (v8, no idempotence) straight
// to the node's real address, bypassing every proxy, and returns the partition's answer:
// the error code (0 = acknowledged) and the base offset. err is set when no answer came
// within ctx. With acks -1 the request asks to wait up to timeout for replication.
func (nd *ProcNode) ProduceDirect(ctx context.Context, topic string, partition int32, value []byte, acks int16, timeout time.Duration) (code int16, offset int64, err error) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(8)
	req.Acks = acks
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = singleRecordBatch(value, time.Now())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := roundTripKafka(ctx, nd.RealAddr, req)
	if err != nil {
		return 0, -1, fmt.Errorf("node %d: %w", nd.ID, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return 0, -1, fmt.Errorf("node %d: produce answer for %d topics", nd.ID, len(pr.Topics))
	}
	p := pr.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// singleRecordBatch encodes a magic v2 batch of one record (no key, no headers, no
// producer id), as a non-idempotent producer sends it.
func singleRecordBatch(value []byte, ts time.Time) []byte {
	var rec []byte
	rec = append(rec, 0)                                 // attributes
	rec = binary.AppendVarint(rec, 0)                    // timestamp delta
	rec = binary.AppendVarint(rec, 0)                    // offset delta
	rec = binary.AppendVarint(rec, -1)                   // null key
	rec = binary.AppendVarint(rec, int64(len(value)))    // value length
	rec = append(rec, value...)                          //
	rec = binary.AppendVarint(rec, 0)                    // no headers
	records := binary.AppendVarint(nil, int64(len(rec))) // record length
	records = append(records, rec...)

	ms := ts.UnixMilli()
	b := make([]byte, 0, 61+len(records))
	b = binary.BigEndian.AppendUint64(b, 0)                  // base offset, set by the broker
	b = binary.BigEndian.AppendUint32(b, 0)                  // length, below
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)         // partition leader epoch -1
	b = append(b, 2)                                         // magic
	b = binary.BigEndian.AppendUint32(b, 0)                  // crc, below
	b = binary.BigEndian.AppendUint16(b, 0)                  // attributes
	b = binary.BigEndian.AppendUint32(b, 0)                  // last offset delta
	b = binary.BigEndian.AppendUint64(b, uint64(ms))         // first timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(ms))         // max timestamp
	b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff) // producer id -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)             // producer epoch -1
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)         // base sequence -1
	b = binary.BigEndian.AppendUint32(b, 1)                  // one record
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// pingKafka sends an ApiVersions request to addr and waits for its answer.
func pingKafka(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	_, err := roundTripKafka(ctx, addr, req)
	return err
}

// roundTripKafka sends one request of a non-flexible version on a new connection and
// decodes the answer.
func roundTripKafka(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("poste-testkit")).AppendRequest(nil, req, 1)
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("testkit: answer of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(buf[4:]); err != nil { // after the correlation id
		return nil, fmt.Errorf("testkit: decode %T: %w", resp, err)
	}
	return resp, nil
}

// LogBatch is one record batch of a partition log, as stored.
type LogBatch struct {
	BaseOffset int64
	// LastOffset is BaseOffset plus the batch's last offset delta.
	LastOffset int64
	// Bytes is the whole batch, base offset and length included.
	Bytes []byte
}

// batchHeaderLen is the part of a v2 batch header needed to frame it and find its last
// offset: base offset (8), length (4), leader epoch (4), magic (1), crc (4), attributes
// (2), last offset delta (4).
const batchHeaderLen = 27

// ReadLogBatches parses the segment files (<base offset>.log) of a partition directory in
// offset order into batches. Framing follows magic v2 (base offset int64, length int32);
// a torn or zero-filled tail ends a segment. It reads files only; the node should be
// stopped.
func ReadLogBatches(dir string) ([]LogBatch, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type seg struct {
		base int64
		name string
	}
	var segs []seg
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".log") {
			continue
		}
		base, err := strconv.ParseInt(strings.TrimSuffix(name, ".log"), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, seg{base, name})
	}
	slices.SortFunc(segs, func(a, b seg) int { return int(min(max(a.base-b.base, -1), 1)) })
	var out []LogBatch
	for _, s := range segs {
		data, err := os.ReadFile(filepath.Join(dir, s.name))
		if err != nil {
			return nil, err
		}
		for len(data) >= batchHeaderLen {
			length := int32(binary.BigEndian.Uint32(data[8:12]))
			if length <= 0 || int(length) > len(data)-12 {
				break
			}
			b := data[:12+int(length)]
			base := int64(binary.BigEndian.Uint64(b))
			delta := int32(binary.BigEndian.Uint32(b[23:27]))
			out = append(out, LogBatch{BaseOffset: base, LastOffset: base + int64(delta), Bytes: bytes.Clone(b)})
			data = data[len(b):]
		}
	}
	return out, nil
}

// EndOffset returns the offset after the last batch (0 for none).
func EndOffset(batches []LogBatch) int64 {
	if len(batches) == 0 {
		return 0
	}
	return batches[len(batches)-1].LastOffset + 1
}
