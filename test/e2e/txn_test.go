package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// txnBrokerConfig keeps the internal topics small so tests start fast.
func txnBrokerConfig(extra map[string]string) map[string]string {
	c := map[string]string{
		"transaction.state.log.num.partitions": "3",
		"offsets.topic.num.partitions":         "3",
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// readUntil consumes topic from the start with the given isolation level until a record with
// value stop arrives, and returns every value read before it.
func readUntil(t *testing.T, addr, topic, stop string, isolation kgo.IsolationLevel) []string {
	t.Helper()
	ctx := ctxT(t)
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(isolation))
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v after %d records", topic, err, len(out))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if string(r.Value) == stop {
				return out
			}
			out = append(out, string(r.Value))
		}
	}
}

func txnClient(t *testing.T, addr, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return client(t, addr, append([]kgo.Opt{kgo.TransactionalID(id), kgo.RecordRetries(20)}, opts...)...)
}

// produceTxn produces values in one transaction and ends it with commit or abort.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	ctx := ctxT(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

func TestTxnCommitAbortIsolation(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "txn-iso", 1, nil)
	cl := txnClient(t, b.Addr, "iso-producer")
	produceTxn(t, cl, "txn-iso", true, "c1", "c2")
	produceTxn(t, cl, "txn-iso", false, "a1", "a2", "a3")
	produceTxn(t, cl, "txn-iso", true, "c3")
	produceTxn(t, cl, "txn-iso", true, "end")

	if got := strings.Join(readUntil(t, b.Addr, "txn-iso", "end", kgo.ReadCommitted()), ","); got != "c1,c2,c3" {
		t.Fatalf("read_committed: %s", got)
	}
	if got := strings.Join(readUntil(t, b.Addr, "txn-iso", "end", kgo.ReadUncommitted()), ","); got != "c1,c2,a1,a2,a3,c3" {
		t.Fatalf("read_uncommitted: %s", got)
	}

	// ListOffsets honours the isolation level: an open transaction holds the LSO back.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "txn-iso", Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(client(t, b.Addr))
	ends, err := adm.ListEndOffsets(ctxT(t), "txn-iso")
	if err != nil {
		t.Fatal(err)
	}
	lsos, err := adm.ListCommittedOffsets(ctxT(t), "txn-iso")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("txn-iso", 0)
	lso, _ := lsos.Lookup("txn-iso", 0)
	if lso.Offset >= end.Offset {
		t.Fatalf("open transaction: last stable offset %d, end %d", lso.Offset, end.Offset)
	}
	if err := cl.EndTransaction(ctxT(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LSO to reach the end", 10*time.Second, func() bool {
		lsos, err := adm.ListCommittedOffsets(ctxT(t), "txn-iso")
		if err != nil {
			return false
		}
		ends, _ := adm.ListEndOffsets(ctxT(t), "txn-iso")
		l, _ := lsos.Lookup("txn-iso", 0)
		e, _ := ends.Lookup("txn-iso", 0)
		return l.Offset == e.Offset
	})
}

func TestTxnZombieFenced(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "txn-zombie", 1, nil)
	old := txnClient(t, b.Addr, "zombie")
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctxT(t), &kgo.Record{Topic: "txn-zombie", Value: []byte("zombie-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A new instance with the same transactional id fences the old one and aborts its
	// transaction.
	fresh := txnClient(t, b.Addr, "zombie")
	produceTxn(t, fresh, "txn-zombie", true, "fresh")

	err := old.ProduceSync(ctxT(t), &kgo.Record{Topic: "txn-zombie", Value: []byte("zombie-2")}).FirstErr()
	if err == nil {
		err = old.EndTransaction(ctxT(t), kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("zombie was not fenced: %v", err)
	}
	produceTxn(t, fresh, "txn-zombie", true, "end")
	if got := strings.Join(readUntil(t, b.Addr, "txn-zombie", "end", kgo.ReadCommitted()), ","); got != "fresh" {
		t.Fatalf("read_committed: %s", got)
	}
}

func TestTxnHungTimesOut(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "txn-hung", 1, nil)
	hung := txnClient(t, b.Addr, "hung", kgo.TransactionTimeout(1500*time.Millisecond))
	if err := hung.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := hung.ProduceSync(ctxT(t), &kgo.Record{Topic: "txn-hung", Value: []byte("hung")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The producer never ends the transaction; the coordinator aborts it and the LSO moves on.
	adm := kadm.NewClient(client(t, b.Addr))
	waitFor(t, "the hung transaction to be aborted", 20*time.Second, func() bool {
		lsos, err := adm.ListCommittedOffsets(ctxT(t), "txn-hung")
		if err != nil {
			return false
		}
		l, _ := lsos.Lookup("txn-hung", 0)
		return l.Offset >= 2 // the data batch and its ABORT marker
	})
	other := txnClient(t, b.Addr, "other")
	produceTxn(t, other, "txn-hung", true, "after", "end")
	if got := strings.Join(readUntil(t, b.Addr, "txn-hung", "end", kgo.ReadCommitted()), ","); got != "after" {
		t.Fatalf("read_committed: %s", got)
	}
	// The hung producer was fenced by the abort's epoch bump.
	err := hung.EndTransaction(ctxT(t), kgo.TryCommit)
	if err == nil {
		t.Fatal("commit of a timed out transaction succeeded")
	}
}

// freePort returns a port that was free a moment ago, so a restarted broker keeps its address.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTxnExactlyOnceAcrossRestart runs a consume-transform-produce job (offsets committed in
// the transaction) while the broker restarts: the output read with read_committed holds every
// input record exactly once.
func TestTxnExactlyOnceAcrossRestart(t *testing.T) {
	port := freePort(t)
	b := testkit.StartBroker(t, txnBrokerConfig(map[string]string{"listeners": fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port)}))
	addr := b.Addr
	createTopic(t, addr, "eos-in", 3, nil)
	createTopic(t, addr, "eos-out", 3, nil)
	const n = 2000
	produceKeyed(t, addr, "eos-in", n, "in")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addr),
		kgo.TransactionalID("eos-job"),
		kgo.ConsumerGroup("eos-group"),
		kgo.ConsumeTopics("eos-in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordRetries(1000),
		kgo.RetryTimeout(60*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	var mu sync.Mutex
	processed := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := sess.PollRecords(ctx, 40)
			if ctx.Err() != nil {
				return
			}
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Errorf("begin: %v", err)
				return
			}
			for _, r := range recs {
				sess.Produce(ctx, &kgo.Record{Topic: "eos-out", Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
			}
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err == nil && committed {
				mu.Lock()
				processed += len(recs)
				mu.Unlock()
			}
		}
	}()
	waitFor(t, "some transactions to commit", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return processed > n/4
	})
	mu.Lock()
	before := processed
	mu.Unlock()
	b.Restart()
	t.Logf("restarted after %d of %d records were processed", before, n)
	if b.Addr != addr {
		t.Fatalf("restarted on %s, not %s", b.Addr, addr)
	}
	adm := kadm.NewClient(client(t, addr))
	waitFor(t, "the job to consume every input", 60*time.Second, func() bool {
		lag, err := adm.Lag(ctx, "eos-group")
		if err != nil {
			return false
		}
		l, ok := lag["eos-group"]
		return ok && l.Lag.Total() == 0 && len(l.Lag) > 0
	})
	cancel()
	<-done

	out := consumeCommitted(t, addr, "eos-out", n)
	seen := map[string]int{}
	for _, v := range out {
		seen[v]++
	}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("out-in-%d", i)
		if seen[v] != 1 {
			t.Errorf("%s appears %d times", v, seen[v])
		}
	}
	if len(out) != n {
		t.Fatalf("read_committed output holds %d records, want %d", len(out), n)
	}
}

// consumeCommitted reads topic with read_committed until want records arrived, then keeps
// polling briefly to catch any extra.
func consumeCommitted(t *testing.T, addr, topic string, want int) []string {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx := ctxT(t)
	var out []string
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d committed records: %v", len(out), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			out = append(out, string(r.Value))
		}
	}
	extra, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, r := range cl.PollFetches(extra).Records() {
		out = append(out, string(r.Value))
	}
	return out
}

func TestTxnDescribeAndList(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "txn-desc", 1, nil) // one partition: the records below are not partitioned by hand
	cl := txnClient(t, b.Addr, "desc-producer")
	produceTxn(t, cl, "txn-desc", true, "done")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "txn-desc", Partition: 0, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(client(t, b.Addr))
	ctx := ctxT(t)
	ds, err := adm.DescribeTransactions(ctx, "desc-producer", "no-such-id")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ds.On("desc-producer", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "Ongoing" || d.ProducerID < 0 || len(d.Topics["txn-desc"]) == 0 || d.StartTimestamp <= 0 {
		t.Fatalf("described %+v", d)
	}
	if u, _ := ds.On("no-such-id", nil); !errors.Is(u.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("unknown id: %v", u.Err)
	}
	ls, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := ls.TransactionalIDs(); len(ids) != 1 || ids[0] != "desc-producer" {
		t.Fatalf("listed %v", ids)
	}
	ps, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"txn-desc": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	ps.EachProducer(func(p kadm.DescribedProducer) {
		if p.ProducerID == d.ProducerID && p.CurrentTxnStartOffset >= 0 {
			found = true
		}
	})
	if !found {
		t.Fatalf("producer %d with an open transaction not described: %+v", d.ProducerID, ps)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}
