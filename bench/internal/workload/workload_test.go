package workload

import (
	"context"
	"errors"
	"flag"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", ms(7), 99, 7 * time.Millisecond},
		{"median odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median even takes lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100 is max", hundred, 100, 100 * time.Millisecond},
		{"tiny p is min", hundred, 0.001, 1 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zstd", func(c *Config) { c.Compression = "zstd" }, true},
		{"no brokers", func(c *Config) { c.Brokers = nil }, false},
		{"no topic", func(c *Config) { c.Topic = "" }, false},
		{"zero partitions", func(c *Config) { c.Partitions = 0 }, false},
		{"zero records", func(c *Config) { c.Records = 0 }, false},
		{"record larger than batch", func(c *Config) { c.RecordBytes = 2 << 20 }, false},
		{"buffer smaller than batch", func(c *Config) { c.MaxBufferedBytes = 1 << 10 }, false},
		{"unknown codec", func(c *Config) { c.Compression = "brotli" }, false},
		{"no stall timeout", func(c *Config) { c.StallTimeout = 0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestValuesAreWindows(t *testing.T) {
	v := newValues(1024)
	a, b := v.at(0), v.at(1)
	if len(a) != 1024 || len(b) != 1024 {
		t.Fatalf("lengths %d %d, want 1024", len(a), len(b))
	}
	if string(a) == string(b) {
		t.Fatal("neighbouring values are equal")
	}
	if cap(a) != len(a) {
		t.Fatal("value capacity exceeds its length; an append would overwrite the shared buffer")
	}
	if string(v.at(5)) != string(v.at(5)) {
		t.Fatal("values are not deterministic")
	}
}

// newPeer starts an in-process kfake with the benchmark's peer options.
func newPeer(t *testing.T, partitions int32, topic string) []string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, topic),
		kfake.DataDir(t.TempDir()),
		kfake.SyncWrites(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func smallConfig(brokers []string) Config {
	c := DefaultConfig()
	c.Brokers = brokers
	c.Records = 3000
	c.RecordBytes = 512
	c.Partitions = 4
	c.MaxBufferedBytes = 1 << 20
	c.BatchMaxBytes = 64 << 10
	c.StallTimeout = 10 * time.Second
	return c
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	for _, comp := range []string{"none", "lz4"} {
		t.Run(comp, func(t *testing.T) {
			c := smallConfig(newPeer(t, 4, "bench"))
			c.Compression = comp
			ctx := context.Background()
			if err := EnsureTopic(ctx, c); err != nil {
				t.Fatal(err)
			}
			pr, err := Produce(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Records != int64(c.Records) || pr.Bytes != int64(c.Records*c.RecordBytes) {
				t.Fatalf("produced %d records / %d bytes, want %d / %d", pr.Records, pr.Bytes, c.Records, c.Records*c.RecordBytes)
			}
			var sum int64
			for _, e := range pr.EndOffsets {
				sum += e
			}
			if sum != int64(c.Records) {
				t.Fatalf("end offsets sum to %d, want %d", sum, c.Records)
			}
			if pr.P50 <= 0 || pr.P50 > pr.P99 || pr.P99 > pr.Max || pr.Elapsed <= 0 {
				t.Fatalf("implausible latencies/elapsed: %+v", pr)
			}
			cr, err := Consume(ctx, c, pr.EndOffsets)
			if err != nil {
				t.Fatal(err)
			}
			if cr.Records != pr.Records || cr.Bytes != pr.Bytes {
				t.Fatalf("consumed %d/%d, produced %d/%d", cr.Records, cr.Bytes, pr.Records, pr.Bytes)
			}
		})
	}
}

func TestEnsureTopicCreates(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := smallConfig(c.ListenAddrs())
	cfg.Topic = "fresh"
	cfg.Partitions = 3
	if err := EnsureTopic(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// A second call finds it existing and is fine.
	if err := EnsureTopic(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// A different partition count is not.
	cfg.Partitions = 5
	cfg.StallTimeout = 300 * time.Millisecond
	if err := EnsureTopic(context.Background(), cfg); !errors.Is(err, ErrTopic) {
		t.Fatalf("EnsureTopic with wrong count = %v, want ErrTopic", err)
	}
}

func TestConsumeDetectsMismatch(t *testing.T) {
	c := smallConfig(newPeer(t, 4, "bench"))
	c.Records = 2000
	ctx := context.Background()
	pr, err := Produce(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var some int32 = -1
	for p, e := range pr.EndOffsets {
		if e > 5 {
			some = p
			break
		}
	}
	if some < 0 {
		t.Fatalf("no partition has more than 5 records: %v", pr.EndOffsets)
	}
	clone := func() map[int32]int64 {
		m := make(map[int32]int64, len(pr.EndOffsets))
		for p, e := range pr.EndOffsets {
			m[p] = e
		}
		return m
	}

	short := clone()
	short[some] = 2 // the broker holds more than this: records past the end
	if _, err := Consume(ctx, c, short); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Consume with short ends = %v, want ErrMismatch", err)
	}

	long := clone()
	long[some] += 10 // never arrives
	c.StallTimeout = 500 * time.Millisecond
	if _, err := Consume(ctx, c, long); !errors.Is(err, ErrStalled) {
		t.Fatalf("Consume with long ends = %v, want ErrStalled", err)
	}
}

func TestProduceStallsWithoutBroker(t *testing.T) {
	c := smallConfig([]string{"127.0.0.1:1"}) // nothing listens on port 1
	c.Records = 10
	c.StallTimeout = 300 * time.Millisecond
	_, err := Produce(context.Background(), c)
	if !errors.Is(err, ErrStalled) && !errors.Is(err, ErrProduce) {
		t.Fatalf("Produce to no broker = %v, want ErrStalled or ErrProduce", err)
	}
}

func TestRegisterFlags(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{"--brokers", "a:1,b:2", "--partitions", "3", "--records", "10",
		"--record-bytes", "100", "--linger", "1ms", "--batch-bytes", "65536", "--compression", "zstd"})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Brokers = []string{"a:1", "b:2"}
	want.Partitions, want.Records, want.RecordBytes = 3, 10, 100
	want.Linger, want.BatchMaxBytes, want.Compression = time.Millisecond, 65536, "zstd"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if err := fs.Parse([]string{"--partitions", "many"}); err == nil {
		t.Fatal("non-numeric --partitions accepted")
	}
}
