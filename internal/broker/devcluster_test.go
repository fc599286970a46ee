package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/config"
)

func TestDevProperties(t *testing.T) {
	tests := []struct {
		brokers, node, port   int
		wantRF, wantMinISR    int
		wantClient, wantCtrl  int
		wantVoters            string
		wantVotersLastAddress string
	}{
		{brokers: 1, node: 1, port: 9092, wantRF: 1, wantMinISR: 1, wantClient: 9092, wantCtrl: 9093,
			wantVoters: "1@127.0.0.1:9093"},
		{brokers: 2, node: 2, port: 9092, wantRF: 2, wantMinISR: 2, wantClient: 9094, wantCtrl: 9095,
			wantVoters: "1@127.0.0.1:9093,2@127.0.0.1:9095"},
		{brokers: 3, node: 3, port: 9092, wantRF: 3, wantMinISR: 2, wantClient: 9096, wantCtrl: 9097,
			wantVoters: "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"},
		{brokers: 5, node: 4, port: 20000, wantRF: 3, wantMinISR: 2, wantClient: 20006, wantCtrl: 20007,
			wantVoters: "1@127.0.0.1:20001,2@127.0.0.1:20003,3@127.0.0.1:20005,4@127.0.0.1:20007,5@127.0.0.1:20009"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d-of-%d", tc.node, tc.brokers), func(t *testing.T) {
			dir := t.TempDir()
			nodes, err := devLayout(dir, tc.brokers, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeDevConfigs(nodes); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "node-"+strconv.Itoa(tc.node), "server.properties")
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			props, err := config.ParseProperties(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantData := filepath.Join(dir, "node-"+strconv.Itoa(tc.node), "data")
			want := map[string]string{
				"node.id":                                  strconv.Itoa(tc.node),
				"process.roles":                            "broker,controller",
				"listeners":                                fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", tc.wantClient, tc.wantCtrl),
				"advertised.listeners":                     fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", tc.wantClient),
				"controller.quorum.voters":                 tc.wantVoters,
				"log.dirs":                                 wantData,
				"default.replication.factor":               strconv.Itoa(tc.wantRF),
				"offsets.topic.replication.factor":         strconv.Itoa(tc.wantRF),
				"transaction.state.log.replication.factor": strconv.Itoa(tc.wantRF),
				"min.insync.replicas":                      strconv.Itoa(tc.wantMinISR),
			}
			for k, v := range want {
				if props[k] != v {
					t.Errorf("%s = %q, want %q", k, props[k], v)
				}
			}
			if len(props) != len(want) {
				t.Errorf("%d keys, want %d: %v", len(props), len(want), props)
			}

			// The broker accepts the file as it is and reads what was meant.
			cfg, unknown, err := config.Load(path, nil, nil)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if len(unknown) > 0 {
				t.Errorf("unknown keys %v", unknown)
			}
			if cfg.NodeID != int32(tc.node) || len(cfg.Voters) != tc.brokers ||
				int(cfg.DefaultReplicationFactor) != tc.wantRF || int(cfg.MinInsyncReplicas) != tc.wantMinISR ||
				int(cfg.OffsetsTopicReplicationFactor) != tc.wantRF || int(cfg.TransactionStateLogReplicationFactor) != tc.wantRF {
				t.Errorf("loaded node %d, %d voters, rf %d, min isr %d, offsets rf %d, txn rf %d",
					cfg.NodeID, len(cfg.Voters), cfg.DefaultReplicationFactor, cfg.MinInsyncReplicas,
					cfg.OffsetsTopicReplicationFactor, cfg.TransactionStateLogReplicationFactor)
			}
			if len(cfg.LogDirs) != 1 || cfg.LogDirs[0] != wantData {
				t.Errorf("log dirs %v, want [%s]", cfg.LogDirs, wantData)
			}
			if fi, err := os.Stat(wantData); err != nil || !fi.IsDir() {
				t.Errorf("data dir: %v", err)
			}
		})
	}
}

// A second run on the same directory writes the same files and leaves the data alone.
func TestDevConfigsRewrittenIdentically(t *testing.T) {
	dir := t.TempDir()
	nodes, err := devLayout(dir, 3, 9092)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeDevConfigs(nodes); err != nil {
		t.Fatal(err)
	}
	first := make([][]byte, len(nodes))
	for i, n := range nodes {
		if first[i], err = os.ReadFile(n.configPath()); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "data", "keep"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Relative and absolute spellings of the directory name the same files.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := devLayout(rel, 3, 9092)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeDevConfigs(again); err != nil {
		t.Fatal(err)
	}
	for i, n := range again {
		b, err := os.ReadFile(n.configPath())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first[i]) {
			t.Errorf("%s rewritten differently:\n%s\nwas:\n%s", n.name(), b, first[i])
		}
		if _, err := os.Stat(filepath.Join(n.dir, "data", "keep")); err != nil {
			t.Errorf("%s data lost: %v", n.name(), err)
		}
	}
}

func TestDevPropertyValueRoundTrip(t *testing.T) {
	for _, v := range []string{`/plain/path`, `C:\dir\with\backslashes`, ` leading space`, `a=b:c#d`} {
		in := "k=" + propertyValue(v) + "\n"
		props, err := config.ParseProperties(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if props["k"] != v {
			t.Errorf("%q read back as %q", v, props["k"])
		}
	}
}

func TestDevOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    DevClusterOptions
		ok   bool
	}{
		{"defaults", DevClusterOptions{Brokers: 3, Dir: "d", Port: 9092}, true},
		{"one", DevClusterOptions{Brokers: 1, Dir: "d", Port: 9092}, true},
		{"nine", DevClusterOptions{Brokers: 9, Dir: "d", Port: 9092}, true},
		{"zero", DevClusterOptions{Brokers: 0, Dir: "d", Port: 9092}, false},
		{"ten", DevClusterOptions{Brokers: 10, Dir: "d", Port: 9092}, false},
		{"last port fits", DevClusterOptions{Brokers: 3, Dir: "d", Port: 65530}, true},
		{"past 65535", DevClusterOptions{Brokers: 3, Dir: "d", Port: 65531}, false},
		{"port 0", DevClusterOptions{Brokers: 1, Dir: "d", Port: 0}, false},
		{"empty dir", DevClusterOptions{Brokers: 1, Dir: " ", Port: 9092}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.validate()
			if tc.ok != (err == nil) {
				t.Fatalf("validate: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrDevFlag) {
				t.Errorf("%v is not ErrDevFlag", err)
			}
		})
	}
}

// Invalid flags are refused while parsing (a usage error) and nothing is written.
func TestDevClusterCommandFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--brokers", "0"}, "want 1 to 9"},
		{[]string{"--brokers", "10"}, "want 1 to 9"},
		{[]string{"--brokers", "x"}, "not a number"},
		{[]string{"--port", "70000"}, "want 1 to 65535"},
		{[]string{"--dir", ""}, "must not be empty"},
		{[]string{"--port", "65534"}, "need ports 65534 to 65539"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dc")
			cmd := DevClusterCommand()
			cmd.SetArgs(append([]string{"--dir", dir}, tc.args...))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was created (%v)", dir, err)
			}
		})
	}
}

func TestCheckDevPortsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// The taken port is node 1's controller port.
	nodes, err := devLayout(t.TempDir(), 1, port-1)
	if err != nil {
		t.Fatal(err)
	}
	err = checkDevPorts(nodes)
	if !errors.Is(err, ErrDevNode) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("checkDevPorts: %v, want ErrDevNode naming %s", err, ln.Addr())
	}
}

func TestPrefixWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"whole lines", []string{"a\nb\n"}, []string{"[n] a\n", "[n] b\n"}},
		{"split line", []string{"he", "llo\nwor", "ld\n"}, []string{"[n] hello\n", "[n] world\n"}},
		{"empty line", []string{"\n"}, []string{"[n] \n"}},
		{"no final newline", []string{"a\nlast"}, []string{"[n] a\n", "[n] last\n"}},
		{"nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec recordingWriter
			pw := newPrefixWriter("[n] ", newLineWriter(&rec))
			for _, w := range tc.writes {
				if n, err := pw.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			pw.flush()
			if fmt.Sprintf("%q", rec.writes) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("writes %q, want %q", rec.writes, tc.want)
			}
		})
	}
}

// recordingWriter keeps each Write separately, to check that lines arrive whole.
type recordingWriter struct{ writes []string }

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// lockedBuffer collects a child's output for a test that reads it meanwhile.
type lockedBuffer struct {
	mu struct {
		sync.Mutex
		b bytes.Buffer
	}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.b.String()
}

// TestRunDevClusterLifecycle drives RunDevCluster with shell scripts in place of poste:
// their output is prefixed, an exit is reported, a signal stops them, a second one kills
// them.
func TestRunDevClusterLifecycle(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		signals int    // signals sent once every node has logged "up"
		wantErr string // "" for success
		wantLog []string
	}{
		{
			name:    "nodes exit on their own",
			script:  "echo up; exit 3",
			wantErr: "every node exited (node-1, node-2)",
			wantLog: []string{"[node-1] up\n", "[node-2] up\n", "node-2 (pid ", "exited unexpectedly: exit status 3"},
		},
		{
			name:    "signal stops every node",
			script:  "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done",
			signals: 1,
			wantLog: []string{"[node-1] up\n", "[node-2] bye\n", "stopping 2 running nodes", "every node stopped"},
		},
		{
			name:    "second signal kills",
			script:  "trap 'echo ignored' TERM; echo up; while :; do sleep 0.05; done",
			signals: 2,
			wantErr: "node-1: killed by SIGKILL; node-2: killed by SIGKILL",
			wantLog: []string{"[node-2] ignored\n", "killing node-1 (pid ", "second signal"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "fake-poste")
			if err := os.WriteFile(exe, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr lockedBuffer
			sigs := make(chan os.Signal, 2)
			o := DevClusterOptions{Brokers: 2, Dir: filepath.Join(dir, "dc"), Port: freeDevPort(t, 2),
				Executable: exe, Stdout: &stdout, Stderr: &stderr}
			done := make(chan error, 1)
			go func() { done <- RunDevCluster(context.Background(), o, sigs) }()
			if tc.signals > 0 {
				deadline := time.Now().Add(10 * time.Second)
				for strings.Count(stderr.String(), "] up\n") < 2 {
					if time.Now().After(deadline) {
						t.Fatalf("nodes did not start:\n%s", stderr.String())
					}
					time.Sleep(10 * time.Millisecond)
				}
				for range tc.signals {
					sigs <- syscall.SIGINT
					time.Sleep(300 * time.Millisecond) // let the trap run before the next one
				}
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("RunDevCluster did not return:\n%s", stderr.String())
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("RunDevCluster: %v, want %q", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrDevNode) {
				t.Errorf("%v is not ErrDevNode", err)
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, stderr.String())
				}
			}
			if stdout.String() != "" {
				t.Errorf("bootstrap servers printed with no broker running: %q", stdout.String())
			}
		})
	}
}

// buildPoste builds the poste binary into dir.
func buildPoste(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "poste")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/poste-io/poste/cmd/poste").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeDevPort finds a port p such that the ports a dev cluster of n nodes needs, p to
// p+2n-1, are free now (they may be taken again before use; the test accepts that).
func freeDevPort(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		p := 20000 + 2*rand.IntN(15000)
		nodes, err := devLayout(t.TempDir(), n, p)
		if err != nil {
			t.Fatal(err)
		}
		if checkDevPorts(nodes) == nil {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}

// devRun is one `poste dev cluster` process started by a test.
type devRun struct {
	t       *testing.T
	cmd     *exec.Cmd
	logs    *lockedBuffer
	exited  chan error // receives Wait's result
	seeds   []string   // the bootstrap servers it printed
	stopped bool
}

// startDev runs `poste dev cluster --brokers 3` on dir and port and waits until it prints
// the bootstrap servers.
func startDev(t *testing.T, bin, dir string, port int) *devRun {
	t.Helper()
	cmd := exec.Command(bin, "dev", "cluster", "--brokers", "3", "--dir", dir, "--port", strconv.Itoa(port))
	// The dev cluster dies with the test; its nodes then get SIGTERM from it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r := &devRun{t: t, cmd: cmd, logs: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = r.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bootstrap := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "bootstrap servers: "); ok {
				bootstrap <- s
			}
		}
		r.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !r.stopped {
			_ = cmd.Process.Kill()
		}
		if t.Failed() || os.Getenv("POSTE_TEST_LOG") != "" {
			t.Logf("poste dev cluster output:\n%s", r.logs.String())
		}
	})
	select {
	case s := <-bootstrap:
		r.seeds = strings.Split(s, ",")
	case err := <-r.exited:
		r.stopped = true
		t.Fatalf("poste dev cluster exited before the cluster was ready: %v", err)
	case <-time.After(40 * time.Second):
		t.Fatal("no bootstrap servers printed within 40s")
	}
	want := []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+2), fmt.Sprintf("127.0.0.1:%d", port+4)}
	if strings.Join(r.seeds, ",") != strings.Join(want, ",") {
		t.Errorf("bootstrap servers %v, want %v", r.seeds, want)
	}
	return r
}

// stop sends SIGINT, waits for a clean exit and checks that no node process is left.
func (r *devRun) stop() {
	t := r.t
	t.Helper()
	pids := nodePIDs(t, r.logs.String(), 3)
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		r.stopped = true
		if err != nil {
			t.Errorf("poste dev cluster after SIGINT: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("poste dev cluster still running 45s after SIGINT")
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) is still there after the dev cluster exited (kill 0: %v)", name, pid, err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if !strings.Contains(r.logs.String(), "every node stopped") {
		t.Errorf("no clean stop reported")
	}
}

// TestDevClusterEndToEnd runs `poste dev cluster --brokers 3` as a process, uses the
// cluster, stops it with SIGINT and checks that no node is left running; then runs it
// again on the same directory and finds the data.
func TestDevClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the poste binary")
	}
	tmp := t.TempDir()
	bin := buildPoste(t, tmp)
	port := freeDevPort(t, 3)
	dir := filepath.Join(tmp, "dc")
	const topic, records = "dev-rf3", 20

	run := startDev(t, bin, dir, port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(run.seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	// Every broker serves once the controller unfenced it; another broker may apply that a
	// moment later, so its metadata is polled.
	var md kadm.Metadata
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// A new client each time: a client may answer a metadata request from its cache.
		pc, perr := kgo.NewClient(kgo.SeedBrokers(run.seeds...))
		if perr != nil {
			t.Fatal(perr)
		}
		md, err = kadm.NewClient(pc).BrokerMetadata(ctx)
		pc.Close()
		if err == nil && len(md.Brokers) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata lists brokers %v (err %v), want 3", md.Brokers.NodeIDs(), err)
		}
	}
	created, err := adm.CreateTopic(ctx, 1, 3, nil, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("create topic: %v / %v", err, created.Err)
	}
	for i := range records {
		r := &kgo.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce record %d with acks=all: %v", i, err)
		}
	}
	checkTopic(ctx, t, adm, topic, records)
	cl.Close()

	info, err := exec.Command(bin, "cluster", "info", "-b", strings.Join(run.seeds, ",")).CombinedOutput()
	if err != nil {
		t.Fatalf("poste cluster info: %v\n%s", err, info)
	}
	if voters := quorumVoters(string(info)); len(voters) != 3 {
		t.Errorf("cluster info lists voters %v, want 3:\n%s", voters, info)
	}
	run.stop()

	// A second run on the same directory keeps the topic and its records.
	run = startDev(t, bin, dir, port)
	cl, err = kgo.NewClient(kgo.SeedBrokers(run.seeds...))
	if err != nil {
		t.Fatal(err)
	}
	checkTopic(ctx, t, kadm.NewClient(cl), topic, records)
	cl.Close()
	run.stop()
}

// checkTopic checks that topic has 3 replicas and its end offset is records.
func checkTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, records int64) {
	t.Helper()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := td[topic].Partitions[0]; !ok || len(p.Replicas) != 3 {
		t.Errorf("partition 0 of %s: %+v, want 3 replicas", topic, p)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := ends.Lookup(topic, 0); !ok || o.Err != nil || o.Offset != records {
		t.Errorf("end offset of %s: %+v, want %d", topic, o, records)
	}
}

// quorumVoters returns the ids of the QUORUM section's leader and follower rows.
func quorumVoters(out string) []string {
	_, section, ok := strings.Cut(out, "\nQUORUM\n")
	if !ok {
		return nil
	}
	var ids []string
	for _, l := range strings.Split(section, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[1] == "leader" || f[1] == "follower") {
			ids = append(ids, f[0])
		}
	}
	return ids
}

var startedRE = regexp.MustCompile(`started (node-\d+) \(pid (\d+)\)`)

// nodePIDs reads the nodes' process ids from the dev cluster's log.
func nodePIDs(t *testing.T, logs string, n int) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, m := range startedRE.FindAllStringSubmatch(logs, -1) {
		pid, _ := strconv.Atoi(m[2])
		pids[m[1]] = pid
	}
	if len(pids) != n {
		t.Fatalf("found pids %v in the log, want %d nodes", pids, n)
	}
	return pids
}
