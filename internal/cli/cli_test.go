package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/cli"
	"github.com/poste-io/poste/internal/testkit"
)

// syncBuffer is a bytes buffer safe for a running command and a polling test.
type syncBuffer struct {
	mu struct {
		sync.Mutex
		b strings.Builder
	}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.b.String()
}

// result is one in-process run of the poste command.
type result struct {
	code           int
	stdout, stderr string
}

// runCtx runs `poste args...` in-process with stdin and returns its exit code and output.
func runCtx(ctx context.Context, stdin string, args ...string) result {
	root := cli.NewRoot()
	var out, errb syncBuffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := cli.Execute(ctx, root)
	return result{code, out.String(), errb.String()}
}

// poste runs a command against b and fails the test unless it exits with want.
func poste(t *testing.T, b *testkit.Broker, want int, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := runCtx(ctx, stdin, append([]string{"-b", b.Addr}, args...)...)
	if r.code != want {
		t.Fatalf("poste %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// lines splits output into its lines, without the trailing empty one.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// row finds the table row whose first column is key and returns its columns.
func row(t *testing.T, out, key string) []string {
	t.Helper()
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == key {
			return f
		}
	}
	t.Fatalf("no row %q in:\n%s", key, out)
	return nil
}

func TestTopicCommands(t *testing.T) {
	b := testkit.StartBroker(t, nil)

	r := poste(t, b, 0, "", "topic", "create", "alpha", "beta", "-p", "3", "-c", "retention.ms=123456")
	if got := row(t, r.stdout, "alpha"); got[1] != "OK" {
		t.Fatalf("create alpha: %v", got)
	}
	r = poste(t, b, 1, "", "topic", "create", "alpha")
	if !strings.Contains(r.stdout, "TOPIC_ALREADY_EXISTS") || !strings.Contains(r.stderr, "create topic alpha") {
		t.Fatalf("re-create: stdout %q stderr %q", r.stdout, r.stderr)
	}
	poste(t, b, 0, "", "topic", "create", "dry", "--dry-run")

	r = poste(t, b, 0, "", "topic", "list")
	for _, want := range [][]string{{"alpha", "3", "1"}, {"beta", "3", "1"}} {
		if got := row(t, r.stdout, want[0]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("list row %v, want %v", got, want)
		}
	}
	if strings.Contains(r.stdout, "dry") {
		t.Errorf("--dry-run created the topic:\n%s", r.stdout)
	}

	poste(t, b, 0, "a\nb\nc\n", "produce", "alpha", "-p", "1")
	r = poste(t, b, 0, "", "topic", "describe", "alpha")
	if got := row(t, r.stdout, "PARTITIONS"); len(got) != 2 || got[1] != "3" {
		t.Errorf("describe PARTITIONS row %v", got)
	}
	if got := row(t, r.stdout, "retention.ms"); got[1] != "123456" || got[2] != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("describe retention.ms row %v", got)
	}
	if got := row(t, r.stdout, "cleanup.policy"); got[1] != "delete" || got[2] != "DEFAULT_CONFIG" {
		t.Errorf("describe cleanup.policy row %v", got)
	}
	// PARTITION LEADER EPOCH REPLICAS ISR LOG-START-OFFSET HIGH-WATERMARK
	if got := row(t, r.stdout, "1"); strings.Join(got[3:], " ") != "[1] [1] 0 3" || got[1] != "1" {
		t.Errorf("describe partition 1 row %v, want leader 1, [1] [1] 0 3", got)
	}
	if got := row(t, r.stdout, "0"); strings.Join(got[3:], " ") != "[1] [1] 0 0" {
		t.Errorf("describe partition 0 row %v", got)
	}

	poste(t, b, 0, "", "topic", "add-partitions", "alpha", "-n", "2")
	r = poste(t, b, 0, "", "topic", "list")
	if got := row(t, r.stdout, "alpha"); got[1] != "5" {
		t.Errorf("after add-partitions: %v", got)
	}
	r = poste(t, b, 4, "", "topic", "add-partitions", "nope", "-n", "1")
	if !strings.Contains(r.stderr, `unknown topic "nope"`) {
		t.Errorf("add-partitions to unknown: %q", r.stderr)
	}

	// alter-config sets and deletes topic configs; describe shows them as dynamic topic configs.
	poste(t, b, 0, "", "topic", "alter-config", "alpha", "--set", "retention.ms=3600000", "--delete", "segment.ms")
	r = poste(t, b, 0, "", "topic", "describe", "alpha")
	if !strings.Contains(r.stdout, "retention.ms") || !strings.Contains(r.stdout, "3600000") || !strings.Contains(r.stdout, "DYNAMIC_TOPIC_CONFIG") {
		t.Errorf("describe after alter-config:\n%s", r.stdout)
	}
	r = poste(t, b, 1, "", "topic", "alter-config", "alpha", "--set", "retention.ms=abc")
	if !strings.Contains(r.stderr, "INVALID_CONFIG") {
		t.Errorf("alter-config with a bad value: %q", r.stderr)
	}
	poste(t, b, 2, "", "topic", "alter-config", "alpha")

	r = poste(t, b, 4, "", "topic", "describe", "nope")
	if !strings.Contains(r.stderr, `Error: unknown topic "nope"`) {
		t.Errorf("describe unknown: %q", r.stderr)
	}

	poste(t, b, 0, "", "topic", "delete", "alpha")
	r = poste(t, b, 0, "", "topic", "list")
	if strings.Contains(r.stdout, "alpha") || !strings.Contains(r.stdout, "beta") {
		t.Errorf("after delete:\n%s", r.stdout)
	}
	r = poste(t, b, 4, "", "topic", "delete", "alpha")
	if !strings.Contains(r.stdout, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("delete twice: %q", r.stdout)
	}
}

func TestProduceConsume(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	poste(t, b, 0, "", "topic", "create", "t", "-p", "3")

	// Keys, headers, an explicit partition and -v.
	r := poste(t, b, 0, "k1:v1\nk2:v2\nk3:v3", "produce", "t", "-K", ":", "-H", "h1=x", "-H", "h2=y=z", "-p", "1", "-v")
	want := []string{
		"topic=t partition=1 offset=0",
		"topic=t partition=1 offset=1",
		"topic=t partition=1 offset=2",
	}
	if got := lines(r.stdout); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("-v output %q, want %q", got, want)
	}

	r = poste(t, b, 0, "", "consume", "t", "--from-beginning", "-n", "3", "--format", `%t %p %o %k %v %h\n`)
	if got := lines(r.stdout); strings.Join(got, "|") != "t 1 0 k1 v1 h1=x,h2=y=z|t 1 1 k2 v2 h1=x,h2=y=z|t 1 2 k3 v3 h1=x,h2=y=z" {
		t.Fatalf("--format output %q", got)
	}
	if !strings.Contains(r.stderr, "consumed 3 record(s)") || !strings.Contains(r.stderr, "t[1]: 3") {
		t.Errorf("summary %q", r.stderr)
	}

	r = poste(t, b, 0, "", "consume", "t", "--from-beginning", "-n", "1", "--json")
	var rec struct {
		Topic     string
		Partition int32
		Offset    int64
		Timestamp int64
		Key       *string
		Value     *string
		Headers   []struct{ Key, Value string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	if rec.Topic != "t" || rec.Partition != 1 || rec.Offset != 0 || *rec.Key != "k1" || *rec.Value != "v1" ||
		len(rec.Headers) != 2 || rec.Headers[1].Key != "h2" || rec.Headers[1].Value != "y=z" ||
		time.Since(time.UnixMilli(rec.Timestamp)) > time.Hour {
		t.Fatalf("--json record %+v", rec)
	}

	// A line without the separator fails the command (exit 1) naming the line.
	r = poste(t, b, 1, "a:b\nnosep\n", "produce", "t", "-K", ":", "-p", "0")
	if !strings.Contains(r.stderr, "line 2 has no key separator") {
		t.Errorf("missing separator: %q", r.stderr)
	}
	// A fixed key, every codec, acks 1.
	poste(t, b, 0, "", "topic", "create", "c", "-p", "1")
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		poste(t, b, 0, codec+"\n", "produce", "c", "-k", "fixed", "-z", codec, "--acks", "1", "--linger", "1ms")
	}
	r = poste(t, b, 0, "", "consume", "c", "--from-beginning", "-n", "5", "--format", `%k=%v,`)
	if r.stdout != "fixed=none,fixed=gzip,fixed=snappy,fixed=lz4,fixed=zstd," {
		t.Errorf("codecs round trip: %q", r.stdout)
	}

	// Unknown topic: exit 4 for both commands.
	r = poste(t, b, 4, "x\n", "produce", "nope")
	if !strings.Contains(r.stderr, `unknown topic "nope"`) {
		t.Errorf("produce to unknown topic: %q", r.stderr)
	}
	poste(t, b, 4, "", "consume", "nope", "-n", "1")
}

func TestConsumeOffsets(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	poste(t, b, 0, "", "topic", "create", "o", "-p", "1")
	poste(t, b, 0, "r0\nr1\nr2\nr3\n", "produce", "o")
	time.Sleep(5 * time.Millisecond) // the next records get a later client timestamp
	boundary := time.Now()
	time.Sleep(5 * time.Millisecond)
	poste(t, b, 0, "r4\nr5\n", "produce", "o")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"from-beginning", []string{"--from-beginning", "-n", "2"}, "r0|r1"},
		{"offset", []string{"--offset", "2", "-n", "2"}, "r2|r3"},
		{"negative offset", []string{"--offset", "-2", "-n", "2"}, "r4|r5"},
		{"offset below the log start", []string{"--offset", "0", "-n", "1"}, "r0"},
		{"timestamp ms", []string{"--timestamp", strconv.FormatInt(boundary.UnixMilli(), 10), "-n", "2"}, "r4|r5"},
		{"timestamp RFC3339", []string{"--timestamp", boundary.UTC().Format(time.RFC3339Nano), "-n", "1"}, "r4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := poste(t, b, 0, "", append([]string{"consume", "o", "-q"}, tc.args...)...)
			if got := strings.Join(lines(r.stdout), "|"); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if r.stderr != "" {
				t.Errorf("-q printed %q", r.stderr)
			}
		})
	}

	t.Run("from-end follows new records", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		done := make(chan result, 1)
		go func() { done <- runCtx(ctx, "", "-b", b.Addr, "consume", "o", "--from-end", "-n", "2") }()
		// The consumer starts at the end at some point after it starts: keep producing
		// until it has seen two new records.
		for i := 0; ; i++ {
			select {
			case r := <-done:
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				for _, l := range lines(r.stdout) {
					if !strings.HasPrefix(l, "new") {
						t.Fatalf("--from-end printed an old record %q", l)
					}
				}
				if n := len(lines(r.stdout)); n != 2 {
					t.Fatalf("-n 2 printed %d records", n)
				}
				return
			case <-time.After(100 * time.Millisecond):
				poste(t, b, 0, fmt.Sprintf("new%d\n", i), "produce", "o")
			}
		}
	})

	t.Run("follow until cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := cli.NewRoot()
		var out, errb syncBuffer
		root.SetArgs([]string{"-b", b.Addr, "consume", "o", "--from-beginning"})
		root.SetOut(&out)
		root.SetErr(&errb)
		done := make(chan int, 1)
		go func() { done <- cli.Execute(ctx, root) }()
		deadline := time.Now().Add(30 * time.Second)
		for len(lines(out.String())) < 6 {
			if time.Now().After(deadline) {
				t.Fatalf("consumed only %q", out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel() // as SIGINT does
		if code := <-done; code != 0 {
			t.Fatalf("exit %d after cancel: %s", code, errb.String())
		}
		if !regexp.MustCompile(`consumed \d+ record\(s\)\n  o\[0\]: \d+\n`).MatchString(errb.String()) {
			t.Fatalf("summary %q", errb.String())
		}
	})
}

// murmur2 is Kafka's Utils.murmur2, written from its description: 32-bit MurmurHash2 with
// seed 0x9747b28c over little-endian 4-byte blocks, computed with Java's signed ints.
func murmur2(data []byte) int32 {
	const m int32 = 0x5bd1e995
	h := int32(-1756908916) ^ int32(len(data)) // seed 0x9747b28c as a Java int
	n := len(data) / 4
	for i := 0; i < n; i++ {
		k := int32(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		k *= m
		k ^= int32(uint32(k) >> 24)
		k *= m
		h *= m
		h ^= k
	}
	rest := data[4*n:]
	if len(rest) >= 3 {
		h ^= int32(rest[2]) << 16
	}
	if len(rest) >= 2 {
		h ^= int32(rest[1]) << 8
	}
	if len(rest) >= 1 {
		h ^= int32(rest[0])
		h *= m
	}
	h ^= int32(uint32(h) >> 13)
	h *= m
	h ^= int32(uint32(h) >> 15)
	return h
}

// javaPartition is the Java client's choice for a keyed record: toPositive(murmur2) % n.
func javaPartition(key string, n int32) int32 {
	return (murmur2([]byte(key)) & 0x7fffffff) % n
}

func TestMurmur2MatchesJava(t *testing.T) {
	// Known values from Kafka's own test of murmur2 (UtilsTest), to check the reference.
	for key, want := range map[string]int32{"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536} {
		if got := murmur2([]byte(key)); got != want {
			t.Fatalf("reference murmur2(%q) = %d, want %d", key, got, want)
		}
	}
	b := testkit.StartBroker(t, nil)
	poste(t, b, 0, "", "topic", "create", "parties", "-p", "11")
	keys := []string{"Cool pool party", "Horrible Halloween party", "k", "another key", ""}
	var in strings.Builder
	for i, k := range keys {
		fmt.Fprintf(&in, "%s\t%d\n", k, i)
	}
	r := poste(t, b, 0, in.String(), "produce", "parties", "-K", "\t", "-v")
	got := lines(r.stdout)
	if len(got) != len(keys) {
		t.Fatalf("-v printed %q", got)
	}
	for i, k := range keys {
		want := javaPartition(k, 11)
		if !strings.Contains(got[i], fmt.Sprintf("partition=%d ", want)) {
			t.Errorf("key %q: %s, Java would choose partition %d", k, got[i], want)
		}
	}
	// The consumer agrees on where the records are.
	r = poste(t, b, 0, "", "consume", "parties", "--from-beginning", "-n", "2", "--json", "-q")
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var rec struct {
			Key       string
			Partition int32
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if want := javaPartition(rec.Key, 11); rec.Partition != want {
			t.Errorf("consumed %q from partition %d, want %d", rec.Key, rec.Partition, want)
		}
	}

	// round-robin ignores keys and spreads records evenly; sticky keeps one partition.
	poste(t, b, 0, "", "topic", "create", "rr", "-p", "3")
	r = poste(t, b, 0, "a\na\na\na\na\na\n", "produce", "rr", "--partitioner", "round-robin", "-v")
	counts := map[string]int{}
	for _, l := range lines(r.stdout) {
		counts[strings.Fields(l)[1]]++
	}
	if len(counts) != 3 || counts["partition=0"] != 2 || counts["partition=1"] != 2 || counts["partition=2"] != 2 {
		t.Errorf("round-robin spread %v", counts)
	}
	poste(t, b, 2, "", "produce", "rr", "--partitioner", "fnv")
}

func TestClusterCommands(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	r := poste(t, b, 0, "", "cluster", "info")
	_, port, _ := net.SplitHostPort(b.Addr)
	if got := row(t, r.stdout, "CONTROLLER"); got[1] != "1" {
		t.Errorf("controller row %v", got)
	}
	if got := row(t, r.stdout, "CLUSTER"); len(got) != 2 || got[1] == "-" {
		t.Errorf("cluster row %v", got)
	}
	if got := row(t, r.stdout, "1*"); !strings.HasSuffix(got[1], ":"+port) || got[2] != "-" {
		t.Errorf("broker row %v, want address ending :%s and no rack", got, port)
	}

	r = poste(t, b, 0, "", "cluster", "config", "get", "num.partitions", "auto.create.topics.enable")
	if got := row(t, r.stdout, "num.partitions"); got[1] != "1" || got[2] != "DEFAULT_CONFIG" {
		t.Errorf("num.partitions row %v", got)
	}
	poste(t, b, 0, "", "cluster", "config", "get", "--broker", "1")
	r = poste(t, b, 1, "", "cluster", "config", "get", "no.such.key")
	if !strings.Contains(r.stderr, `no config named "no.such.key"`) {
		t.Errorf("unknown key: %q", r.stderr)
	}
	// log.retention.ms is a dynamic broker config in Kafka; log.retention.hours is not.
	poste(t, b, 0, "", "cluster", "config", "set", "log.retention.ms=7200000")
	r = poste(t, b, 0, "", "cluster", "config", "get", "log.retention.ms")
	if got := row(t, r.stdout, "log.retention.ms"); got[1] != "7200000" {
		t.Errorf("log.retention.ms after set: %v", got)
	}
	r = poste(t, b, 1, "", "cluster", "config", "set", "log.retention.hours=1")
	if !strings.Contains(r.stderr, "dynamically") {
		t.Errorf("setting a static key: %q", r.stderr)
	}
	poste(t, b, 2, "", "cluster", "config", "set", "novalue")
}

func TestUnreachableBroker(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"topic", "list"},
		{"produce", "t"},
		{"consume", "t"},
		{"cluster", "info"},
	} {
		r := runCtx(context.Background(), "x\n", append([]string{"-b", addr}, args...)...)
		if r.code != cli.ExitUnreachable {
			t.Errorf("%v: exit %d, want %d", args, r.code, cli.ExitUnreachable)
		}
		if want := "Error: cannot reach broker " + addr + ": connection refused\n"; r.stderr != want {
			t.Errorf("%v: stderr %q, want %q", args, r.stderr, want)
		}
	}
	// POSTE_BROKERS is used when --brokers is not given.
	t.Setenv("POSTE_BROKERS", addr)
	if r := runCtx(context.Background(), "", "topic", "list"); !strings.Contains(r.stderr, addr) {
		t.Errorf("POSTE_BROKERS ignored: %q", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"topci"},
		{"topic", "craete", "x"},
		{"topic", "create"},
		{"topic", "create", "x", "-p", "0"},
		{"topic", "list", "--bogus"},
		{"produce"},
		{"produce", "t", "--acks", "2"},
		{"produce", "t", "--compression", "brotli"},
		{"produce", "t", "--key", "k", "--key-separator", ":"},
		{"produce", "t", "--header", "novalue"},
		{"consume", "t", "--from-beginning", "--offset", "3"},
		{"consume", "t", "--format", "%z"},
		{"consume", "t", "--json", "--format", "%v"},
		{"consume", "t", "--timestamp", "soon"},
		{"consume", "t", "--isolation", "dirty"},
		{"cluster", "info", "extra"},
	} {
		// No broker is needed: usage errors are found before connecting.
		r := runCtx(context.Background(), "", append([]string{"-b", "127.0.0.1:1"}, args...)...)
		if r.code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, cli.ExitUsage, r.stderr)
			continue
		}
		if !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, "--help' for usage.") {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
}

func TestConsumerGroupFlagIsWired(t *testing.T) {
	// A --group consumer must go through the group protocol. Against a broker without a
	// group coordinator it must say so rather than consume without a group; against one
	// with a coordinator it must consume and commit the offset of what it printed.
	b := testkit.StartBroker(t, nil)
	poste(t, b, 0, "", "topic", "create", "g", "-p", "1")
	poste(t, b, 0, "only\n", "produce", "g")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := runCtx(ctx, "", "-b", b.Addr, "consume", "g", "--group", "billing", "--from-beginning", "-n", "1")
	switch r.code {
	case cli.ExitError:
		t.Logf("the broker serves no consumer groups: %s", strings.TrimSpace(r.stderr))
		if !strings.Contains(r.stderr, "consumer group billing") || !strings.Contains(r.stderr, "not supported by the broker") {
			t.Fatalf("--group: %q", r.stderr)
		}
	case cli.ExitOK:
		t.Log("the broker serves consumer groups: checking the commit")
		if r.stdout != "only\n" {
			t.Fatalf("--group consumed %q", r.stdout)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offsets.Lookup("g", 0); !ok || o.At != 1 {
			t.Fatalf("committed offset %+v (found %t), want 1", o, ok)
		}
	default:
		t.Fatalf("--group: exit %d: %s", r.code, r.stderr)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && c.Parent() != nil && c.Parent().Name() != "completion" && c.Example == "" {
			t.Errorf("%q has no examples in --help", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := cli.NewRoot()
	root.InitDefaultCompletionCmd()
	walk(root)

	if r := runCtx(context.Background(), "", "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "bash completion") {
		t.Errorf("completion bash: exit %d, %.80q", r.code, r.stdout)
	}

	b := testkit.StartBroker(t, nil)
	poste(t, b, 0, "", "topic", "create", "orders", "other", "-p", "1")
	r := runCtx(context.Background(), "", "-b", b.Addr, cobra.ShellCompRequestCmd, "topic", "describe", "or")
	if got := lines(r.stdout); len(got) != 2 || got[0] != "orders" || got[1] != ":4" {
		t.Errorf("topic completion: %q", got)
	}
}
