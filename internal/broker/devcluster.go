package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// Sentinel errors of `poste dev cluster`.
var (
	// ErrDevFlag marks invalid options of RunDevCluster. The command's flags reject
	// out-of-range values while they are parsed, as usage errors; what is left here is a
	// combination, such as a port range that goes past 65535.
	ErrDevFlag = errors.New("invalid dev cluster option")
	// ErrDevNode marks a node that could not be started, died, or had to be killed.
	ErrDevNode = errors.New("dev cluster node failed")
)

// Limits and timings of the local development cluster.
const (
	devMaxBrokers = 9
	// devStopTimeout is how long the nodes get for a controlled shutdown before SIGKILL.
	devStopTimeout = 30 * time.Second
	// devReadyWarnAfter is when a cluster still not answering is reported (it keeps trying).
	devReadyWarnAfter = 60 * time.Second
)

// DevCommand is `poste dev`, the parent of development helpers that run brokers.
func DevCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Development helpers",
		Long:  "Development helpers: run a throw-away Poste cluster on this machine.",
		Example: `  poste dev cluster
  poste dev cluster --brokers 5 --dir /tmp/poste5`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			// The "unknown command" prefix makes the root report a usage error.
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		},
	}
	cmd.AddCommand(DevClusterCommand())
	return cmd
}

// DevClusterCommand is `poste dev cluster`: write one server.properties per node, run every
// node as a child process of this one until SIGINT or SIGTERM, then stop them all.
func DevClusterCommand() *cobra.Command {
	o := DevClusterOptions{Brokers: 3, Dir: "./poste-dev-cluster", Port: 9092}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster of N brokers, one child process each",
		Long: `Run a local Poste cluster: N nodes, each a broker and a metadata-quorum voter, each
its own "poste serve" child process of this command, on 127.0.0.1.

Node N listens for clients on port+2(N-1) and for the quorum (its CONTROLLER
listener) on the port just above: with the default --port 9092, node 1 uses 9092
and 9093, node 2 9094 and 9095, node 3 9096 and 9097. Its configuration is
<dir>/node-N/server.properties and its data <dir>/node-N/data; running the command
again on the same --dir rewrites the same files and keeps the data.

Replication defaults fit the size: default.replication.factor,
offsets.topic.replication.factor and transaction.state.log.replication.factor are
min(3, N), min.insync.replicas is min(2, N).

Every line a node logs is prefixed with [node-N]. Once every node answers, the
bootstrap servers are printed on stdout. A node that dies is reported and the others
keep running. Ctrl-C (SIGINT) or SIGTERM stops every node with a controlled shutdown
(SIGKILL after 30s; a second Ctrl-C kills them at once).`,
		Example: `  poste dev cluster
  poste dev cluster --brokers 5 --port 29092 --dir /tmp/poste5
  POSTE_BROKERS=127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096 poste cluster info`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("%w: cannot find the poste executable: %v", ErrDevNode, err)
			}
			o.Executable = exe
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			return RunDevCluster(cmd.Context(), o, sigs)
		},
	}
	f := cmd.Flags()
	// --brokers shadows the client commands' persistent --brokers (seed list) here.
	f.Var(&intRange{&o.Brokers, 1, devMaxBrokers}, "brokers", "number of nodes, 1 to 9")
	f.Var(&nonEmpty{&o.Dir}, "dir", "directory holding node-N/server.properties and node-N/data")
	f.Var(&intRange{&o.Port, 1, 65535}, "port", "client port of node 1; node N uses port+2(N-1) for clients and the next port for the quorum")
	return cmd
}

// DevClusterOptions configures one RunDevCluster call. Its zero value is not usable: the
// command fills every field from its flags and defaults. RunDevCluster writes to Stdout and
// Stderr from several goroutines, but never concurrently, and one whole line per Write.
type DevClusterOptions struct {
	Brokers    int       // number of nodes, 1..9
	Dir        string    // holds node-N/server.properties and node-N/data
	Port       int       // client port of node 1
	Executable string    // the poste binary each node runs as `serve --config FILE`
	Stdout     io.Writer // the bootstrap servers, once every node answers
	Stderr     io.Writer // the nodes' logs, each line prefixed [node-N], and lifecycle notes
}

// validate checks the flags, before anything is written.
func (o *DevClusterOptions) validate() error {
	if o.Brokers < 1 || o.Brokers > devMaxBrokers {
		return devFlagf("--brokers %d: want 1 to %d", o.Brokers, devMaxBrokers)
	}
	if last := o.Port + 2*o.Brokers - 1; o.Port < 1 || last > 65535 {
		return devFlagf("--port %d: %d nodes need ports %d to %d, within 1 to 65535", o.Port, o.Brokers, o.Port, last)
	}
	if strings.TrimSpace(o.Dir) == "" {
		return devFlagf("--dir is empty")
	}
	return nil
}

func devFlagf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDevFlag, fmt.Sprintf(format, args...))
}

// intRange is an int flag that refuses values outside [lo, hi] while the flags are parsed,
// so that cobra reports them as usage errors like any malformed flag.
type intRange struct {
	p      *int
	lo, hi int
}

func (r *intRange) String() string {
	if r.p == nil {
		return "0"
	}
	return strconv.Itoa(*r.p)
}

func (r *intRange) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a number")
	}
	if n < r.lo || n > r.hi {
		return fmt.Errorf("want %d to %d", r.lo, r.hi)
	}
	*r.p = n
	return nil
}

func (r *intRange) Type() string { return "int" }

// nonEmpty is a string flag that refuses the empty string.
type nonEmpty struct{ p *string }

func (n *nonEmpty) String() string {
	if n.p == nil {
		return ""
	}
	return *n.p
}

func (n *nonEmpty) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	*n.p = s
	return nil
}

func (n *nonEmpty) Type() string { return "string" }

// devNode is one node of the development cluster: where it listens and keeps its files.
type devNode struct {
	id         int
	clientPort int
	ctrlPort   int
	dir        string // absolute <dir>/node-N
}

func (n devNode) name() string        { return "node-" + strconv.Itoa(n.id) }
func (n devNode) configPath() string  { return filepath.Join(n.dir, "server.properties") }
func (n devNode) clientAddr() string  { return "127.0.0.1:" + strconv.Itoa(n.clientPort) }
func (n devNode) controlAddr() string { return "127.0.0.1:" + strconv.Itoa(n.ctrlPort) }

// devLayout places the nodes: node N gets client port port+2(N-1), the next port for its
// controller listener, and the directory <dir>/node-N (made absolute, so that the files
// name the same data whatever the nodes' working directory).
func devLayout(dir string, brokers, port int) ([]devNode, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	nodes := make([]devNode, brokers)
	for i := range nodes {
		nodes[i] = devNode{
			id:         i + 1,
			clientPort: port + 2*i,
			ctrlPort:   port + 2*i + 1,
			dir:        filepath.Join(abs, "node-"+strconv.Itoa(i+1)),
		}
	}
	return nodes, nil
}

// devProperties returns node n's server.properties. It is a pure function of the layout, so
// a second run on the same directory writes the same bytes.
func devProperties(n devNode, nodes []devNode) string {
	voters := make([]string, len(nodes))
	for i, v := range nodes {
		voters[i] = strconv.Itoa(v.id) + "@" + v.controlAddr()
	}
	size := len(nodes)
	rf, minISR := min(3, size), min(2, size)
	var b strings.Builder
	fmt.Fprintf(&b, "# Node %d of %d of a local cluster run by `poste dev cluster`.\n", n.id, size)
	b.WriteString("# Rewritten at every start of that command: change its flags rather than this file.\n")
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s=%s\n", k, propertyValue(fmt.Sprint(v))) }
	kv("node.id", n.id)
	kv("process.roles", "broker,controller")
	kv("listeners", "PLAINTEXT://"+n.clientAddr()+",CONTROLLER://"+n.controlAddr())
	kv("advertised.listeners", "PLAINTEXT://"+n.clientAddr())
	kv("controller.quorum.voters", strings.Join(voters, ","))
	kv("log.dirs", filepath.Join(n.dir, "data"))
	kv("default.replication.factor", rf)
	kv("offsets.topic.replication.factor", rf)
	kv("transaction.state.log.replication.factor", rf)
	kv("min.insync.replicas", minISR)
	return b.String()
}

// propertyValue escapes what a properties reader would otherwise interpret in a value: a
// backslash, and leading whitespace.
func propertyValue(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	if strings.HasPrefix(v, " ") || strings.HasPrefix(v, "\t") {
		v = `\` + v
	}
	return v
}

// writeDevConfigs creates every node's directory and writes its server.properties.
func writeDevConfigs(nodes []devNode) error {
	for _, n := range nodes {
		if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(n.configPath(), []byte(devProperties(n, nodes)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkDevPorts fails at once, naming the port, when one the cluster needs is taken (most
// often by a cluster already running), rather than leaving a node to die on it.
func checkDevPorts(nodes []devNode) error {
	for _, n := range nodes {
		for _, addr := range []string{n.clientAddr(), n.controlAddr()} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%w: %s cannot listen on %s (is a cluster already running? see --port): %v",
					ErrDevNode, n.name(), addr, err)
			}
			ln.Close()
		}
	}
	return nil
}

// RunDevCluster writes the nodes' configurations, starts one `serve` child process per
// node, prints the bootstrap servers once every node answers, and stops every node when a
// signal arrives on sigs or ctx ends. It returns once no child is left running; the error
// names the nodes that died or had to be killed.
func RunDevCluster(ctx context.Context, o DevClusterOptions, sigs <-chan os.Signal) error {
	if err := o.validate(); err != nil {
		return err
	}
	nodes, err := devLayout(o.Dir, o.Brokers, o.Port)
	if err != nil {
		return devFlagf("--dir %q: %v", o.Dir, err)
	}
	if err := checkDevPorts(nodes); err != nil {
		return err
	}
	if err := writeDevConfigs(nodes); err != nil {
		return fmt.Errorf("%w: writing the configurations: %v", ErrDevNode, err)
	}
	out, logw := newLineWriter(o.Stdout), newLineWriter(o.Stderr)
	dc := &devCluster{nodes: nodes, logw: logw, exited: make(chan *devProc, len(nodes)), stopping: make(chan struct{})}
	if err := dc.start(o.Executable); err != nil {
		_ = dc.stop(nil) // the start error is the one to report
		return err
	}

	rctx, cancelReady := context.WithCancel(ctx)
	defer cancelReady()
	ready := make(chan []string, 1)
	go func() {
		if addrs, err := waitDevReady(rctx, nodes, logw); err == nil {
			ready <- addrs
		}
	}()

	running := len(nodes)
	var failed []string
	for running > 0 {
		select {
		case addrs := <-ready:
			out.printf("bootstrap servers: %s\n", strings.Join(addrs, ","))
		case p := <-dc.exited:
			running--
			failed = append(failed, p.node.name())
			logw.printf("poste dev cluster: %s (pid %d) exited unexpectedly: %v; the other nodes keep running\n",
				p.node.name(), p.pid, exitText(p.err))
		case <-sigs:
			cancelReady()
			return dc.stop(sigs)
		case <-ctx.Done():
			cancelReady()
			return dc.stop(sigs)
		}
	}
	slices.Sort(failed)
	return fmt.Errorf("%w: every node exited (%s); their logs above say why", ErrDevNode, strings.Join(failed, ", "))
}

// devCluster is the set of child processes of one RunDevCluster. Only RunDevCluster's
// goroutine calls its methods; each child's waiter goroutine owns its devProc until it
// closes done, and reports unexpected exits on exited.
type devCluster struct {
	nodes  []devNode
	logw   *lineWriter
	procs  []*devProc
	exited chan *devProc // buffered for every node, so a waiter never blocks
	// stopping is set before the first SIGTERM; waiters then stop reporting on exited.
	stopping chan struct{}
}

// devProc is one running node. err is written by the waiter goroutine before it closes done
// and read only after done is closed.
type devProc struct {
	node devNode
	cmd  *exec.Cmd
	pid  int
	out  *prefixWriter
	done chan struct{}
	err  error
}

// start launches every node; on an error the nodes already started are left for stop.
func (dc *devCluster) start(exe string) error {
	for _, n := range dc.nodes {
		cmd := exec.Command(exe, "serve", "--config", n.configPath())
		pw := newPrefixWriter("["+n.name()+"] ", dc.logw)
		cmd.Stdout, cmd.Stderr = pw, pw
		// The nodes get signals from this process only: a terminal's Ctrl-C reaches the
		// whole foreground group, and a node signalled twice would skip its controlled
		// shutdown. Pdeathsig stops a node whose parent was killed outright.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		// Output copying ends at most this long after a node exits, even if something it
		// started still holds its stdout.
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%w: starting %s: %v", ErrDevNode, n.name(), err)
		}
		p := &devProc{node: n, cmd: cmd, pid: cmd.Process.Pid, out: pw, done: make(chan struct{})}
		dc.procs = append(dc.procs, p)
		dc.logw.printf("poste dev cluster: started %s (pid %d): clients %s, quorum %s, config %s\n",
			n.name(), p.pid, n.clientAddr(), n.controlAddr(), n.configPath())
		go dc.wait(p)
	}
	return nil
}

// wait reaps p, then reports it on exited unless the cluster is stopping.
func (dc *devCluster) wait(p *devProc) {
	p.err = p.cmd.Wait()
	p.out.flush()
	close(p.done)
	select {
	case <-dc.stopping:
	default:
		dc.exited <- p
	}
}

// stop sends SIGTERM to every node still running and waits for all of them; a node still
// running after devStopTimeout, or any node once a second signal arrives on sigs, gets
// SIGKILL. It returns an error naming the nodes that had died or were killed.
func (dc *devCluster) stop(sigs <-chan os.Signal) error {
	close(dc.stopping)
	var running []*devProc
	for _, p := range dc.procs {
		select {
		case <-p.done:
		default:
			running = append(running, p)
		}
	}
	dc.logw.printf("poste dev cluster: stopping %d running nodes\n", len(running))
	for _, p := range running {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	timer := time.NewTimer(devStopTimeout)
	defer timer.Stop()
	killed := false
	killAll := func(why string) {
		if killed {
			return
		}
		killed = true
		for _, p := range dc.procs {
			select {
			case <-p.done:
			default:
				dc.logw.printf("poste dev cluster: killing %s (pid %d): %s\n", p.node.name(), p.pid, why)
				_ = p.cmd.Process.Kill()
			}
		}
	}
	var bad []string
	for _, p := range dc.procs {
	waiting:
		for {
			select {
			case <-p.done:
				break waiting
			case <-timer.C:
				killAll(fmt.Sprintf("not stopped after %s", devStopTimeout))
			case <-sigs:
				killAll("second signal")
			}
		}
		if p.err != nil {
			bad = append(bad, fmt.Sprintf("%s: %s", p.node.name(), exitText(p.err)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrDevNode, strings.Join(bad, "; "))
	}
	dc.logw.printf("poste dev cluster: every node stopped\n")
	return nil
}

// exitText describes how a node's process ended.
func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + unix.SignalName(ws.Signal())
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// waitDevReady polls the cluster until a Metadata response lists every node and every node
// answers ApiVersions itself, then returns the client addresses. It reports once, on logw,
// if that takes longer than devReadyWarnAfter, and keeps trying until ctx ends.
func waitDevReady(ctx context.Context, nodes []devNode, logw *lineWriter) ([]string, error) {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.clientAddr()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("poste-dev-cluster"),
		kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	warn := time.After(devReadyWarnAfter)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		if devAllAnswer(ctx, cl, nodes) {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-warn:
			logw.printf("poste dev cluster: not every node answers after %s; still waiting (see the nodes' logs)\n", devReadyWarnAfter)
		case <-tick.C:
		}
	}
}

// devAllAnswer reports whether the metadata lists every node and each answers directly.
// The Metadata request goes through cl.Request, which always asks a broker: kadm's
// BrokerMetadata would answer from the client's cached broker list.
func devAllAnswer(ctx context.Context, cl *kgo.Client, nodes []devNode) bool {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	md, err := cl.Request(rctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return false
	}
	listed := make(map[int32]bool)
	for _, b := range md.(*kmsg.MetadataResponse).Brokers {
		listed[b.NodeID] = true
	}
	for _, n := range nodes {
		if !listed[int32(n.id)] {
			return false
		}
		if _, err := cl.Broker(n.id).Request(rctx, kmsg.NewPtrApiVersionsRequest()); err != nil {
			return false
		}
	}
	return true
}

// lineWriter serialises whole lines from several goroutines onto one writer. Its methods
// may be called from any goroutine; write errors are dropped (the output is a terminal or a
// pipe, and a node must not stall because nobody reads its log).
type lineWriter struct {
	mu struct {
		sync.Mutex
		w io.Writer
	}
}

// newLineWriter writes to w; a nil w discards.
func newLineWriter(w io.Writer) *lineWriter {
	if w == nil {
		w = io.Discard
	}
	lw := &lineWriter{}
	lw.mu.w = w
	return lw
}

// writeLine writes p, one or more complete lines, in one Write.
func (lw *lineWriter) writeLine(p []byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	_, _ = lw.mu.w.Write(p)
}

func (lw *lineWriter) printf(format string, args ...any) {
	lw.writeLine(fmt.Appendf(nil, format, args...))
}

// prefixWriter prefixes every line written to it and passes whole lines to a lineWriter.
// It is an io.Writer for one child's stdout and stderr together: os/exec then calls Write
// from one goroutine at a time, and flush is called after Wait, when no Write can come.
type prefixWriter struct {
	prefix  string
	out     *lineWriter
	partial []byte // the start of a line whose newline has not come yet
}

func newPrefixWriter(prefix string, out *lineWriter) *prefixWriter {
	return &prefixWriter{prefix: prefix, out: out}
}

func (pw *prefixWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			pw.partial = append(pw.partial, p...)
			break
		}
		line := make([]byte, 0, len(pw.prefix)+len(pw.partial)+i+1)
		line = append(line, pw.prefix...)
		line = append(line, pw.partial...)
		line = append(line, p[:i+1]...)
		pw.out.writeLine(line)
		pw.partial = pw.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush writes a last line that had no newline.
func (pw *prefixWriter) flush() {
	if len(pw.partial) > 0 {
		_, _ = pw.Write([]byte{'\n'})
	}
}
