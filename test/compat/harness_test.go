// Package compat drives third-party Kafka clients against a built `poste serve`: kcat and
// confluent-kafka-python (both on librdkafka) and kafkajs. Each client runs the scenarios of
// scenarios_test.go through a thin script (compat.py, compat.js) or its command line (kcat),
// and franz-go, the reference, reads back what each wrote. The clients are installed by
// install.sh; a missing client fails the suite, it is never skipped.
package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// pythonBin is Debian's interpreter, the one python3-confluent-kafka installs into; a
// `python3` earlier on PATH may be another installation without the package.
const pythonBin = "/usr/bin/python3"

// clientTimeout bounds one client invocation; every scenario's invocation takes seconds.
const clientTimeout = 90 * time.Second

// errNoTimestamps is returned by a client that cannot set a record's timestamp.
var errNoTimestamps = errors.New("client cannot set record timestamps")

// sendRecord is one record a client is asked to produce. A nil Key sends no key, a nil
// Timestamp leaves the timestamp to the client (its clock), a nil Partition leaves the choice
// to the client's partitioner.
type sendRecord struct {
	Key       *string     `json:"key"`
	Value     string      `json:"value"`
	Headers   [][2]string `json:"headers,omitempty"`
	Timestamp *int64      `json:"timestamp"`
	Partition *int32      `json:"partition"`
}

// gotRecord is one record as a client decoded it.
type gotRecord struct {
	Topic         string      `json:"topic"`
	Partition     int32       `json:"partition"`
	Offset        int64       `json:"offset"`
	Key           *string     `json:"key"`
	Value         *string     `json:"value"`
	Headers       [][2]string `json:"headers"`
	Timestamp     int64       `json:"timestamp"`
	TimestampType string      `json:"timestamp_type"` // "create" or "log_append"
}

// client is a third-party Kafka client under test, one process per call. Methods return the
// client's failure as an error (with its stderr); they are called from the test goroutine only.
type client interface {
	name() string
	// produce sends recs, in order, to topic with one producer compressing with codec
	// ("none", "gzip", "snappy", "lz4", "zstd"), and returns once all are acknowledged.
	produce(t *testing.T, topic, codec string, recs []sendRecord) error
	// consume reads every partition of each topic from its start to the end offset listed
	// when reading starts, without a consumer group.
	consume(t *testing.T, topics ...string) ([]gotRecord, error)
	// offsetsForTimes answers ListOffsets by timestamp for one partition, one lookup per
	// timestamp, as the client reports it.
	offsetsForTimes(t *testing.T, topic string, partition int32, timestamps []int64) ([]int64, error)
}

// topicCreator is a client that can create topics (kcat cannot).
type topicCreator interface {
	createTopic(t *testing.T, topic string, partitions int32) error
}

// broker is a `poste serve` child process listening on a free loopback port.
type broker struct {
	addr    string
	cmd     *exec.Cmd
	logPath string
}

// suiteDir is the directory of this package, where the scripts and node_modules live.
func suiteDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the compat suite directory")
	}
	return filepath.Dir(file)
}

// requireClients fails the test, saying how to install them, if any client is missing.
func requireClients(t *testing.T, dir string) {
	t.Helper()
	const install = "install the clients with test/compat/install.sh"
	var missing []string
	if _, err := exec.LookPath("kcat"); err != nil {
		missing = append(missing, "kcat is not on PATH (Debian package kcat)")
	}
	if out, err := exec.Command(pythonBin, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("%s cannot import confluent_kafka (Debian package python3-confluent-kafka): %v %s",
			pythonBin, err, bytes.TrimSpace(out)))
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node is not on PATH (Node.js 20)")
	}
	for _, mod := range []string{"kafkajs", "kafkajs-snappy", "kafkajs-lz4", "@mongodb-js/zstd"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", mod, "package.json")); err != nil {
			missing = append(missing, fmt.Sprintf("npm package %s is not in test/compat/node_modules (npm ci --prefix test/compat)", mod))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("third-party clients missing; %s:\n  %s", install, strings.Join(missing, "\n  "))
	}
}

// startBroker builds poste (or takes $POSTE_COMPAT_BINARY) and starts `poste serve` on a free port in a temp dir, with
// extra appended to its flags (such as --override key=value); the broker is stopped with SIGTERM when the test ends and
// its log is printed if the test failed.
func startBroker(t *testing.T, extra ...string) *broker {
	t.Helper()
	tmp := t.TempDir()
	// POSTE_COMPAT_BINARY runs the suite against an already built poste (a release, say).
	bin := os.Getenv("POSTE_COMPAT_BINARY")
	if bin == "" {
		bin = filepath.Join(tmp, "poste")
		build := exec.Command("go", "build", "-o", bin, "github.com/poste-io/poste/cmd/poste")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build poste: %v\n%s", err, out)
		}
	}
	addr := testkit.FreeAddr(t)

	b := &broker{addr: addr, logPath: filepath.Join(tmp, "broker.log")}
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	level := os.Getenv("POSTE_COMPAT_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	b.cmd = exec.Command(bin, "serve",
		"--listeners", "PLAINTEXT://"+addr,
		"--log.dirs", filepath.Join(tmp, "data"),
		"--log-level", level)
	b.cmd.Args = append(b.cmd.Args, extra...)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			b.cmd.Process.Kill()
			<-exited
			t.Error("broker did not stop within 20s of SIGTERM")
		}
		if t.Failed() {
			out, _ := os.ReadFile(b.logPath)
			t.Logf("broker log (%s):\n%s", b.logPath, tail(out, 200))
		}
	})

	// The broker serves once its partitions are open; Metadata answering proves it.
	adm := b.admin(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := adm.BrokerMetadata(ctx)
		cancel()
		if err == nil {
			return b
		}
		select {
		case err := <-exited:
			t.Fatalf("broker exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not serving after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, lines int) []byte {
	all := bytes.SplitAfter(b, []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return bytes.Join(all, nil)
}

// franz returns a franz-go client of the broker, closed when the test ends.
func (b *broker) franz(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (b *broker) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(b.franz(t))
}

// readAll reads every record of topic with franz-go, from each partition's start to its end
// offset as listed now, ordered by partition then offset.
func (b *broker) readAll(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := b.admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s[%d]: %v", topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			start[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	var recs []*kgo.Record
	if len(want) == 0 {
		return recs
	}
	cl := b.franz(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxBytes(8<<20), kgo.FetchMaxPartitionBytes(4<<20))
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v; still reading %v", topic, err, want)
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", tp, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return recs
}

// scriptClient runs compat.py or compat.js: one process per command, JSON request on stdin,
// JSON result on stdout.
type scriptClient struct {
	label     string
	argv      []string
	bootstrap string
	dir       string
}

func (c *scriptClient) name() string { return c.label }

func (c *scriptClient) run(t *testing.T, command string, req, resp any) error {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.argv[0], append(c.argv[1:], c.bootstrap, command)...)
	cmd.Dir = c.dir
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", c.label, command, err, tail(stderr.Bytes(), 40))
	}
	if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
		return fmt.Errorf("%s %s: bad result %q: %v\n%s", c.label, command, tail(stdout.Bytes(), 5), err, tail(stderr.Bytes(), 40))
	}
	return nil
}

func (c *scriptClient) createTopic(t *testing.T, topic string, partitions int32) error {
	var resp struct {
		Created bool `json:"created"`
	}
	if err := c.run(t, "create_topic", map[string]any{"topic": topic, "partitions": partitions}, &resp); err != nil {
		return err
	}
	if !resp.Created {
		return fmt.Errorf("%s: topic %s not created", c.label, topic)
	}
	return nil
}

func (c *scriptClient) produce(t *testing.T, topic, codec string, recs []sendRecord) error {
	var resp struct {
		Sent int `json:"sent"`
	}
	req := map[string]any{"topic": topic, "compression": codec, "records": recs}
	if err := c.run(t, "produce", req, &resp); err != nil {
		return err
	}
	if resp.Sent != len(recs) {
		return fmt.Errorf("%s: sent %d of %d records", c.label, resp.Sent, len(recs))
	}
	return nil
}

func (c *scriptClient) consume(t *testing.T, topics ...string) ([]gotRecord, error) {
	var resp struct {
		Records []gotRecord `json:"records"`
	}
	err := c.run(t, "consume", map[string]any{"topics": topics}, &resp)
	return resp.Records, err
}

func (c *scriptClient) offsetsForTimes(t *testing.T, topic string, partition int32, timestamps []int64) ([]int64, error) {
	var resp struct {
		Offsets []int64 `json:"offsets"`
	}
	req := map[string]any{"topic": topic, "partition": partition, "timestamps": timestamps}
	err := c.run(t, "offsets_for_times", req, &resp)
	return resp.Offsets, err
}

// kcatClient drives kcat's command line. kcat cannot create topics nor set timestamps, and
// its -H headers apply to every record of one invocation, so produce runs one kcat per run
// of records sharing headers, keyedness and partition.
type kcatClient struct {
	bootstrap string
}

func (kcatClient) name() string { return "kcat" }

func (k kcatClient) kcat(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", append([]string{"-b", k.bootstrap}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kcat %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 40))
	}
	return stdout.Bytes(), nil
}

func (k kcatClient) produce(t *testing.T, topic, codec string, recs []sendRecord) error {
	for len(recs) > 0 {
		n := 1
		for n < len(recs) && sameKcatRun(recs[0], recs[n]) {
			n++
		}
		run := recs[:n]
		recs = recs[n:]
		args := []string{"-P", "-t", topic,
			// librdkafka's default partitioner hashes keys with CRC32; murmur2_random
			// places keys as the Java client does. Sticky partitioning would put every
			// unkeyed record of one quick run on one partition.
			"-X", "partitioner=murmur2_random", "-X", "sticky.partitioning.linger.ms=0",
			"-z", codec}
		first := run[0]
		if first.Key != nil {
			args = append(args, "-K", "\t")
		}
		if first.Partition != nil {
			args = append(args, "-p", strconv.Itoa(int(*first.Partition)))
		}
		for _, h := range first.Headers {
			args = append(args, "-H", h[0]+"="+h[1])
		}
		var in bytes.Buffer
		for _, r := range run {
			if r.Timestamp != nil {
				return errNoTimestamps
			}
			if strings.ContainsAny(r.Value, "\n") || (r.Key != nil && strings.ContainsAny(*r.Key, "\t\n")) {
				t.Fatalf("kcat record %q cannot hold a newline or a tab in its key", r.Value)
			}
			if r.Key != nil {
				in.WriteString(*r.Key + "\t")
			}
			in.WriteString(r.Value + "\n")
		}
		if _, err := k.kcat(t, in.Bytes(), args...); err != nil {
			return err
		}
	}
	return nil
}

func sameKcatRun(a, b sendRecord) bool {
	return (a.Key == nil) == (b.Key == nil) &&
		slices.Equal(a.Headers, b.Headers) &&
		(a.Partition == nil) == (b.Partition == nil) &&
		(a.Partition == nil || *a.Partition == *b.Partition)
}

// kcatJSON is one line of `kcat -C -J`.
type kcatJSON struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	TSType    string   `json:"tstype"`
	TS        int64    `json:"ts"`
	Headers   []string `json:"headers"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
}

func (k kcatClient) consume(t *testing.T, topics ...string) ([]gotRecord, error) {
	var recs []gotRecord
	for _, topic := range topics {
		// -C without -G reads every partition without a group; -e stops at their ends.
		out, err := k.kcat(t, nil, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q",
			"-X", "fetch.message.max.bytes=2097152")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var m kcatJSON
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				return nil, fmt.Errorf("kcat -J line %q: %v", tail(sc.Bytes(), 1), err)
			}
			if len(m.Headers)%2 != 0 {
				return nil, fmt.Errorf("kcat headers %q are not pairs", m.Headers)
			}
			r := gotRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
				Key: m.Key, Value: m.Payload, Timestamp: m.TS, TimestampType: "log_append"}
			if m.TSType == "create" {
				r.TimestampType = "create"
			}
			for i := 0; i < len(m.Headers); i += 2 {
				r.Headers = append(r.Headers, [2]string{m.Headers[i], m.Headers[i+1]})
			}
			recs = append(recs, r)
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

var kcatOffsetLine = regexp.MustCompile(`^(\S+) \[(\d+)\] offset (-?\d+)$`)

func (k kcatClient) offsetsForTimes(t *testing.T, topic string, partition int32, timestamps []int64) ([]int64, error) {
	var offsets []int64
	// One query per timestamp: kcat answers a repeated partition with one lookup only.
	for _, ts := range timestamps {
		out, err := k.kcat(t, nil, "-Q", "-t", fmt.Sprintf("%s:%d:%d", topic, partition, ts))
		if err != nil {
			return nil, err
		}
		m := kcatOffsetLine.FindStringSubmatch(strings.TrimSpace(string(out)))
		if m == nil || m[1] != topic || m[2] != strconv.Itoa(int(partition)) {
			return nil, fmt.Errorf("kcat -Q answered %q", out)
		}
		o, _ := strconv.ParseInt(m[3], 10, 64)
		offsets = append(offsets, o)
	}
	return offsets, nil
}
