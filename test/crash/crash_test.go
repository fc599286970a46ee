// Package crash runs the broker as a child process, kills it with SIGKILL while producers send
// with acks=all, restarts it, and checks that every acknowledged record is read back at its
// acknowledged offset, with no duplicates and no gaps.
package crash

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// buildPoste builds the poste binary once for the test.
func buildPoste(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "poste")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/poste-io/poste/cmd/poste")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

type child struct {
	cmd *exec.Cmd
}

func startBroker(t *testing.T, bin, dir string, port int) *child {
	t.Helper()
	cmd := exec.Command(bin, "serve",
		"--listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port),
		"--log.dirs", dir, "--num.partitions", "4", "--log-level", "warn")
	logf, _ := os.OpenFile(filepath.Join(filepath.Dir(dir), "broker.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until it accepts connections.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return &child{cmd: cmd}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("broker did not start")
	return nil
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

func (c *child) stop(t *testing.T) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("broker exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		t.Error("broker did not stop on SIGTERM")
	}
}

type ack struct {
	partition int32
	offset    int64
}

func TestKillNineKeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns brokers")
	}
	bin := buildPoste(t)
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	port := testkit.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	b := startBroker(t, bin, dir, port)

	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 4, 1, nil, "crash"); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	const producers = 4
	var (
		mu    sync.Mutex
		acked = map[string]ack{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(2*time.Minute),
				kgo.RetryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			var pw sync.WaitGroup
			defer pw.Wait()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("p%d-%d", p, i)
				pw.Add(1)
				cl.Produce(ctx, &kgo.Record{Topic: "crash", Key: []byte(fmt.Sprint(i % 13)), Value: []byte(v)}, func(r *kgo.Record, err error) {
					defer pw.Done()
					if err != nil {
						return // not acknowledged: may or may not be in the log
					}
					mu.Lock()
					acked[v] = ack{r.Partition, r.Offset}
					mu.Unlock()
				})
			}
		}(p)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for kill := 0; kill < 3; kill++ {
		time.Sleep(time.Duration(100+rng.Intn(400)) * time.Millisecond)
		b.kill()
		t.Logf("killed broker (round %d), %d acknowledged so far", kill, count())
		b = startBroker(t, bin, dir, port)
	}
	time.Sleep(500 * time.Millisecond) // producers resume against the restarted broker
	close(stop)
	wg.Wait()
	t.Logf("%d records acknowledged", len(acked))
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}

	// Read everything back.
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("crash"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ends, err := kadm.NewClient(cons).ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	seen := map[string]ack{}
	next := map[int32]int64{}
	for n := int64(0); n < total; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d", n, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch: %v", err) })
		for _, r := range fs.Records() {
			n++
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d (gap)", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition] = r.Offset + 1
			v := string(r.Value)
			if prev, dup := seen[v]; dup {
				t.Fatalf("%s duplicated at %d/%d and %d/%d", v, prev.partition, prev.offset, r.Partition, r.Offset)
			}
			seen[v] = ack{r.Partition, r.Offset}
		}
	}
	for v, a := range acked {
		got, ok := seen[v]
		if !ok {
			t.Fatalf("acknowledged record %s (%d/%d) lost", v, a.partition, a.offset)
		}
		if got != a {
			t.Fatalf("acknowledged record %s at %d/%d, read back at %d/%d", v, a.partition, a.offset, got.partition, got.offset)
		}
	}
	b.stop(t)
}
