package txn

import (
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// Records of __transaction_state.
//
//   - Transaction metadata: Kafka's own schema (key v0 = transactional id, value v0 =
//     producer id and epoch, timeout, state, partitions, timestamps), so Kafka's tools read it.
//     A transactional id of transaction version 2 (or one whose producer id rotated) is
//     written as value v1, whose tagged fields carry the previous and next producer ids and
//     the client's transaction version, as Kafka 4 does; everything else stays v0.
//   - A null value (tombstone) removes a transactional id that expired
//     (transactional.id.expiration.ms).
//   - Pending transactional offsets: a Poste record with key version offsetsKeyVersion
//     (transactional id) and a value listing, per group, the member that committed and the
//     offsets. A null value clears them once the transaction completes. Kafka keeps these in
//     __consumer_offsets instead; keeping them beside the transaction makes their fate follow
//     the transaction's on replay.

// offsetsKeyVersion marks Poste's pending-offsets record; Kafka's keys use 0 and 1.
const offsetsKeyVersion int16 = 0x7000

func metaKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// metaRecord encodes a transaction's metadata.
func metaRecord(t *txnMeta) coord.Record {
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch = t.pid, t.epoch
	v.PreviousProducerID, v.NextProducerID = t.prevPid, t.nextPid
	if t.tv2 {
		v.ClientTransactionVersion = 2
	}
	if t.prevPid >= 0 || t.nextPid >= 0 || t.tv2 {
		v.Version = 1
	}
	v.TimeoutMillis = int32(t.timeout.Milliseconds())
	v.State = t.state
	v.LastUpdateTimestamp = t.lastUpdate.UnixMilli()
	v.StartTimestamp = -1
	if !t.start.IsZero() {
		v.StartTimestamp = t.start.UnixMilli()
	}
	byTopic := map[string][]int32{}
	for tp := range t.parts {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	topics := make([]string, 0, len(byTopic))
	for name := range byTopic {
		topics = append(topics, name)
	}
	sort.Strings(topics)
	for _, name := range topics {
		ps := byTopic[name]
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		vt := kmsg.NewTxnMetadataValueTopic()
		vt.Topic, vt.Partitions = name, ps
		v.Topics = append(v.Topics, vt)
	}
	return coord.Record{Key: metaKey(t.id), Value: v.AppendTo(nil)}
}

// tombstones are the records that remove a transactional id: its metadata and any pending
// offsets.
func tombstones(id string) []coord.Record {
	return []coord.Record{{Key: metaKey(id)}, {Key: offsetsKey(id)}}
}

func offsetsKey(id string) []byte {
	b := kbin.AppendInt16(nil, offsetsKeyVersion)
	return kbin.AppendString(b, id)
}

// offsetsRecord encodes a transaction's pending offsets (a tombstone when there are none).
func offsetsRecord(t *txnMeta) coord.Record {
	if len(t.offsets) == 0 {
		return coord.Record{Key: offsetsKey(t.id)}
	}
	b := kbin.AppendInt16(nil, 0)
	b = kbin.AppendInt64(b, t.pid)
	b = kbin.AppendInt16(b, t.epoch)
	groups := make([]string, 0, len(t.offsets))
	for g := range t.offsets {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	b = kbin.AppendArrayLen(b, len(groups))
	for _, g := range groups {
		pg := t.offsets[g]
		b = kbin.AppendString(b, pg.Group)
		b = kbin.AppendString(b, pg.MemberID)
		b = kbin.AppendInt32(b, pg.Generation)
		b = kbin.AppendNullableString(b, pg.InstanceID)
		b = kbin.AppendArrayLen(b, len(pg.Offsets))
		for tp, o := range pg.Offsets {
			b = kbin.AppendString(b, tp.Topic)
			b = kbin.AppendInt32(b, tp.Partition)
			b = kbin.AppendInt64(b, o.Offset)
			b = kbin.AppendInt32(b, o.LeaderEpoch)
			b = kbin.AppendString(b, o.Metadata)
		}
	}
	return coord.Record{Key: offsetsKey(t.id), Value: b}
}

// decodeOffsets decodes a pending-offsets value.
func decodeOffsets(v []byte) (pid int64, epoch int16, out map[string]*PendingGroup, err error) {
	r := kbin.Reader{Src: v}
	if ver := r.Int16(); ver != 0 {
		return 0, 0, nil, fmt.Errorf("pending offsets value version %d", ver)
	}
	pid, epoch = r.Int64(), r.Int16()
	out = map[string]*PendingGroup{}
	for n := r.ArrayLen(); n > 0 && r.Ok(); n-- {
		pg := &PendingGroup{Group: r.String(), MemberID: r.String(), Generation: r.Int32(),
			InstanceID: r.NullableString(), Offsets: map[TopicPartition]Offset{}}
		for m := r.ArrayLen(); m > 0 && r.Ok(); m-- {
			tp := TopicPartition{Topic: r.String(), Partition: r.Int32()}
			pg.Offsets[tp] = Offset{Offset: r.Int64(), LeaderEpoch: r.Int32(), Metadata: r.String()}
		}
		out[pg.Group] = pg
	}
	if err := r.Complete(); err != nil {
		return 0, 0, nil, fmt.Errorf("pending offsets value: %w", err)
	}
	return pid, epoch, out, nil
}

// partitionFor returns the __transaction_state partition of a transactional id: Kafka's
// abs(javaHashCode(id)) % partitions, so tools agree on the coordinator.
func partitionFor(id string, partitions int32) int32 {
	var h int32
	for _, r := range id {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -2147483648 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}
