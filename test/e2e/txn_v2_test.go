package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/testkit"
)

// Transaction version 2 (KIP-890 part 2): ApiVersions finalizes transaction.version at 2, so
// franz-go skips AddPartitionsToTxn and AddOffsetsToTxn and every EndTxn (v5) bumps the epoch.

// describeTxn returns DescribeTransactions' view of id.
func describeTxn(t *testing.T, addr, id string) kadm.DescribedTransaction {
	t.Helper()
	adm := kadm.NewClient(client(t, addr))
	ds, err := adm.DescribeTransactions(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := ds[id]
	if !ok || d.Err != nil {
		t.Fatalf("describe %s: %+v", id, d)
	}
	return d
}

func TestTxnV2FranzGo(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "v2-out", 2, nil)
	cl := txnClient(t, b.Addr, "v2-producer")
	produceTxn(t, cl, "v2-out", true, "a", "b")
	produceTxn(t, cl, "v2-out", false, "x", "y")
	produceTxn(t, cl, "v2-out", true, "c")
	// Under version 2 each EndTxn bumped the epoch: three transactions, epoch 3 (version 1
	// would have stayed at 0).
	// EndTxn is answered once PrepareCommit is durable; the markers, then CompleteCommit,
	// follow (as in Kafka).
	var d kadm.DescribedTransaction
	waitFor(t, "the third transaction to complete", 10*time.Second, func() bool {
		d = describeTxn(t, b.Addr, "v2-producer")
		return d.State == "CompleteCommit"
	})
	if d.ProducerEpoch != 3 {
		t.Fatalf("after three transactions: epoch %d state %s, want 3 CompleteCommit", d.ProducerEpoch, d.State)
	}
	produceTxn(t, cl, "v2-out", true, "end")
	got := map[string]bool{}
	for _, v := range consumeCommitted(t, b.Addr, "v2-out", 4) {
		got[v] = true
	}
	for _, v := range []string{"a", "b", "c", "end"} {
		if !got[v] {
			t.Fatalf("read_committed read %v, lacks %q", got, v)
		}
	}
	if got["x"] || got["y"] {
		t.Fatalf("read_committed read aborted records: %v", got)
	}
}

// A client capped below EndTxn v5 keeps transaction version 1: the epoch never moves.
func TestTxnV1ClientUnchanged(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "v1-out", 1, nil)
	v := kversion.Stable()
	v.SetMaxKeyVersion(26, 4) // EndTxn
	cl := txnClient(t, b.Addr, "v1-producer", kgo.MaxVersions(v))
	produceTxn(t, cl, "v1-out", true, "a")
	produceTxn(t, cl, "v1-out", false, "x")
	produceTxn(t, cl, "v1-out", true, "end")
	if d := describeTxn(t, b.Addr, "v1-producer"); d.ProducerEpoch != 0 {
		t.Fatalf("a version 1 producer's epoch moved to %d", d.ProducerEpoch)
	}
	if got := readUntil(t, b.Addr, "v1-out", "end", kgo.ReadCommitted()); len(got) != 1 || got[0] != "a" {
		t.Fatalf("read_committed read %v, want [a]", got)
	}
}

// v2Txn drives a transactional id with raw requests at the versions of transaction version 2.
type v2Txn struct {
	t     *testing.T
	cl    *kgo.Client
	id    string
	pid   int64
	epoch int16
}

func (r *v2Txn) ctx() context.Context { return ctxT(r.t) }

func (r *v2Txn) init() {
	r.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &r.id
	req.TransactionTimeoutMillis = 60_000
	for {
		resp, err := req.RequestWith(r.ctx(), r.cl)
		if err != nil {
			r.t.Fatal(err)
		}
		if resp.ErrorCode == kerr.ConcurrentTransactions.Code || resp.ErrorCode == kerr.CoordinatorLoadInProgress.Code {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if resp.ErrorCode != 0 {
			r.t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		r.pid, r.epoch = resp.ProducerID, resp.ProducerEpoch
		return
	}
}

// produce sends one transactional batch of value at (pid, epoch, seq) to topic/partition
// with Produce v12 and returns the partition's error code.
func (r *v2Txn) produce(topic string, partition int32, epoch int16, seq int32, value string) int16 {
	r.t.Helper()
	now := time.Now().UnixMilli()
	raw, err := record.Build(nil, record.Header{Attributes: 1 << 4, ProducerID: r.pid, ProducerEpoch: epoch,
		BaseSequence: seq, FirstTimestamp: now, MaxTimestamp: now}, []record.Record{{Value: []byte(value)}})
	if err != nil {
		r.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.TransactionID, req.Acks, req.TimeoutMillis = &r.id, -1, 10_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = partition, raw
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	for {
		resp, err := req.RequestWith(r.ctx(), r.cl)
		if err != nil {
			r.t.Fatal(err)
		}
		if resp.Version < 12 {
			r.t.Fatalf("produce went out as v%d", resp.Version)
		}
		code := resp.Topics[0].Partitions[0].ErrorCode
		if code == kerr.NotEnoughReplicas.Code { // the previous transaction's markers are still being written
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return code
	}
}

// end sends EndTxn v5 at epoch and returns its error and the producer id and epoch it gave;
// CONCURRENT_TRANSACTIONS (the markers of the previous end are being written) is retried.
func (r *v2Txn) end(epoch int16, commit bool) (int16, int64, int16) {
	r.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = r.id, r.pid, epoch, commit
	for {
		resp, err := req.RequestWith(r.ctx(), r.cl)
		if err != nil {
			r.t.Fatal(err)
		}
		if resp.Version < 5 {
			r.t.Fatalf("EndTxn went out as v%d", resp.Version)
		}
		if resp.ErrorCode == kerr.ConcurrentTransactions.Code {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch
	}
}

func TestTxnV2EpochBumpFencesLateWrites(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "raw-v2", 2, nil)
	r := &v2Txn{t: t, cl: client(t, b.Addr), id: "raw-v2-producer"}
	r.init()
	if r.epoch != 0 {
		t.Fatalf("first epoch %d", r.epoch)
	}
	step := func(what string, code, want int16) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(code), kerr.ErrorForCode(want))
		}
	}
	endOK := func(epoch int16, commit bool, wantEpoch int16) {
		t.Helper()
		code, pid, e := r.end(epoch, commit)
		if code != 0 || pid != r.pid || e != wantEpoch {
			t.Fatalf("EndTxn(epoch %d, commit %v): %v %d/%d, want %d/%d", epoch, commit, kerr.ErrorForCode(code), pid, e, r.pid, wantEpoch)
		}
	}

	// Transaction 1 (epoch 0): no AddPartitionsToTxn, the produce adds the partition.
	step("t1 produce", r.produce("raw-v2", 0, 0, 0, "t1"), 0)
	endOK(0, true, 1)
	endOK(0, true, 1) // a retry is answered again with the same epoch
	// A late batch of transaction 1: the marker carried epoch 1, the partition refuses it;
	// on a partition transaction 1 never touched, the coordinator refuses it.
	step("late batch, same partition", r.produce("raw-v2", 0, 0, 1, "zombie"), kerr.InvalidProducerEpoch.Code)
	step("late batch, new partition", r.produce("raw-v2", 1, 0, 0, "zombie"), kerr.InvalidProducerEpoch.Code)

	// Transaction 2 (epoch 1), aborted.
	step("t2 produce", r.produce("raw-v2", 0, 1, 0, "t2"), 0)
	step("t2 produce p1", r.produce("raw-v2", 1, 1, 0, "t2"), 0)
	endOK(1, false, 2)
	step("late batch of the aborted transaction", r.produce("raw-v2", 1, 1, 1, "zombie"), kerr.InvalidProducerEpoch.Code)
	// An abort with no transaction open only bumps the epoch.
	endOK(2, false, 3)
	if code, _, _ := r.end(3, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("commit with no transaction: %v", kerr.ErrorForCode(code))
	}
	if code, _, _ := r.end(7, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("commit at an unknown epoch: %v", kerr.ErrorForCode(code))
	}

	// Transaction 3 (epoch 3), committed, then the stop record.
	step("t3 produce", r.produce("raw-v2", 1, 3, 0, "t3"), 0)
	step("end produce", r.produce("raw-v2", 0, 3, 0, "end"), 0)
	endOK(3, true, 4)

	committed := map[string]bool{}
	for _, v := range consumeCommitted(t, b.Addr, "raw-v2", 3) {
		committed[v] = true
	}
	if len(committed) != 3 || !committed["t1"] || !committed["t3"] || !committed["end"] {
		t.Fatalf("read_committed read %v, want t1, t3, end", committed)
	}
	// A new instance fences this one: its next transaction is refused everywhere.
	old := *r
	r.init()
	if r.epoch != 5 {
		t.Fatalf("new instance at epoch %d, want 5", r.epoch)
	}
	if code := old.produce("raw-v2", 0, 4, 0, "zombie"); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced instance's produce: %v", kerr.ErrorForCode(code))
	}
	if code, _, _ := old.end(4, false); code != kerr.ProducerFenced.Code {
		t.Fatalf("fenced instance's EndTxn: %v", kerr.ErrorForCode(code))
	}
}

// TxnOffsetCommit v5 adds the group's offsets to the transaction by itself: a transaction of
// offsets only, with no AddOffsetsToTxn and no produce, commits them.
func TestTxnV2OffsetsOnly(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	createTopic(t, b.Addr, "v2-in", 1, nil)
	r := &v2Txn{t: t, cl: client(t, b.Addr), id: "v2-offsets"}
	r.init()
	// The group must exist for its coordinator to be found.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "v2-group"
	if _, err := fc.RequestWith(ctxT(t), r.cl); err != nil {
		t.Fatal(err)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = r.id, "v2-group", r.pid, r.epoch
	commit.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "v2-in"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 42
	rt.Partitions = append(rt.Partitions, rp)
	commit.Topics = append(commit.Topics, rt)
	for {
		resp, err := commit.RequestWith(ctxT(t), r.cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 5 {
			t.Fatalf("TxnOffsetCommit went out as v%d", resp.Version)
		}
		code := resp.Topics[0].Partitions[0].ErrorCode
		if code == kerr.CoordinatorLoadInProgress.Code || code == kerr.CoordinatorNotAvailable.Code {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if code != 0 {
			t.Fatalf("TxnOffsetCommit v%d: %v", resp.Version, kerr.ErrorForCode(code))
		}
		break
	}
	if code, _, e := r.end(r.epoch, true); code != 0 || e != r.epoch+1 {
		t.Fatalf("EndTxn: %v epoch %d", kerr.ErrorForCode(code), e)
	}
	adm := kadm.NewClient(client(t, b.Addr))
	deadline := time.Now().Add(10 * time.Second)
	for {
		os, err := adm.FetchOffsets(ctxT(t), "v2-group")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := os.Lookup("v2-in", 0); ok && o.At == 42 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets %+v, want v2-in/0 at 42", os)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
