package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

func produceN(t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func startOffset(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	offs, err := adm.ListStartOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("start offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// TestLifecycleDeleteRecords: DeleteRecords moves the log start offset, ListOffsets earliest
// and consumers from the start see it, and it survives a restart.
func TestLifecycleDeleteRecords(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "trim", 1, nil)
	cl := client(t, b.Addr)
	produceN(t, cl, "trim", 10)
	adm := kadm.NewClient(cl)

	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 4})
	res, err := adm.DeleteRecords(ctxT(t), os)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := res.Lookup("trim", 0)
	if r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("DeleteRecords: low watermark %d, %v", r.LowWatermark, r.Err)
	}
	os = kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 11})
	res, _ = adm.DeleteRecords(ctxT(t), os)
	if r, _ := res.Lookup("trim", 0); r.Err == nil {
		t.Fatal("DeleteRecords past the high watermark succeeded")
	}
	if got := startOffset(t, adm, "trim"); got != 4 {
		t.Fatalf("earliest %d, want 4", got)
	}
	got := consumeN(t, b.Addr, 6, "trim")
	if got[0].Offset != 4 {
		t.Fatalf("first consumed offset %d, want 4", got[0].Offset)
	}

	b.Restart()
	adm = kadm.NewClient(client(t, b.Addr))
	if got := startOffset(t, adm, "trim"); got != 4 {
		t.Fatalf("after restart earliest %d, want 4", got)
	}
}

// TestLifecycleRetentionByTime: with segment.ms and retention.ms tiny, the background cleaner
// rolls the active segment and removes everything produced; the log stays writable at its end.
func TestLifecycleRetentionByTime(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{"log.retention.check.interval.ms": "50"})
	one := "1"
	zero := "0"
	createTopic(t, b.Addr, "expiring", 1, map[string]*string{"retention.ms": &one, "segment.ms": &one, "file.delete.delay.ms": &zero})
	cl := client(t, b.Addr)
	produceN(t, cl, "expiring", 10)
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(20 * time.Second)
	for startOffset(t, adm, "expiring") != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("retention never removed the records: start %d", startOffset(t, adm, "expiring"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	produceN(t, cl, "expiring", 1)
	ends, err := adm.ListEndOffsets(ctxT(t), "expiring")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("expiring", 0); o.Offset != 11 {
		t.Fatalf("end offset %d, want 11", o.Offset)
	}
}

// TestLifecycleConfigsRoundTrip alters topic configs through kadm (incremental and legacy),
// reads them back with DescribeConfigs, and checks that a changed retention.ms takes effect
// without a restart.
func TestLifecycleConfigsRoundTrip(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{"log.retention.check.interval.ms": "50"})
	createTopic(t, b.Addr, "cfg", 1, nil)
	cl := client(t, b.Addr)
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)

	describe := func() map[string]kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		out := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			out[c.Key] = c
		}
		return out
	}
	val := func(c kadm.Config) string {
		if c.Value == nil {
			return "<nil>"
		}
		return *c.Value
	}

	steps := []struct {
		name    string
		alter   []kadm.AlterConfig
		wantErr bool
		want    map[string]string // key → value; sources are checked for overrides below
	}{
		{"set", []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")},
			{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}},
			false, map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact"}},
		{"append", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")}},
			false, map[string]string{"cleanup.policy": "compact,delete"}},
		{"subtract", []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}},
			false, map[string]string{"cleanup.policy": "delete"}},
		{"append to a non-list key", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}},
			true, map[string]string{"retention.ms": "3600000"}},
		{"invalid value", []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: kadm.StringPtr("abc")}},
			true, map[string]string{"segment.bytes": "1073741824"}},
		{"unknown key", []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.key", Value: kadm.StringPtr("1")}},
			true, nil},
		{"delete", []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}},
			false, map[string]string{"retention.ms": "604800000"}},
	}
	for _, st := range steps {
		resp, err := adm.AlterTopicConfigs(ctx, st.alter, "cfg")
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		r, _ := resp.On("cfg", nil)
		if (r.Err != nil) != st.wantErr {
			t.Fatalf("%s: error %v, want error %v", st.name, r.Err, st.wantErr)
		}
		got := describe()
		for k, v := range st.want {
			if val(got[k]) != v {
				t.Fatalf("%s: %s = %s, want %s", st.name, k, val(got[k]), v)
			}
		}
	}
	if c := describe()["cleanup.policy"]; c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy source %v, want DYNAMIC_TOPIC_CONFIG", c.Source)
	}

	// The legacy AlterConfigs replaces the whole set: cleanup.policy goes back to its default.
	resp, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1")},
		{Name: "segment.ms", Value: kadm.StringPtr("1")}, {Name: "file.delete.delay.ms", Value: kadm.StringPtr("0")}}, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.On("cfg", nil); r.Err != nil {
		t.Fatal(r.Err)
	}
	got := describe()
	if c := got["cleanup.policy"]; val(c) != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after AlterConfigs cleanup.policy = %s (%v)", val(c), c.Source)
	}
	// retention.ms=1 applies to the open partition: the cleaner empties it.
	produceN(t, cl, "cfg", 5)
	deadline := time.Now().Add(20 * time.Second)
	for startOffset(t, adm, "cfg") != 5 {
		if time.Now().After(deadline) {
			t.Fatal("the altered retention.ms never took effect")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLifecycleDynamicBrokerConfigs: a cluster-wide log.retention.ms is stored, described
// with its dynamic source, inherited by topics; a static key is refused.
func TestLifecycleDynamicBrokerConfigs(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "inherit", 1, nil)
	adm := kadm.NewClient(client(t, b.Addr))
	ctx := ctxT(t)
	resp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("7200000")}})
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter cluster default: %v %v", err, resp)
	}
	resp, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "node.id", Value: kadm.StringPtr("7")}})
	if err != nil || resp[0].Err == nil {
		t.Fatalf("altering a static key: %v %v", err, resp)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "inherit")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("inherit", nil)
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && (c.Value == nil || *c.Value != "7200000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig) {
			t.Fatalf("topic retention.ms = %v from %v", c.MaybeValue(), c.Source)
		}
	}
}
