package group

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// fakeTimers is the shard's timer service for transcripts: nothing fires until the test
// advances its clock.
type fakeTimers struct {
	seq    uint64
	timers map[string]fakeTimer
}

type fakeTimer struct {
	at  time.Time
	seq uint64
	fn  func(time.Time) coord.Result
}

func (f *fakeTimers) Schedule(key string, at time.Time, fn func(time.Time) coord.Result) {
	f.seq++
	f.timers[key] = fakeTimer{at: at, seq: f.seq, fn: fn}
}

func (f *fakeTimers) Cancel(key string) { delete(f.timers, key) }

// due pops the earliest timer at or before now.
func (f *fakeTimers) due(now time.Time) (string, fakeTimer, bool) {
	best := ""
	for k, t := range f.timers {
		if t.at.After(now) {
			continue
		}
		if b, ok := f.timers[best]; best == "" || !ok || t.at.Before(b.at) || (t.at.Equal(b.at) && t.seq < b.seq) {
			best = k
		}
	}
	if best == "" {
		return "", fakeTimer{}, false
	}
	t := f.timers[best]
	delete(f.timers, best)
	return best, t, true
}

// harness drives one Shard as the runtime would, printing every answer and write.
type harness struct {
	s         *Shard
	timers    *fakeTimers
	now       time.Time
	out       strings.Builder
	failWrite bool
}

func newHarness(initialDelay time.Duration, maxSize int) *harness {
	n := 0
	cfg := Config{MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute, InitialRebalanceDelay: initialDelay,
		MaxSize: maxSize, OffsetsRetention: time.Hour, NewMemberID: func(client string) string { n++; return fmt.Sprintf("%s-%d", client, n) }}
	h := &harness{s: NewShard(cfg), timers: &fakeTimers{timers: map[string]fakeTimer{}}, now: time.Unix(1000, 0)}
	h.s.Loaded(h.timers, h.now)
	return h
}

func (h *harness) printf(format string, args ...any) { fmt.Fprintf(&h.out, format+"\n", args...) }

// apply writes a result's records (printing them) and completes it.
func (h *harness) apply(r coord.Result) {
	for _, rec := range r.Records {
		h.printf("write %s", describeRecord(rec))
	}
	if r.Done != nil {
		var err error
		if h.failWrite && len(r.Records) > 0 {
			err = fmt.Errorf("%w: injected", coord.ErrUnavailable)
		}
		r.Done(err)
	}
}

func describeRecord(rec coord.Record) string {
	version := int16(rec.Key[0])<<8 | int16(rec.Key[1])
	if version == 2 {
		var k kmsg.GroupMetadataKey
		k.ReadFrom(rec.Key)
		if rec.Value == nil {
			return "group " + k.Group + " tombstone"
		}
		var v kmsg.GroupMetadataValue
		v.ReadFrom(rec.Value)
		var ms []string
		for _, m := range v.Members {
			ms = append(ms, fmt.Sprintf("%s=%q", m.MemberID, m.Assignment))
		}
		p := ""
		if v.Protocol != nil {
			p = *v.Protocol
		}
		return fmt.Sprintf("group %s gen=%d protocol=%s members=[%s]", k.Group, v.Generation, p, strings.Join(ms, " "))
	}
	var k kmsg.OffsetCommitKey
	k.ReadFrom(rec.Key)
	if rec.Value == nil {
		return fmt.Sprintf("offset %s %s/%d tombstone", k.Group, k.Topic, k.Partition)
	}
	var v kmsg.OffsetCommitValue
	v.ReadFrom(rec.Value)
	return fmt.Sprintf("offset %s %s/%d=%d", k.Group, k.Topic, k.Partition, v.Offset)
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range []error{ErrUnknownMember, ErrIllegalGeneration, ErrRebalanceInProgress, ErrFencedInstance,
		ErrMemberIDRequired, ErrInconsistentProtocol, ErrInvalidSessionTimeout, ErrGroupMaxSize, ErrGroupNotFound,
		ErrNonEmptyGroup, ErrSubscribedToTopic, ErrMetadataTooLarge, ErrInvalidGroupID, coord.ErrUnavailable} {
		if errors.Is(err, e) {
			return strings.ReplaceAll(e.Error(), " ", "_")
		}
	}
	return err.Error()
}

func arg(d *datadriven.TestData, key, def string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			if len(a.Vals) == 0 {
				return "true"
			}
			return strings.Join(a.Vals, ",")
		}
	}
	return def
}

func dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// TestClassicGroupTranscripts runs testdata/*.txt against one shard with a manual clock.
//
//	join name=<label> [member=<id>] [instance=<id>] [client=<id>] [session=10s] [rebalance=30s]
//	     [protocols=range,roundrobin] [require-id] [skip]
//	sync name=<label> member=<id> gen=<n> [instance=<id>] [assign=<member>:<bytes>,…]
//	heartbeat member=<id> gen=<n> [instance=<id>]
//	leave members=<id>[@<instance>],…
//	new-shard [initial-delay=3s] [max-size=<n>]   (start over with this configuration)
//	commit member=<id> gen=<n> offsets=<topic>/<partition>:<offset>,…
//	fetch
//	advance <duration>          (fires the timers that come due, in order)
//	describe                    (state, generation, protocol, leader, members)
//	fail-writes on|off          (the next writes fail)
//	delete-group / delete-offsets offsets=<topic>/<partition>,…
func TestClassicGroupTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if strings.HasPrefix(filepath.Base(path), "consumer_") {
			t.Skip("a KIP-848 transcript: TestConsumerGroupTranscripts runs it")
		}
		h := newHarness(0, 0)
		const g = "g"
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.out.Reset()
			switch d.Cmd {
			case "join":
				name := arg(d, "name", "join")
				var protos []Protocol
				for _, p := range strings.Split(arg(d, "protocols", "range"), ",") {
					protos = append(protos, Protocol{Name: p, Metadata: []byte(p)})
				}
				req := JoinRequest{Group: g, MemberID: arg(d, "member", ""), InstanceID: optStr(arg(d, "instance", "")),
					ClientID: arg(d, "client", "c"), SessionTimeout: dur(t, arg(d, "session", "10s")),
					RebalanceTimeout: dur(t, arg(d, "rebalance", "30s")), ProtocolType: "consumer", Protocols: protos,
					RequireKnownMemberID: arg(d, "require-id", "") != "", SupportsSkipAssign: arg(d, "skip", "") != ""}
				h.apply(h.s.Join(h.now, req, func(r JoinResult) {
					if r.Err != nil {
						h.printf("%s: %s member=%s", name, errName(r.Err), r.MemberID)
						return
					}
					var ms []string
					for _, m := range r.Members {
						ms = append(ms, m.MemberID)
					}
					h.printf("%s: ok member=%s gen=%d protocol=%s leader=%s members=[%s] skip=%v", name, r.MemberID, r.Generation, r.Protocol, r.LeaderID, strings.Join(ms, " "), r.SkipAssignment)
				}))
			case "sync":
				name := arg(d, "name", "sync")
				req := SyncRequest{Group: g, MemberID: arg(d, "member", ""), Generation: int32(atoi(t, arg(d, "gen", "0"))),
					InstanceID: optStr(arg(d, "instance", "")), Assignments: map[string][]byte{}}
				if a := arg(d, "assign", ""); a != "" {
					for _, kv := range strings.Split(a, ",") {
						m, v, _ := strings.Cut(kv, ":")
						req.Assignments[m] = []byte(v)
					}
				}
				h.apply(h.s.Sync(h.now, req, func(r SyncResult) {
					h.printf("%s: %s assignment=%q", name, errName(r.Err), r.Assignment)
				}))
			case "heartbeat":
				err := h.s.Heartbeat(h.now, HeartbeatRequest{Group: g, MemberID: arg(d, "member", ""),
					Generation: int32(atoi(t, arg(d, "gen", "0"))), InstanceID: optStr(arg(d, "instance", ""))})
				h.printf("heartbeat: %s", errName(err))
			case "leave":
				var ms []LeaveMember
				for _, v := range strings.Split(arg(d, "members", ""), ",") {
					id, inst, _ := strings.Cut(v, "@")
					ms = append(ms, LeaveMember{MemberID: id, InstanceID: optStr(inst)})
				}
				res, lr := h.s.Leave(h.now, g, ms)
				h.apply(res)
				var es []string
				for _, e := range lr.Members {
					es = append(es, errName(e))
				}
				h.printf("leave: [%s]", strings.Join(es, " "))
			case "commit":
				var offs []CommitOffset
				for _, kv := range strings.Split(arg(d, "offsets", ""), ",") {
					tp, o, _ := strings.Cut(kv, ":")
					topic, p, _ := strings.Cut(tp, "/")
					offs = append(offs, CommitOffset{TopicPartition{topic, int32(atoi(t, p))}, Offset{Offset: int64(atoi(t, o)), LeaderEpoch: -1}})
				}
				req := CommitRequest{Group: g, MemberID: arg(d, "member", ""), Generation: int32(atoi(t, arg(d, "gen", "-1")))}
				h.apply(h.s.Commit(h.now, req, offs, func(err error, errs []error) {
					var es []string
					for _, e := range errs {
						es = append(es, errName(e))
					}
					h.printf("commit: %s [%s]", errName(err), strings.Join(es, " "))
				}))
			case "fetch":
				r := h.s.Fetch(g, nil)
				tps := sortedTPs(r.Offsets)
				for _, tp := range tps {
					h.printf("%s/%d=%d", tp.Topic, tp.Partition, r.Offsets[tp].Offset)
				}
				if len(tps) == 0 {
					h.printf("no offsets")
				}
			case "delete-offsets":
				var tps []TopicPartition
				for _, s := range strings.Split(arg(d, "offsets", ""), ",") {
					topic, p, _ := strings.Cut(s, "/")
					tps = append(tps, TopicPartition{topic, int32(atoi(t, p))})
				}
				h.apply(h.s.DeleteOffsets(g, tps, func(err error, errs []error) {
					var es []string
					for _, e := range errs {
						es = append(es, errName(e))
					}
					h.printf("delete-offsets: %s [%s]", errName(err), strings.Join(es, " "))
				}))
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
			case "new-shard":
				h = newHarness(dur(t, arg(d, "initial-delay", "0s")), atoi(t, arg(d, "max-size", "0")))
			case "fail-writes":
				h.failWrite = d.CmdArgs[0].Key == "on"
			case "describe":
				desc := h.s.Describe(g)
				gr := h.s.groups[g]
				gen, leader := int32(-1), ""
				if gr != nil {
					gen, leader = gr.generation, gr.leader
				}
				var ms []string
				for _, m := range desc.Members {
					ms = append(ms, m.MemberID)
				}
				h.printf("state=%s gen=%d protocol=%s leader=%s members=[%s]", desc.State, gen, desc.Protocol, leader, strings.Join(ms, " "))
			case "timers":
				var ks []string
				for k, tm := range h.timers.timers {
					ks = append(ks, fmt.Sprintf("%s@+%s", k, tm.at.Sub(h.now)))
				}
				sort.Strings(ks)
				h.printf("%s", strings.Join(ks, " "))
			default:
				t.Fatalf("unknown command %q", d.Cmd)
			}
			return h.out.String()
		})
	})
}
