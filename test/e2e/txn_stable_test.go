package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

// fetchStable asks OffsetFetch (v8+, the multi-group form) for group's offset of topic/0 and
// returns it with the partition's error.
func fetchStable(t *testing.T, ctx context.Context, cl *kgo.Client, group, topic string, requireStable bool) (int64, error) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.RequireStable = requireStable
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetFetch response shape: %+v", resp)
	}
	if err := kerr.ErrorForCode(resp.Groups[0].ErrorCode); err != nil {
		t.Fatalf("OffsetFetch group error: %v", err)
	}
	p := resp.Groups[0].Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// fetchStableV7 sends OffsetFetch v7 (the single-group form) by hand.
func fetchStableV7(t *testing.T, addr, group, topic string) (int64, error) {
	t.Helper()
	c := dial(t, addr)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = group, true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	c.send(req, 1)
	_, body, err := c.recv(true)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = 7
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetFetch v7 response shape: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// rawTxn drives a transaction that commits offsets with raw requests, so the test controls
// exactly when it ends.
type rawTxn struct {
	t     *testing.T
	cl    *kgo.Client
	id    string
	pid   int64
	epoch int16
	group string
	topic string
}

func newRawTxn(t *testing.T, ctx context.Context, cl *kgo.Client, id, group, topic string) *rawTxn {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, 60_000
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		if err == nil {
			return &rawTxn{t: t, cl: cl, id: id, pid: resp.ProducerID, epoch: resp.ProducerEpoch, group: group, topic: topic}
		}
		var ke *kerr.Error
		if !errors.As(err, &ke) || !ke.Retriable {
			t.Fatalf("InitProducerId: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// commitOffset adds the group to the transaction and commits offset for topic/0 in it, from
// outside any generation.
func (x *rawTxn) commitOffset(ctx context.Context, offset int64) {
	x.t.Helper()
	x.commitOffsetAs(ctx, offset, "", -1)
}

// commitOffsetAs is commitOffset by the group's member of that generation (KIP-447).
func (x *rawTxn) commitOffsetAs(ctx context.Context, offset int64, member string, generation int32) {
	x.t.Helper()
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = x.id, x.pid, x.epoch, x.group
	// CONCURRENT_TRANSACTIONS is retriable: the previous transaction's markers may still be
	// being written, as clients retry it too.
	for deadline := time.Now().Add(20 * time.Second); ; {
		aresp, err := add.RequestWith(ctx, x.cl)
		if err != nil {
			x.t.Fatal(err)
		}
		err = kerr.ErrorForCode(aresp.ErrorCode)
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) || time.Now().After(deadline) {
			x.t.Fatalf("AddOffsetsToTxn: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = x.id, x.group, x.pid, x.epoch
	req.Generation, req.MemberID = generation, member
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = x.topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, x.cl)
	if err != nil {
		x.t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		x.t.Fatalf("TxnOffsetCommit: %v", err)
	}
}

func (x *rawTxn) end(ctx context.Context, commit bool) {
	x.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = x.id, x.pid, x.epoch, commit
	resp, err := req.RequestWith(ctx, x.cl)
	if err != nil {
		x.t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		x.t.Fatalf("EndTxn(commit %v): %v", commit, err)
	}
	if resp.Version >= 5 { // transaction version 2: every transaction ends with an epoch bump
		x.pid, x.epoch = resp.ProducerID, resp.ProducerEpoch
	}
}

// TestTxnOffsetFetchRequireStable: while a transaction holds offsets for a partition, an
// OffsetFetch with require_stable gets UNSTABLE_OFFSET_COMMIT and one without gets the
// offset committed before; once the transaction commits both get the new offset, and an
// aborted transaction's offsets never show.
func TestTxnOffsetFetchRequireStable(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	const topic, group = "stable-in", "stable-g"
	createTopic(t, b.Addr, topic, 1, nil)
	ctx := ctxT(t)
	cl := client(t, b.Addr)
	adm := kadm.NewClient(cl)

	var before kadm.Offsets
	before.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, group, before); err != nil || resp.Error() != nil {
		t.Fatalf("plain commit: %v %v", err, resp.Error())
	}

	expect := func(stage string, requireStable bool, want int64, wantErr error) {
		t.Helper()
		got, err := fetchStable(t, ctx, cl, group, topic, requireStable)
		if !errors.Is(err, wantErr) || wantErr == nil && got != want {
			t.Fatalf("%s (require_stable %v): offset %d err %v, want %d err %v", stage, requireStable, got, err, want, wantErr)
		}
	}

	x := newRawTxn(t, ctx, cl, "stable-tx", group, topic)
	x.commitOffset(ctx, 9)
	expect("pending", true, 0, kerr.UnstableOffsetCommit)
	expect("pending", false, 5, nil)
	if _, err := fetchStableV7(t, b.Addr, group, topic); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("pending, v7: err %v, want UNSTABLE_OFFSET_COMMIT", err)
	}

	x.end(ctx, true)
	// The offsets reach the group after the markers; until then the answer stays unstable,
	// never the old offset.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := fetchStable(t, ctx, cl, group, topic, true)
		if err == nil {
			if got != 9 {
				t.Fatalf("settled after commit: offset %d, want 9", got)
			}
			break
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) {
			t.Fatalf("after commit: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("offsets still unstable 20s after EndTxn")
		}
		time.Sleep(20 * time.Millisecond)
	}
	expect("committed", false, 9, nil)
	if got, err := fetchStableV7(t, b.Addr, group, topic); err != nil || got != 9 {
		t.Fatalf("committed, v7: offset %d err %v, want 9", got, err)
	}

	// An aborted transaction: unstable while open, then the last committed offset at once.
	x.commitOffset(ctx, 20)
	expect("pending again", true, 0, kerr.UnstableOffsetCommit)
	x.end(ctx, false)
	expect("aborted", true, 9, nil)
	expect("aborted", false, 9, nil)
}

// TestTxnOffsetsOutliveTheirMember: offsets a member commits in a transaction become the
// group's when the transaction commits, even if the member left the group in between (an
// application that ends its last transaction and closes at once). Its TxnOffsetCommit was
// checked against the group when it arrived; the commit is not checked again, as Kafka's
// transaction marker is not.
func TestTxnOffsetsOutliveTheirMember(t *testing.T) {
	b := testkit.StartBroker(t, txnBrokerConfig(nil))
	const topic, group = "leave-in", "leave-g"
	createTopic(t, b.Addr, topic, 1, nil)
	ctx := ctxT(t)
	cl := client(t, b.Addr)
	commitThenLeave(t, ctx, cl, "leave-tx", group, topic, 7, kgo.SeedBrokers(b.Addr))
	waitCommitted(t, ctx, kadm.NewClient(cl), group, topic, 7)
}

// commitThenLeave joins group as a member, commits offset for topic/0 in transaction id as
// that member, has the member leave the group, and then commits the transaction.
func commitThenLeave(t *testing.T, ctx context.Context, cl *kgo.Client, id, group, topic string, offset int64, seeds kgo.Opt) {
	t.Helper()
	member, err := kgo.NewClient(seeds, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	var memberID string
	var gen int32
	waitFor(t, "the member to join", 20*time.Second, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollFetches(pctx)
		cancel()
		memberID, gen = member.GroupMetadata()
		return gen > 0
	})
	x := newRawTxn(t, ctx, cl, id, group, topic)
	x.commitOffsetAs(ctx, offset, memberID, gen)
	member.Close() // leaves the group: its member id is unknown from now on
	x.end(ctx, true)
}

// waitCommitted waits until group's committed offset for topic/0 is offset.
func waitCommitted(t *testing.T, ctx context.Context, adm *kadm.Client, group, topic string, offset int64) {
	t.Helper()
	waitFor(t, "the transaction's offset to be committed", 15*time.Second, func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topic, 0)
		return ok && o.Err == nil && o.At == offset
	})
}
