package group

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/poste-io/poste/internal/coord"
)

// fakeTopics is a TopicsView over a map; a topic's id is its name's bytes.
type fakeTopics map[string]int32

func topicID(name string) TopicID {
	var id TopicID
	copy(id[:], name)
	return id
}

func topicName(id TopicID) string { return string(bytes.TrimRight(id[:], "\x00")) }

func (f fakeTopics) Topic(name string) (TopicInfo, bool) {
	n, ok := f[name]
	return TopicInfo{Name: name, ID: topicID(name), Partitions: n}, ok
}

func (f fakeTopics) Each(fn func(TopicInfo)) {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fn(TopicInfo{Name: n, ID: topicID(n), Partitions: f[n]})
	}
}

func fmtAssign(tps []TopicPartitions) string {
	var parts []string
	for _, t := range tps {
		var ps []string
		for _, p := range t.Partitions {
			ps = append(ps, strconv.Itoa(int(p)))
		}
		parts = append(parts, topicName(t.ID)+":"+strings.Join(ps, ","))
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

// parseOwned reads "a:0,1;b:2" ("-": nothing owned).
func parseOwned(t *testing.T, s string) []TopicPartitions {
	out := []TopicPartitions{}
	if s == "-" {
		return out
	}
	for _, tp := range strings.Split(s, ";") {
		name, ps, _ := strings.Cut(tp, ":")
		var parts []int32
		for _, p := range strings.Split(ps, ",") {
			parts = append(parts, int32(atoi(t, p)))
		}
		out = append(out, TopicPartitions{ID: topicID(name), Partitions: parts})
	}
	return out
}

// describeAny renders a record of either protocol.
func describeAny(rec coord.Record) string {
	version := int16(rec.Key[0])<<8 | int16(rec.Key[1])
	if !isConsumerKey(version) {
		return describeRecord(rec)
	}
	d := dec{b: rec.Key[2:]}
	gid := d.str()
	name := map[int16]string{keyConsumerGroup: "cgroup", keyConsumerMember: "cmember", keyConsumerTargetMeta: "ctarget-epoch",
		keyConsumerTarget: "ctarget", keyConsumerCurrent: "ccurrent"}[version]
	who := gid
	if version != keyConsumerGroup && version != keyConsumerTargetMeta {
		who += "/" + d.str()
	}
	if rec.Value == nil {
		return name + " " + who + " tombstone"
	}
	v := dec{b: rec.Value[2:]}
	switch version {
	case keyConsumerGroup:
		return fmt.Sprintf("%s %s epoch=%d", name, who, v.i32())
	case keyConsumerTargetMeta:
		return fmt.Sprintf("%s %s epoch=%d", name, who, v.i32())
	case keyConsumerTarget:
		return fmt.Sprintf("%s %s %s", name, who, fmtAssign(v.assign().list()))
	case keyConsumerCurrent:
		e, pe, st, left := v.i32(), v.i32(), v.i8(), v.i8()
		return fmt.Sprintf("%s %s epoch=%d prev=%d state=%d left=%d assigned=%s revoking=%s", name, who, e, pe, st, left,
			fmtAssign(v.assign().list()), fmtAssign(v.assign().list()))
	}
	v.nstr()
	v.nstr()
	v.str()
	v.str()
	return fmt.Sprintf("%s %s topics=%v", name, who, v.strs())
}

func consumerErrName(err error) string {
	for _, e := range []error{ErrInvalidRequest, ErrFencedMemberEpoch, ErrStaleMemberEpoch, ErrUnreleasedInstanceID,
		ErrUnsupportedAssignor, ErrInvalidRegex} {
		if errors.Is(err, e) {
			return strings.ReplaceAll(e.Error(), " ", "_")
		}
	}
	return errName(err)
}

// consumerHarness drives one Shard with KIP-848 heartbeats and keeps the records it wrote,
// so that a fresh shard can replay them.
type consumerHarness struct {
	*harness
	topics  fakeTopics
	written []coord.Record
}

func (h *consumerHarness) apply(r coord.Result) {
	for _, rec := range r.Records {
		h.printf("write %s", describeAny(rec))
	}
	var err error
	if h.failWrite && len(r.Records) > 0 {
		err = fmt.Errorf("%w: injected", coord.ErrUnavailable)
	} else {
		h.written = append(h.written, r.Records...)
	}
	if r.Done != nil {
		r.Done(err)
	}
}

// TestConsumerGroupTranscripts runs testdata/consumer_*.txt against one shard with a manual clock.
//
//	topics <name>=<partitions> …            (the cluster's topics from now on)
//	hb member=<id> epoch=<n> [instance=<id>] [topics=a,b] [regex=<re>] [assignor=<name>]
//	   [owned=a:0,1;b:2|-] [rebalance=30s] [keepalive]
//	                                        (epoch 0 defaults to topics=t and owned=-; other
//	                                         epochs send only what is given)
//	commit member=<id> epoch=<n> offsets=<topic>/<partition>:<offset>,…
//	describe                                (the group as ConsumerGroupDescribe shows it)
//	list                                    (ListGroups)
//	join-classic                            (a classic JoinGroup for the same group id)
//	advance <duration> / fail-writes on|off / fetch / delete-group
//	replay                                  (a fresh shard replays every committed record)
func TestConsumerGroupTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasPrefix(path[strings.LastIndex(path, "/")+1:], "consumer_") {
			t.Skip("a classic transcript")
		}
		h := &consumerHarness{harness: newHarness(0, 0), topics: fakeTopics{"t": 6}}
		const g = "g"
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.out.Reset()
			switch d.Cmd {
			case "topics":
				h.topics = fakeTopics{}
				for _, a := range d.CmdArgs {
					h.topics[a.Key] = int32(atoi(t, a.Vals[0]))
				}
			case "hb":
				epoch := int32(atoi(t, arg(d, "epoch", "0")))
				req := ConsumerHeartbeatRequest{Group: g, MemberID: arg(d, "member", ""), MemberEpoch: epoch,
					InstanceID: optStr(arg(d, "instance", "")), RebalanceTimeoutMs: -1, ClientID: "c",
					SessionTimeout: 45 * time.Second, HeartbeatInterval: 5 * time.Second, MaxSize: atoi(t, arg(d, "max-size", "0")),
					Topics: h.topics}
				def := func(key, epoch0 string) string {
					if epoch == 0 {
						return arg(d, key, epoch0)
					}
					return arg(d, key, "")
				}
				if v := def("topics", "t"); v != "" {
					req.SubscribedTopics = strings.Split(v, ",")
					if v == "-" {
						req.SubscribedTopics = []string{}
					}
				}
				if v := arg(d, "regex", ""); v != "" {
					req.SubscribedRegex = &v
				}
				if v := arg(d, "assignor", ""); v != "" {
					req.ServerAssignor = &v
				}
				if v := def("owned", "-"); v != "" {
					req.Owned = parseOwned(t, v)
				}
				if v := def("rebalance", "30s"); v != "" {
					req.RebalanceTimeoutMs = int32(dur(t, v) / time.Millisecond)
				}
				h.apply(h.s.ConsumerHeartbeat(h.now, req, func(r ConsumerHeartbeatResult) {
					if r.Err != nil {
						h.printf("%s: %s", req.MemberID, consumerErrName(r.Err))
						return
					}
					a := "unchanged"
					if r.Assignment != nil {
						a = fmtAssign(r.Assignment)
					}
					h.printf("%s: ok epoch=%d assignment=%s", r.MemberID, r.MemberEpoch, a)
				}))
			case "commit":
				var offs []CommitOffset
				for _, kv := range strings.Split(arg(d, "offsets", ""), ",") {
					tp, o, _ := strings.Cut(kv, ":")
					topic, p, _ := strings.Cut(tp, "/")
					offs = append(offs, CommitOffset{TopicPartition{topic, int32(atoi(t, p))}, Offset{Offset: int64(atoi(t, o)), LeaderEpoch: -1}})
				}
				req := CommitRequest{Group: g, MemberID: arg(d, "member", ""), Generation: int32(atoi(t, arg(d, "epoch", "-1")))}
				h.apply(h.s.Commit(h.now, req, offs, func(err error, errs []error) {
					var es []string
					for _, e := range errs {
						es = append(es, consumerErrName(e))
					}
					h.printf("commit: %s [%s]", consumerErrName(err), strings.Join(es, " "))
				}))
			case "fetch":
				r := h.s.Fetch(g, nil)
				for _, tp := range sortedTPs(r.Offsets) {
					h.printf("%s/%d=%d", tp.Topic, tp.Partition, r.Offsets[tp].Offset)
				}
			case "describe":
				desc := h.s.ConsumerDescribe(g)
				if desc.Err != nil {
					h.printf("%s state=%s", consumerErrName(desc.Err), desc.State)
					break
				}
				h.printf("state=%s epoch=%d assignment-epoch=%d assignor=%s", desc.State, desc.Epoch, desc.AssignmentEpoch, desc.Assignor)
				for _, m := range desc.Members {
					inst := ""
					if m.InstanceID != nil {
						inst = " instance=" + *m.InstanceID
					}
					h.printf("  %s%s epoch=%d assigned=%s target=%s", m.MemberID, inst, m.Epoch, fmtAssign(m.Assignment), fmtAssign(m.Target))
				}
			case "list":
				ls := h.s.List()
				for _, l := range ls {
					h.printf("%s type=%s protocol-type=%s state=%s", l.Group, l.Type, l.ProtocolType, l.StateName())
				}
			case "join-classic":
				req := JoinRequest{Group: g, ClientID: "c", SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
					ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte("x")}}}
				h.apply(h.s.Join(h.now, req, func(r JoinResult) { h.printf("join-classic: %s", errName(r.Err)) }))
			case "delete-group":
				h.apply(h.s.Delete(g, func(err error) { h.printf("delete-group: %s", errName(err)) }))
			case "advance":
				h.now = h.now.Add(dur(t, d.CmdArgs[0].Key))
				for {
					key, tm, ok := h.timers.due(h.now)
					if !ok {
						break
					}
					h.printf("timer %s", key)
					h.apply(tm.fn(h.now))
				}
			case "fail-writes":
				h.failWrite = d.CmdArgs[0].Key == "on"
			case "timers":
				var ks []string
				for k, tm := range h.timers.timers {
					ks = append(ks, fmt.Sprintf("%s@+%s", k, tm.at.Sub(h.now)))
				}
				slices.Sort(ks)
				h.printf("%s", strings.Join(ks, " "))
			case "replay":
				fresh := newHarness(0, 0)
				fresh.now = h.now
				s := NewShard(fresh.s.cfg)
				for i, rec := range h.written {
					if err := s.Replay(int64(i), rec.Key, rec.Value); err != nil {
						t.Fatalf("replay: %v", err)
					}
				}
				fresh.s = s
				s.Loaded(fresh.timers, h.now)
				h.harness = fresh
				h.printf("replayed %d records", len(h.written))
			default:
				t.Fatalf("unknown command %q", d.Cmd)
			}
			return h.out.String()
		})
	})
}
