package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
	"github.com/poste-io/poste/pkg/streams"
)

var streamsNonWord = regexp.MustCompile(`\W+`)

func streamsWordCount() *streams.Topology {
	t := streams.NewTopology()
	lines := streams.From(t, "streams-plaintext-input", streams.String(), streams.String())
	words := streams.FlatMapValues(lines, func(_, line string) []string {
		var out []string
		for _, w := range streamsNonWord.Split(strings.ToLower(line), -1) {
			if w != "" {
				out = append(out, w)
			}
		}
		return out
	})
	streams.GroupBy(words, func(_, w string) string { return w }, streams.String(), nil).
		Count("counts").ToStream().To("streams-wordcount-output")
	return t
}

// streamsCounts reads the output topic from the start and returns the latest count per word,
// waiting until want matches (or the deadline passes).
func streamsAwaitCounts(t *testing.T, addr string, want map[string]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("streams-wordcount-output"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int64{}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 8 {
				t.Errorf("value of %q is %d bytes, want an 8-byte big-endian int64", r.Key, len(r.Value))
				return
			}
			got[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
		})
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
	}
	t.Fatalf("counts = %v\nwant %v", got, want)
}

func streamsProduce(t *testing.T, cl *kgo.Client, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "streams-plaintext-input", Value: []byte(l)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func streamsStart(t *testing.T, addr string) (stop func()) {
	t.Helper()
	app, err := streams.New(streamsWordCount(), streams.Config{
		ApplicationID: "wc-e2e", Brokers: []string{addr}, CommitInterval: 100 * time.Millisecond,
		Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("streams app: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("streams app did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestStreamsWordCountScalesOut(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	adm := kadm.NewClient(client(t, b.Addr))
	if _, err := adm.CreateTopic(ctxT(t), 3, 1, nil, "streams-plaintext-input"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctxT(t), 3, 1, nil, "streams-wordcount-output"); err != nil {
		t.Fatal(err)
	}
	prod := client(t, b.Addr)
	want := map[string]int64{}
	add := func(lines ...string) {
		streamsProduce(t, prod, lines...)
		for _, l := range lines {
			for _, w := range streamsNonWord.Split(strings.ToLower(l), -1) {
				if w != "" {
					want[w]++
				}
			}
		}
	}
	add("all streams lead to Kafka", "hello kafka streams", "join kafka summit")
	stop1 := streamsStart(t, b.Addr)
	streamsAwaitCounts(t, b.Addr, want)

	// A second instance joins: the group now has two members sharing the tasks.
	streamsStart(t, b.Addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		groups, err := adm.DescribeGroups(ctxT(t), "wc-e2e")
		if err != nil {
			t.Fatal(err)
		}
		g := groups["wc-e2e"]
		busy := 0
		for _, m := range g.Members {
			if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
				busy++
			}
		}
		if g.State == "Stable" && busy == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group did not spread over two instances: state %s, %d members", g.State, len(g.Members))
		}
		time.Sleep(200 * time.Millisecond)
	}
	add("streams streams streams", "a second instance shares the work")
	streamsAwaitCounts(t, b.Addr, want)

	// The first instance leaves: the survivor takes its tasks, restores their counts from the
	// changelog, and keeps counting from there.
	stop1()
	add("kafka streams again")
	streamsAwaitCounts(t, b.Addr, want)
}
