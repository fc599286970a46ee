package compat

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnClient is a client that can produce transactionally.
type txnClient interface {
	client
	// transact commits one transaction of commit values and then aborts one of abort
	// values, both to partition 0 of topic, from one producer with transactional id id.
	transact(t *testing.T, topic, id string, commit, abort []string) error
}

func (c *scriptClient) transact(t *testing.T, topic, id string, commit, abort []string) error {
	var resp struct {
		Committed int `json:"committed"`
		Aborted   int `json:"aborted"`
	}
	req := map[string]any{"topic": topic, "transactional_id": id, "commit": commit, "abort": abort, "partition": 0}
	return c.run(t, "transact", req, &resp)
}

// transactions has each script client commit one transaction and abort another, then
// checks with franz-go that read_committed sees exactly the committed records and
// read_uncommitted sees both.
func (s *suite) transactions(t *testing.T) {
	for _, c := range []txnClient{s.py, s.js} {
		t.Run(c.name(), func(t *testing.T) {
			topic := "txn-" + c.name()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := s.b.admin(t).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatalf("create %s: %v", topic, err)
			}
			var commit, abort []string
			for i := range 5 {
				commit = append(commit, value(c.name(), "commit", i))
				abort = append(abort, value(c.name(), "abort", i))
			}
			if err := c.transact(t, topic, "compat-"+c.name(), commit, abort); err != nil {
				t.Fatalf("%s transact: %v", c.name(), err)
			}
			// A plain record after both transactions: read_committed reaches it only once
			// the last stable offset has passed both of them.
			const stop = "stop"
			if err := s.b.franz(t).ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(stop)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				iso  kgo.IsolationLevel
				name string
				want []string
			}{
				{kgo.ReadCommitted(), "read_committed", commit},
				{kgo.ReadUncommitted(), "read_uncommitted", append(slices.Clone(commit), abort...)},
			} {
				got := s.readUntil(t, topic, stop, tc.iso)
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: franz-go %s read %q, want %q", c.name(), tc.name, got, tc.want)
				}
			}
		})
	}
}

// readUntil reads topic from the start with franz-go at isolation iso until the value stop
// and returns the values before it.
func (s *suite) readUntil(t *testing.T, topic, stop string, iso kgo.IsolationLevel) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := s.b.franz(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso))
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v after %q", topic, err, out)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", tp, p, err) })
		for _, r := range fs.Records() {
			if string(r.Value) == stop {
				return out
			}
			out = append(out, string(r.Value))
		}
	}
}
