package fault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemovePosteBinary()
	os.Exit(code)
}

// clientLog returns kgo logging options when POSTE_TEST_LOG is set.
func clientLog() []kgo.Opt {
	if os.Getenv("POSTE_TEST_LOG") != "" {
		return []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil))}
	}
	return nil
}

// workload runs idempotent acks=all producers, each writing its own numbered stream to
// every partition of one topic, and independent read_uncommitted consumers reading the
// topic from the start; everything goes into a History.
type workload struct {
	t          *testing.T
	c          *testkit.ProcCluster
	h          *testkit.History
	topic      string
	partitions int32

	stopProduce chan struct{}
	producers   []*kgo.Client
	prodDone    sync.WaitGroup

	consCancel context.CancelFunc
	consumers  []*kgo.Client
	consDone   sync.WaitGroup

	mu struct {
		sync.Mutex
		next      []map[int32]int64 // per consumer, per partition: the offset after the last read
		errs      map[string]int    // distinct produce and fetch errors, counted
		lastFetch map[string]time.Time
	}
}

func newWorkload(t *testing.T, c *testkit.ProcCluster, topic string, partitions int32, producers, consumers int) *workload {
	w := &workload{t: t, c: c, h: testkit.NewHistory(), topic: topic, partitions: partitions, stopProduce: make(chan struct{})}
	w.mu.errs = make(map[string]int)
	w.mu.lastFetch = make(map[string]time.Time)
	for range producers {
		w.producers = append(w.producers, newClient(t, append(clientLog(),
			kgo.SeedBrokers(c.Addrs()...),
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.MaxBufferedRecords(4000),
			kgo.ProducerLinger(5*time.Millisecond),
			// A paused broker answers nothing: give up on a request after 7 s, not 40.
			kgo.ProduceRequestTimeout(5*time.Second),
			kgo.RequestTimeoutOverhead(2*time.Second),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.MetadataMinAge(250*time.Millisecond),
		)...))
	}
	var ctx context.Context
	ctx, w.consCancel = context.WithCancel(context.Background())
	for range consumers {
		w.consumers = append(w.consumers, newClient(t, append(clientLog(),
			kgo.SeedBrokers(c.Addrs()...),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.MetadataMinAge(250*time.Millisecond),
		)...))
		w.mu.next = append(w.mu.next, make(map[int32]int64))
	}
	for i, cl := range w.consumers {
		w.consDone.Add(1)
		go w.consume(ctx, i, cl)
	}
	for i, cl := range w.producers {
		w.prodDone.Add(1)
		go w.produce(i, cl)
	}
	return w
}

// produce writes rounds of one record per partition, about 100 rounds a second, until
// stopProduce. A full buffer (while partitions have no leader) blocks it.
func (w *workload) produce(k int, cl *kgo.Client) {
	defer w.prodDone.Done()
	name := fmt.Sprintf("p%d", k)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for seq := int64(0); ; seq++ {
		select {
		case <-w.stopProduce:
			return
		case <-tick.C:
		}
		for p := range w.partitions {
			r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%s-%d-%09d", name, p, seq)}
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				w.h.Sent(testkit.Send{Producer: name, Topic: r.Topic, Partition: r.Partition, Value: r.Value,
					Seq: seq, Offset: r.Offset, Err: err})
				if err != nil {
					w.noteErr("produce: " + err.Error())
				}
			})
		}
	}
}

func (w *workload) consume(ctx context.Context, i int, cl *kgo.Client) {
	defer w.consDone.Done()
	name := fmt.Sprintf("c%d", i)
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.noteErr(fmt.Sprintf("fetch %s/%d: %v", topic, p, err))
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			w.h.Read(testkit.Record{Consumer: name, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
			w.mu.Lock()
			w.mu.next[i][r.Partition] = max(w.mu.next[i][r.Partition], r.Offset+1)
			w.mu.Unlock()
		})
	}
}

func (w *workload) noteErr(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.errs[s]++
}

// errorSummary lists the distinct client errors seen, most frequent first.
func (w *workload) errorSummary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(w.mu.errs), func(a, b string) int { return w.mu.errs[b] - w.mu.errs[a] })
	var b strings.Builder
	for _, k := range keys[:min(15, len(keys))] {
		fmt.Fprintf(&b, "\n  %6d× %s", w.mu.errs[k], k)
	}
	return b.String()
}

// stop ends production and waits for every outstanding record's outcome.
func (w *workload) stop(ctx context.Context) error {
	close(w.stopProduce)
	w.prodDone.Wait()
	var errs []error
	for i, cl := range w.producers {
		if err := cl.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("producer %d flush: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// drain waits until every consumer has read up to the high watermarks, then stops them.
func (w *workload) drain(ctx context.Context, hw map[int32]int64) error {
	defer func() {
		w.consCancel()
		w.consDone.Wait()
	}()
	for {
		behind := ""
		w.mu.Lock()
		for i, next := range w.mu.next {
			for p, end := range hw {
				if next[p] < end && behind == "" {
					behind = fmt.Sprintf("consumer %d at %d of %d on partition %d", i, next[p], end, p)
				}
			}
		}
		w.mu.Unlock()
		if behind == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumers did not drain: %s", behind)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// highWatermarks lists the end offsets (read_uncommitted: the high watermarks) of topics.
func highWatermarks(ctx context.Context, adm *kadm.Client, topics ...string) (map[testkit.TopicPartition]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, err
	}
	out := map[testkit.TopicPartition]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		out[testkit.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	return out, nil
}

// compareReplicas reads each replica's segment files of a partition (the nodes are
// stopped) and checks that all hold the same batches below the smallest log end offset,
// and that this offset covers hw.
func compareReplicas(c *testkit.ProcCluster, tp testkit.TopicPartition, replicas []int32, hw int64) (minEnd int64, batches int, err error) {
	logs := make(map[int32][]testkit.LogBatch, len(replicas))
	minEnd = -1
	for _, id := range replicas {
		bs, err := testkit.ReadLogBatches(c.Node(id).PartitionDir(tp.Topic, tp.Partition))
		if err != nil {
			return 0, 0, fmt.Errorf("node %d: %w", id, err)
		}
		logs[id] = bs
		if e := testkit.EndOffset(bs); minEnd < 0 || e < minEnd {
			minEnd = e
		}
	}
	if minEnd < hw {
		ends := map[int32]int64{}
		for id, bs := range logs {
			ends[id] = testkit.EndOffset(bs)
		}
		return minEnd, 0, fmt.Errorf("%s: smallest log end offset %d is below the high watermark %d (ends %v)", tp, minEnd, hw, ends)
	}
	ref := replicas[0]
	below := func(bs []testkit.LogBatch) []testkit.LogBatch {
		i := slices.IndexFunc(bs, func(b testkit.LogBatch) bool { return b.BaseOffset >= minEnd })
		if i < 0 {
			return bs
		}
		return bs[:i]
	}
	want := below(logs[ref])
	for _, id := range replicas[1:] {
		got := below(logs[id])
		for i := range max(len(got), len(want)) {
			switch {
			case i >= len(got):
				return minEnd, 0, fmt.Errorf("%s: node %d lacks the batch at %d that node %d has", tp, id, want[i].BaseOffset, ref)
			case i >= len(want):
				return minEnd, 0, fmt.Errorf("%s: node %d has a batch at %d that node %d lacks", tp, id, got[i].BaseOffset, ref)
			case !bytes.Equal(got[i].Bytes, want[i].Bytes):
				return minEnd, 0, fmt.Errorf("%s: batch %d differs: node %d has base %d (%d bytes), node %d base %d (%d bytes)",
					tp, i, id, got[i].BaseOffset, len(got[i].Bytes), ref, want[i].BaseOffset, len(want[i].Bytes))
			}
		}
	}
	return minEnd, len(want), nil
}

// retryAdmin runs op until it returns a nil or non-retriable error or the time is up;
// retriable means a Kafka retriable code or a transport error.
func retryAdmin(ctx context.Context, op func(context.Context) error) (attempts int, err error) {
	for {
		attempts++
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = op(actx)
		cancel()
		if err == nil || !retriable(err) || ctx.Err() != nil {
			return attempts, err
		}
		select {
		case <-ctx.Done():
			return attempts, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
