package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
	"github.com/poste-io/poste/pkg/streams"
)

// TestStreamsGlobalTableJoin joins orders with a global table of customers whose topic has a
// different partition count (a global table need not be co-partitioned). Every customer is
// written before the application starts, so an inner join may drop no order: the global
// table must be read in full before the first order is processed. A customer updated while
// the application runs must then reach the joins through the background reader.
func TestStreamsGlobalTableJoin(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	adm := kadm.NewClient(client(t, b.Addr))
	for topic, parts := range map[string]int32{"gt-customers": 2, "gt-orders": 3, "gt-out": 1} {
		if _, err := adm.CreateTopic(ctxT(t), parts, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	prod := client(t, b.Addr)
	produce := func(topic, k, v string) {
		t.Helper()
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const customers = 6
	for i := range customers {
		produce("gt-customers", fmt.Sprintf("c%d", i), fmt.Sprintf("name%d", i))
	}
	want := map[string]string{}
	for i := range 12 {
		produce("gt-orders", fmt.Sprintf("o%d", i), fmt.Sprintf("c%d", i%customers))
		want[fmt.Sprintf("o%d", i)] = fmt.Sprintf("c%d:name%d", i%customers, i%customers)
	}

	tp := streams.NewTopology()
	orders := streams.From(tp, "gt-orders", streams.String(), streams.String())
	names := streams.GlobalTableFrom(tp, "gt-customers", "customers", streams.String(), streams.String())
	streams.JoinStreamGlobalTable(orders, names, func(_, c string) string { return c },
		func(_, c, name string) string { return c + ":" + name }).To("gt-out")
	app, err := streams.New(tp, streams.Config{ApplicationID: "gt-e2e", Brokers: []string{b.Addr},
		CommitInterval: 100 * time.Millisecond, Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("streams app: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("streams app did not stop")
		}
	})

	out, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("gt-out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	got := map[string]string{}
	poll := func() {
		pctx, pcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer pcancel()
		out.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		poll()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("joined orders = %v\nwant %v", got, want)
	}

	// Update a customer; orders sent after it must eventually see the new name.
	produce("gt-customers", "c1", "renamed")
	for i := 0; time.Now().Before(deadline.Add(15 * time.Second)); i++ {
		key := fmt.Sprintf("late%d", i)
		produce("gt-orders", key, "c1")
		for j := 0; j < 3 && got[key] == ""; j++ {
			poll()
		}
		switch got[key] {
		case "c1:renamed":
			return
		case "c1:name1", "":
		default:
			t.Fatalf("order %s joined as %q", key, got[key])
		}
	}
	t.Fatal("the global table never saw the customer's update")
}
