package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestNodeConfig(t *testing.T) {
	tests := []struct {
		id, n, base int
		want        []string
	}{
		{id: 1, n: 3, base: 9092, want: []string{
			"node.id=1\n",
			"listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n",
			"advertised.listeners=PLAINTEXT://127.0.0.1:9092\n",
			"controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097\n",
			"log.dirs=/d\n",
			"default.replication.factor=3\n",
			"min.insync.replicas=2\n",
			"offsets.topic.replication.factor=3\n",
		}},
		{id: 3, n: 3, base: 20000, want: []string{
			"node.id=3\n",
			"listeners=PLAINTEXT://127.0.0.1:20004,CONTROLLER://127.0.0.1:20005\n",
			"controller.quorum.voters=1@127.0.0.1:20001,2@127.0.0.1:20003,3@127.0.0.1:20005\n",
		}},
		{id: 1, n: 1, base: 9092, want: []string{
			"default.replication.factor=1\n",
			"min.insync.replicas=1\n",
			"controller.quorum.voters=1@127.0.0.1:9093\n",
		}},
	}
	for _, tt := range tests {
		got := NodeConfig(tt.id, tt.n, tt.base, "/d")
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("NodeConfig(%d, %d, %d) lacks %q:\n%s", tt.id, tt.n, tt.base, w, got)
			}
		}
	}
}

func TestParseDevClusterLines(t *testing.T) {
	tests := []struct {
		line      string
		node, pid int
		started   bool
		boot      []string
	}{
		{line: "poste dev cluster: started node-2 (pid 24636): clients 127.0.0.1:31094, quorum 127.0.0.1:31095, config /x",
			node: 2, pid: 24636, started: true},
		{line: "bootstrap servers: 127.0.0.1:31092,127.0.0.1:31094,127.0.0.1:31096",
			boot: []string{"127.0.0.1:31092", "127.0.0.1:31094", "127.0.0.1:31096"}},
		{line: "bootstrap servers: "},
		{line: "[node-1] time=… level=INFO msg=\"broker registered\""},
	}
	for _, tt := range tests {
		node, pid, ok := ParseStarted(tt.line)
		if ok != tt.started || node != tt.node || pid != tt.pid {
			t.Errorf("ParseStarted(%q) = %d, %d, %v", tt.line, node, pid, ok)
		}
		boot, ok := ParseBootstrap(tt.line)
		if ok != (tt.boot != nil) || strings.Join(boot, ",") != strings.Join(tt.boot, ",") {
			t.Errorf("ParseBootstrap(%q) = %v, %v", tt.line, boot, ok)
		}
	}
}

func TestTopicShort(t *testing.T) {
	md := func(parts ...kadm.PartitionDetail) kadm.Metadata {
		pd := kadm.PartitionDetails{}
		for _, p := range parts {
			pd[p.Partition] = p
		}
		return kadm.Metadata{Topics: kadm.TopicDetails{"t": {Topic: "t", Partitions: pd}}}
	}
	full := kadm.PartitionDetail{Partition: 0, Leader: 1, ISR: []int32{1, 2, 3}}
	tests := []struct {
		name  string
		md    kadm.Metadata
		parts int32
		isr   int
		want  string // substring; "" means ready
	}{
		{"ready", md(full), 1, 3, ""},
		{"missing", kadm.Metadata{}, 1, 3, "missing"},
		{"too few partitions", md(full), 2, 3, "1 partitions, want 2"},
		{"no leader", md(kadm.PartitionDetail{Partition: 0, Leader: -1, ISR: []int32{1}}), 1, 1, "no leader"},
		{"short ISR", md(kadm.PartitionDetail{Partition: 0, Leader: 1, ISR: []int32{1, 2}}), 1, 3, "want 3"},
	}
	for _, tt := range tests {
		got := topicShort(tt.md, "t", tt.parts, tt.isr)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: topicShort = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSurvivor(t *testing.T) {
	tests := []struct {
		ids  []int32
		dead int32
		want int32
	}{
		{[]int32{1, 2, 3}, 1, 2},
		{[]int32{1, 2, 3}, 2, 1},
		{[]int32{3}, 3, -1},
		{nil, 1, -1},
	}
	for _, tt := range tests {
		if got := Survivor(tt.ids, tt.dead); got != tt.want {
			t.Errorf("Survivor(%v, %d) = %d, want %d", tt.ids, tt.dead, got, tt.want)
		}
	}
}

// fakeBroker writes a script that stands for `poste serve`: it runs until
// signalled, exiting 0 on SIGTERM as a broker's controlled shutdown does.
func fakeBroker(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-poste")
	script := "#!/bin/sh\ntrap 'exit 0' TERM\necho ready\nwhile true; do sleep 0.05; done\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitReady waits until the fake broker's current start has installed its
// SIGTERM trap: a signal before that would kill the shell instead.
func waitReady(t *testing.T, n *Node, starts int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(n.LogPath)
		if strings.Count(string(b), "ready\n") >= starts {
			return
		}
	}
	t.Fatalf("node %d never ready", n.ID)
}

func TestNodeLifecycle(t *testing.T) {
	c, err := New(fakeBroker(t), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 3 || c.Node(2).ID != 2 || c.Node(0) != nil || c.Node(4) != nil {
		t.Fatalf("nodes: %+v", c.Nodes)
	}
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.ConfigPath)
		if err != nil || !strings.Contains(string(b), "log.dirs="+n.DataDir) {
			t.Fatalf("config of node %d: %v\n%s", n.ID, err, b)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	n := c.Node(2)
	waitReady(t, n, 1) // a kill before the first start printed "ready" would leave one line
	if err := n.Start(); !errors.Is(err, ErrStart) {
		t.Errorf("second Start of a running node: %v, want ErrStart", err)
	}
	before := time.Now()
	at, err := n.Kill()
	if err != nil || at.Before(before) || n.Alive() {
		t.Fatalf("Kill = %v, %v; alive %v", at, err, n.Alive())
	}
	if err := c.AllAlive(); !errors.Is(err, ErrExit) {
		t.Errorf("AllAlive after a kill: %v, want ErrExit", err)
	}
	if _, err := n.Kill(); !errors.Is(err, ErrExit) {
		t.Errorf("Kill of a dead node: %v, want ErrExit", err)
	}
	if err := n.Start(); err != nil || !n.Alive() {
		t.Fatalf("restart: %v", err)
	}
	if err := c.AllAlive(); err != nil {
		t.Errorf("AllAlive after the restart: %v", err)
	}
	for _, nd := range c.Nodes {
		starts := 1
		if nd == n {
			starts = 2
		}
		waitReady(t, nd, starts)
	}
	if err := c.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	log, _ := os.ReadFile(n.LogPath)
	if got := strings.Count(string(log), "=== start"); got != 2 {
		t.Errorf("node log records %d starts, want 2", got)
	}
}
