package fault

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// childBroker is a poste broker running as a child process, so it can be SIGKILLed.
type childBroker struct {
	bin, dir, log string
	port          int
	cmd           *exec.Cmd
}

func (c *childBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

func (c *childBroker) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(c.bin, "serve",
		"--listeners", "PLAINTEXT://"+c.addr(), "--log.dirs", c.dir,
		"--override", "transaction.state.log.num.partitions=3", "--override", "offsets.topic.num.partitions=3",
		"--log-level", "warn")
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd = cmd
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", c.addr(), 100*time.Millisecond); err == nil {
			conn.Close()
			return
		}
	}
	c.kill()
	t.Fatalf("broker did not start; log:\n%s", c.tail())
}

func (c *childBroker) kill() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c.cmd = nil
}

func (c *childBroker) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// TestConsumeTransformProduceSurvivesSIGKILL runs a consume-transform-produce job
// (GroupTransactSession: read input under read_committed, write output and commit the
// input offsets in one transaction) while the broker is SIGKILLed and restarted on the
// same data directory, three times. Read with read_committed, the output must hold every
// input record exactly once: transactions cut by a kill are aborted (or finished, if their
// commit was decided) on recovery, and the job resumes from the offsets committed with the
// last committed transaction.
func TestConsumeTransformProduceSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the broker and kills it")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "poste")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/poste-io/poste/cmd/poste").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := testkit.FreePort(t)
	b := &childBroker{bin: bin, dir: filepath.Join(tmp, "data"), log: filepath.Join(tmp, "broker.log"), port: port}
	b.start(t)
	t.Cleanup(b.kill)
	defer func() {
		if t.Failed() {
			t.Logf("broker log tail:\n%s", b.tail())
		}
	}()

	const (
		in, out    = "ctp-in", "ctp-out"
		partitions = 3
		n          = 3000
	)
	createTopic(t, b.addr(), in, partitions)
	createTopic(t, b.addr(), out, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	prod := newClient(t, kgo.SeedBrokers(b.addr()), kgo.DefaultProduceTopic(in))
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Key: value(i), Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce input: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(b.addr()),
		kgo.TransactionalID("ctp-job"),
		kgo.ConsumerGroup("ctp-group"),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryTimeout(30*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	var mu sync.Mutex
	committed := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := sess.PollRecords(ctx, 50)
			if ctx.Err() != nil {
				return
			}
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				// The previous End failed while the broker was down, leaving the transaction
				// open: abort it (the session rewinds to the committed offsets, so these
				// records come back) and poll again.
				if _, err := sess.End(ctx, kgo.TryAbort); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			for _, r := range recs {
				sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
			}
			// A failed End (the broker died) aborts; the records are consumed again.
			ok, _ := sess.End(ctx, kgo.TryCommit)
			if ok {
				mu.Lock()
				committed += len(recs)
				mu.Unlock()
			}
		}
	}()
	progress := func() int { mu.Lock(); defer mu.Unlock(); return committed }
	for kill := 1; kill <= 3; kill++ {
		target := kill * n / 5
		for progress() < target {
			if ctx.Err() != nil {
				t.Fatalf("only %d records committed before kill %d", progress(), kill)
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.kill()
		t.Logf("SIGKILL %d after %d records committed", kill, progress())
		time.Sleep(200 * time.Millisecond)
		b.start(t)
	}

	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(b.addr())))
	for {
		lag, err := adm.Lag(ctx, "ctp-group")
		if l, ok := lag["ctp-group"]; err == nil && ok && len(l.Lag) > 0 && l.Lag.Total() == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the job did not consume every input: %v (lag %v)", ctx.Err(), lag)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done

	got := readAll(t, b.addr(), out, partitions, kgo.ReadCommitted())
	seen := make([]int, n)
	for p, rs := range got {
		for _, r := range rs {
			i, err := strconv.Atoi(strings.TrimPrefix(string(r.Value), "out-"))
			if err != nil || i < 0 || i >= n {
				t.Fatalf("%s[%d] offset %d: unexpected value %q", out, p, r.Offset, r.Value)
			}
			seen[i]++
		}
	}
	bad := 0
	for i, c := range seen {
		if c != 1 {
			if bad++; bad <= 10 {
				t.Errorf("input %d appears %d times in the committed output", i, c)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d inputs not exactly once", bad, n)
	}
}
