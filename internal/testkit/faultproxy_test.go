package testkit

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// responseFrame encodes resp as the broker would: correlation id, the flexible header's
// empty tag section when the version is flexible, then the body.
func responseFrame(corr int32, resp kmsg.Response) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		b = append(b, 0)
	}
	return resp.AppendTo(b)
}

func produceResponse(version int16, codes ...int16) *kmsg.ProduceResponse {
	r := kmsg.NewPtrProduceResponse()
	r.SetVersion(version)
	t := kmsg.NewProduceResponseTopic()
	t.Topic = "t"
	for i, c := range codes {
		pt := kmsg.NewProduceResponseTopicPartition()
		pt.Partition = int32(i)
		pt.ErrorCode = c
		t.Partitions = append(t.Partitions, pt)
	}
	r.Topics = append(r.Topics, t)
	return r
}

func TestFaultProxyDropFraction(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		frac     float64
		min, max int
	}{
		{0, 0, 0},
		{1, n, n},
		{0.3, n * 25 / 100, n * 35 / 100},
	} {
		run := func(seed uint64) []bool {
			p, err := NewFaultProxy("127.0.0.1:1", FaultConfig{DropProduceResponses: tc.frac, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var drops []bool
			for _, v := range []int16{3, 8, 9} { // v9 is flexible
				frame := responseFrame(7, produceResponse(v, 0, kerr.OutOfOrderSequenceNumber.Code))
				for range n / 3 {
					out, drop, err := p.onResponse(apiReq{kmsg.Produce.Int16(), v}, frame)
					if err != nil {
						t.Fatalf("v%d: %v", v, err)
					}
					if !drop && string(out) != string(frame) {
						t.Fatalf("v%d: forwarded frame changed", v)
					}
					drops = append(drops, drop)
				}
			}
			seen, dropped := p.Stats()
			if seen != len(drops) {
				t.Errorf("frac %v: saw %d responses, want %d", tc.frac, seen, len(drops))
			}
			if got := p.ProduceErrors()[kerr.OutOfOrderSequenceNumber.Code]; got != len(drops) {
				t.Errorf("frac %v: counted %d OUT_OF_ORDER_SEQUENCE_NUMBER, want %d", tc.frac, got, len(drops))
			}
			want := 0
			for _, d := range drops {
				if d {
					want++
				}
			}
			if dropped != want {
				t.Errorf("frac %v: Stats dropped %d, decisions %d", tc.frac, dropped, want)
			}
			return drops
		}
		a, b := run(42), run(42)
		dropped := 0
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("frac %v: same seed, different decision at %d", tc.frac, i)
			}
			if a[i] {
				dropped++
			}
		}
		lo, hi := tc.min*(n/3*3)/n, tc.max*(n/3*3)/n
		if dropped < lo || dropped > hi {
			t.Errorf("frac %v: dropped %d of %d, want [%d, %d]", tc.frac, dropped, len(a), lo, hi)
		}
	}
}

func TestFaultProxyRewritesAddresses(t *testing.T) {
	p, err := NewFaultProxy("127.0.0.1:1", FaultConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, v := range []int16{0, 7, 9, 12} {
		m := kmsg.NewPtrMetadataResponse()
		m.SetVersion(v)
		for id := int32(1); id <= 2; id++ {
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port = id, "10.0.0.1", 9092+id
			m.Brokers = append(m.Brokers, b)
		}
		out, drop, err := p.onResponse(apiReq{kmsg.Metadata.Int16(), v}, responseFrame(3, m))
		if err != nil || drop {
			t.Fatalf("metadata v%d: drop %v err %v", v, drop, err)
		}
		_, body, err := splitResponse(apiReq{kmsg.Metadata.Int16(), v}, out)
		if err != nil {
			t.Fatal(err)
		}
		got := kmsg.NewPtrMetadataResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(body); err != nil {
			t.Fatalf("metadata v%d: re-decode: %v", v, err)
		}
		for _, b := range got.Brokers {
			if b.Host != p.host || b.Port != p.port {
				t.Errorf("metadata v%d: broker %d at %s:%d, want the proxy %s", v, b.NodeID, b.Host, b.Port, p.Addr)
			}
		}
		if binary.BigEndian.Uint32(out) != 3 {
			t.Errorf("metadata v%d: correlation id lost", v)
		}
	}
	for _, v := range []int16{1, 3, 4} {
		f := kmsg.NewPtrFindCoordinatorResponse()
		f.SetVersion(v)
		f.Host, f.Port = "10.0.0.1", 9
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.Host, c.Port = "g", "10.0.0.1", 9
		f.Coordinators = append(f.Coordinators, c)
		out, _, err := p.onResponse(apiReq{kmsg.FindCoordinator.Int16(), v}, responseFrame(5, f))
		if err != nil {
			t.Fatalf("find coordinator v%d: %v", v, err)
		}
		hdr, body, err := splitResponse(apiReq{kmsg.FindCoordinator.Int16(), v}, out)
		if err != nil || len(hdr) < 4 {
			t.Fatalf("find coordinator v%d: split: %v", v, err)
		}
		got := kmsg.NewPtrFindCoordinatorResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(body); err != nil {
			t.Fatalf("find coordinator v%d: re-decode: %v", v, err)
		}
		if v < 4 && (got.Host != p.host || got.Port != p.port) {
			t.Errorf("find coordinator v%d: %s:%d", v, got.Host, got.Port)
		}
		for _, c := range got.Coordinators {
			if v >= 4 && (c.Host != p.host || c.Port != p.port) {
				t.Errorf("find coordinator v%d: coordinator %s:%d", v, c.Host, c.Port)
			}
		}
	}
}

// TestFaultProxyLive runs a real client through the proxy: with no faults everything
// arrives; dropping every produce response fails the produce and closes connections.
func TestFaultProxyLive(t *testing.T) {
	b := StartBroker(t, nil)
	for _, tc := range []struct {
		name   string
		frac   float64
		wantOK bool
	}{
		{"pass", 0, true},
		{"drop-all", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StartFaultProxy(t, b.Addr, FaultConfig{DropProduceResponses: tc.frac, Seed: 1})
			// Not idempotent: an idempotent producer retries an unanswered batch forever,
			// since giving up could break its sequence.
			cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.AllowAutoTopicCreation(),
				kgo.DefaultProduceTopic("live-"+tc.name), kgo.DisableIdempotentWrite(),
				kgo.RequiredAcks(kgo.LeaderAck()), kgo.RecordRetries(2),
				kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
			seen, dropped := p.Stats()
			switch {
			case tc.wantOK && (err != nil || seen == 0 || dropped != 0):
				t.Fatalf("produce: %v; seen %d dropped %d", err, seen, dropped)
			case !tc.wantOK && (err == nil || dropped == 0 || dropped != seen):
				t.Fatalf("produce through a proxy dropping every answer: err %v, seen %d dropped %d", err, seen, dropped)
			}
			// Every broker the client learnt of is the proxy.
			m, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			for _, br := range m.Brokers {
				if br.Host != p.host || br.Port != p.port {
					t.Errorf("client sees broker %d at %s:%d, not the proxy %s", br.NodeID, br.Host, br.Port, p.Addr)
				}
			}
		})
	}
}
