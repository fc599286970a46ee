package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
	"github.com/poste-io/poste/pkg/streams"
)

// crashDialer lets a test cut an instance off the network at once, like a killed process:
// every open connection is closed and no new one can be made, so the instance can neither
// end its transaction nor leave the group.
type crashDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (d *crashDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errors.New("instance crashed")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *crashDialer) crash() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
}

// streamsEOSStart runs a word-count instance under exactly_once_v2. It returns the cancel
// function of its context and a channel carrying Run's result.
func streamsEOSStart(t *testing.T, addr string, guarantee string, commit time.Duration, extra ...kgo.Opt) (context.CancelFunc, <-chan error) {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SessionTimeout(3 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.TransactionTimeout(8 * time.Second),
	}, extra...)
	app, err := streams.New(streamsWordCount(), streams.Config{
		ApplicationID: "wc-eos", Brokers: []string{addr}, ProcessingGuarantee: guarantee,
		CommitInterval: commit, Logger: testkit.Logger(), ClientOpts: opts,
		CacheMaxBytes: -1, // every count is written, so that a lost or doubled one shows
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(cancel)
	return cancel, done
}

// TestStreamsExactlyOnceSurvivesCrash runs the word count under exactly_once_v2, scales it
// from one to three instances mid-stream, and kills one mid-stream with its transaction open. Read with read_committed,
// every word's counts must be exactly 1, 2, …, n: a lost record would leave a gap or a short
// total, a record counted twice a repeated or skipped value. The survivor can only continue
// the counts of the dead instance's tasks by restoring them from their changelogs.
func TestStreamsExactlyOnceSurvivesCrash(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{
		"group.min.session.timeout.ms":     "1000",
		"group.initial.rebalance.delay.ms": "0",
	})
	adm := kadm.NewClient(client(t, b.Addr))
	for _, topic := range []string{"streams-plaintext-input", "streams-wordcount-output"} {
		if _, err := adm.CreateTopic(ctxT(t), 4, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	prod := client(t, b.Addr)
	want := map[string]int64{}
	line := 0
	produce := func(n int) {
		for range n {
			l := fmt.Sprintf("w%d w%d common", line%7, line%3)
			line++
			streamsProduce(t, prod, l)
			for _, w := range strings.Fields(l) {
				want[w]++
			}
		}
	}

	// The first instance commits every 5 s, so that when it dies its open transaction holds
	// processed input, output and changelog writes, while its tasks' changelogs already hold
	// committed state that the survivor must restore.
	var dialer crashDialer
	_, doneA := streamsEOSStart(t, b.Addr, streams.ExactlyOnceV2, 5*time.Second, kgo.Dialer(dialer.dial))
	produce(40)
	streamsReadSequences(t, b.Addr, want, kgo.ReadCommitted())
	streamsEOSStart(t, b.Addr, streams.ExactlyOnceV2, 200*time.Millisecond)
	streamsAwaitMembers(t, adm, "wc-eos", 2)
	produce(60)
	streamsReadSequences(t, b.Addr, want, kgo.ReadCommitted())
	// Scale out to three instances mid-stream: tasks move, their state is restored from
	// the changelogs, and the counts go on exactly.
	streamsEOSStart(t, b.Addr, streams.ExactlyOnceV2, 200*time.Millisecond)
	streamsAwaitMembers(t, adm, "wc-eos", 3)
	produce(60)
	streamsReadSequences(t, b.Addr, want, kgo.ReadCommitted())

	// Crash as soon as the next lines are processed, before the first instance commits them.
	produce(60)
	streamsReadSequences(t, b.Addr, want, kgo.ReadUncommitted())
	dialer.crash()
	produce(60)

	seqs := streamsReadSequences(t, b.Addr, want, kgo.ReadCommitted())
	for w, seq := range seqs {
		for i, c := range seq {
			if c != int64(i+1) {
				t.Fatalf("counts of %q read with read_committed = %v, want 1..%d without gaps or repeats", w, seq, want[w])
			}
		}
	}
	select {
	case <-doneA:
	default: // the crashed instance cannot reach the broker; its Run is left to the cleanup
	}
}

// streamsAwaitMembers waits until the group is stable with n members owning partitions.
func streamsAwaitMembers(t *testing.T, adm *kadm.Client, group string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		groups, err := adm.DescribeGroups(ctxT(t), group)
		busy := 0
		g := groups[group]
		for _, m := range g.Members {
			if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
				busy++
			}
		}
		if err == nil && g.State == "Stable" && busy == n { // an error: the coordinator may still be loading
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: state %s, %d busy members, want %d", group, g.State, busy, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamsReadSequences reads the output with the isolation level until every word's latest
// count equals want, and returns each word's counts in order.
func streamsReadSequences(t *testing.T, addr string, want map[string]int64, iso kgo.IsolationLevel) map[string][]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("streams-wordcount-output"),
		kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seqs := map[string][]int64{}
	latest := map[string]int64{}
	deadline := time.Now().Add(50 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 8 {
				t.Fatalf("value of %q is %d bytes, want 8", r.Key, len(r.Value))
			}
			c := int64(binary.BigEndian.Uint64(r.Value))
			seqs[string(r.Key)] = append(seqs[string(r.Key)], c)
			latest[string(r.Key)] = c
		})
		if fmt.Sprint(latest) == fmt.Sprint(want) {
			return seqs
		}
	}
	t.Fatalf("counts read = %v\nwant %v", latest, want)
	return nil
}
