package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/poste-io/poste/internal/coord"
)

// Records of KIP-848 consumer groups in __consumer_offsets.
//
// franz-go's kmsg has no schemas for Kafka's consumer-group record types, so Poste stores
// them in its own encoding, under key versions Kafka does not use (1001–1005): the classic
// records (key versions 0–2) never collide with them, and a Kafka tool reading the topic
// skips them as unknown. Every key is the big-endian int16 key version followed by its
// strings; every value is a big-endian int16 value version (0) followed by its fields.
// Strings are an int16 length and bytes (-1: null); lists an int32 count and items; an
// assignment is a list of (16-byte topic id, list of int32 partitions). A null value is a
// tombstone. See docs/groups.md.
const (
	keyConsumerGroup      int16 = 1001 // group → epoch, time of the last epoch change, topics hash
	keyConsumerMember     int16 = 1002 // group, member → subscription and client
	keyConsumerTargetMeta int16 = 1003 // group → target assignment epoch
	keyConsumerTarget     int16 = 1004 // group, member → target assignment
	keyConsumerCurrent    int16 = 1005 // group, member → epochs, state, assigned, revoking
)

var errCorruptRecord = errors.New("corrupt consumer group record")

type enc struct{ b []byte }

func (e *enc) i8(v int8)   { e.b = append(e.b, byte(v)) }
func (e *enc) i16(v int16) { e.b = binary.BigEndian.AppendUint16(e.b, uint16(v)) }
func (e *enc) i32(v int32) { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *enc) i64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *enc) str(s string) {
	if len(s) > math.MaxInt16 {
		s = s[:math.MaxInt16]
	}
	e.i16(int16(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) nstr(s *string) {
	if s == nil {
		e.i16(-1)
		return
	}
	e.str(*s)
}
func (e *enc) strs(ss []string) {
	e.i32(int32(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}
func (e *enc) assign(a assignment) {
	ids := a.topics()
	e.i32(int32(len(ids)))
	for _, id := range ids {
		e.b = append(e.b, id[:]...)
		e.i32(int32(len(a[id])))
		for _, p := range a[id] {
			e.i32(p)
		}
	}
}

// dec reads what enc wrote; the first short read sets err and every later read is zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = errCorruptRecord
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) i8() int8 {
	if b := d.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}
func (d *dec) i16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}
func (d *dec) i32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}
func (d *dec) i64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}
func (d *dec) nstr() *string {
	n := d.i16()
	if n < 0 {
		return nil
	}
	s := string(d.take(int(n)))
	return &s
}
func (d *dec) str() string {
	if s := d.nstr(); s != nil {
		return *s
	}
	return ""
}
func (d *dec) count() int {
	n := int(d.i32())
	if n < 0 || n > len(d.b) {
		d.err = errCorruptRecord
		return 0
	}
	return n
}
func (d *dec) strs() []string {
	n := d.count()
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.str())
	}
	return out
}
func (d *dec) assign() assignment {
	n := d.count()
	a := assignment{}
	for i := 0; i < n && d.err == nil; i++ {
		var id TopicID
		copy(id[:], d.take(16))
		k := d.count()
		ps := make([]int32, 0, k)
		for j := 0; j < k && d.err == nil; j++ {
			ps = append(ps, d.i32())
		}
		if len(ps) > 0 {
			a[id] = ps
		}
	}
	return a
}

func consumerKey(version int16, group string, member *string) []byte {
	e := enc{}
	e.i16(version)
	e.str(group)
	if member != nil {
		e.str(*member)
	}
	return e.b
}

func valueEnc() *enc {
	e := &enc{}
	e.i16(0)
	return e
}

func cgRecord(id string, cg *consumerGroup) coord.Record {
	v := valueEnc()
	v.i32(cg.epoch)
	v.i64(cg.stateTime.UnixMilli())
	v.i64(int64(cg.topicsHash))
	return coord.Record{Key: consumerKey(keyConsumerGroup, id, nil), Value: v.b}
}

func cgTargetMetaRecord(id string, cg *consumerGroup) coord.Record {
	v := valueEnc()
	v.i32(cg.assignEpoch)
	return coord.Record{Key: consumerKey(keyConsumerTargetMeta, id, nil), Value: v.b}
}

func cgMemberRecord(id string, m *cmember) coord.Record {
	v := valueEnc()
	v.nstr(m.instanceID)
	v.nstr(m.rack)
	v.str(m.clientID)
	v.str(m.host)
	v.strs(m.topicNames)
	v.nstr(m.regex)
	v.str(m.assignor)
	v.i32(int32(m.rebalanceTimeout / time.Millisecond))
	v.i32(int32(m.sessionTimeout / time.Millisecond))
	return coord.Record{Key: consumerKey(keyConsumerMember, id, &m.id), Value: v.b}
}

func cgTargetRecord(id, member string, a assignment) coord.Record {
	v := valueEnc()
	v.assign(a)
	return coord.Record{Key: consumerKey(keyConsumerTarget, id, &member), Value: v.b}
}

func cgCurrentRecord(id string, m *cmember) coord.Record {
	v := valueEnc()
	v.i32(m.epoch)
	v.i32(m.prevEpoch)
	v.i8(int8(m.state))
	left := int8(0)
	if m.left {
		left = 1
	}
	v.i8(left)
	v.assign(m.assigned)
	v.assign(m.revoking)
	return coord.Record{Key: consumerKey(keyConsumerCurrent, id, &m.id), Value: v.b}
}

// cgMemberTombstones deletes every record of a member.
func cgMemberTombstones(id, member string) []coord.Record {
	return []coord.Record{
		{Key: consumerKey(keyConsumerCurrent, id, &member)},
		{Key: consumerKey(keyConsumerTarget, id, &member)},
		{Key: consumerKey(keyConsumerMember, id, &member)},
	}
}

// cgTombstones deletes a consumer group with no members.
func cgTombstones(id string) []coord.Record {
	return []coord.Record{
		{Key: consumerKey(keyConsumerTargetMeta, id, nil)},
		{Key: consumerKey(keyConsumerGroup, id, nil)},
	}
}

// isConsumerKey reports whether a record key version is one of the consumer group records.
func isConsumerKey(version int16) bool {
	return version >= keyConsumerGroup && version <= keyConsumerCurrent
}

// replayConsumer folds one consumer-group record into the shard during load.
func (s *Shard) replayConsumer(version int16, key, value []byte) error {
	d := dec{b: key[2:]}
	gid := d.str()
	var mid string
	if version != keyConsumerGroup && version != keyConsumerTargetMeta {
		mid = d.str()
	}
	if d.err != nil {
		return fmt.Errorf("%w: key version %d", d.err, version)
	}
	g := s.groups[gid]
	if value == nil {
		if g == nil || g.cg == nil {
			return nil
		}
		cg := g.cg
		switch version {
		case keyConsumerGroup:
			g.cg = nil
			if len(g.offsets) == 0 && !g.stored {
				delete(s.groups, gid)
			}
		case keyConsumerTargetMeta:
			cg.assignEpoch = 0
		case keyConsumerTarget:
			delete(cg.target, mid)
		case keyConsumerCurrent:
			if m := cg.members[mid]; m != nil {
				m.epoch, m.prevEpoch, m.state, m.left, m.assigned, m.revoking = 0, -1, memberStable, false, assignment{}, assignment{}
			}
		case keyConsumerMember:
			delete(cg.members, mid)
		}
		return nil
	}
	v := dec{b: value}
	if vv := v.i16(); vv != 0 {
		return fmt.Errorf("%w: key version %d value version %d", errCorruptRecord, version, vv)
	}
	if g == nil {
		g = newGroup(gid, time.Time{})
		s.groups[gid] = g
	}
	if g.cg == nil {
		g.cg = newConsumerGroup(time.Time{})
		g.protocolType = ""
	}
	cg := g.cg
	member := func() *cmember {
		m := cg.members[mid]
		if m == nil {
			m = newConsumerMember(mid)
			cg.members[mid] = m
		}
		return m
	}
	switch version {
	case keyConsumerGroup:
		cg.epoch = v.i32()
		cg.stateTime = time.UnixMilli(v.i64())
		cg.topicsHash = uint64(v.i64())
	case keyConsumerTargetMeta:
		cg.assignEpoch = v.i32()
	case keyConsumerTarget:
		cg.target[mid] = v.assign()
	case keyConsumerCurrent:
		m := member()
		m.epoch, m.prevEpoch = v.i32(), v.i32()
		m.state = memberState(v.i8())
		m.left = v.i8() == 1
		m.assigned, m.revoking = v.assign(), v.assign()
	case keyConsumerMember:
		m := member()
		m.instanceID, m.rack = v.nstr(), v.nstr()
		m.clientID, m.host = v.str(), v.str()
		m.topicNames = v.strs()
		m.setRegex(v.nstr())
		m.assignor = v.str()
		m.rebalanceTimeout = time.Duration(v.i32()) * time.Millisecond
		m.sessionTimeout = time.Duration(v.i32()) * time.Millisecond
	}
	if v.err != nil {
		return fmt.Errorf("%w: key version %d", v.err, version)
	}
	return nil
}
