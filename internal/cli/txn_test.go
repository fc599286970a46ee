package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

func TestTxnCommands(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	poste(t, b, 0, "", "topic", "create", "orders", "-p", "2")

	poste(t, b, 0, "a\nb\n", "produce", "orders", "-p", "0", "--transactional-id", "tx-ok")
	poste(t, b, 0, "x\n", "produce", "orders", "-p", "0", "--transactional-id", "tx-ab", "--abort")
	poste(t, b, 0, "c\n", "produce", "orders", "-p", "0")

	for _, tc := range []struct {
		isolation string
		n         string
		want      string
	}{
		{"read_committed", "3", "a b c"},
		{"read_uncommitted", "4", "a b x c"},
	} {
		r := poste(t, b, 0, "", "consume", "orders", "--from-beginning", "-q", "-n", tc.n,
			"--isolation", tc.isolation, "--format", `%v\n`)
		if got := strings.Join(lines(r.stdout), " "); got != tc.want {
			t.Errorf("consume --isolation %s: %q, want %q", tc.isolation, got, tc.want)
		}
	}

	// An open transaction, left by a producer that has not ended it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.TransactionalID("tx-open"),
		kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	r := poste(t, b, 0, "", "txn", "list")
	for id, state := range map[string]string{"tx-ok": "CompleteCommit", "tx-ab": "CompleteAbort", "tx-open": "Ongoing"} {
		if got := row(t, r.stdout, id); got[1] != state {
			t.Errorf("txn list %s: %v, want state %s", id, got, state)
		}
	}
	for _, tc := range []struct {
		state string
		want  []string
	}{
		{"ongoing", []string{"tx-open"}},
		{"CompleteAbort,completecommit", []string{"tx-ab", "tx-ok"}},
		{"PrepareCommit", nil},
	} {
		r := poste(t, b, 0, "", "txn", "list", "--state", tc.state)
		var got []string
		for _, l := range lines(r.stdout)[1:] {
			got = append(got, strings.Fields(l)[0])
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("txn list --state %s: %v, want %v", tc.state, got, tc.want)
		}
	}

	r = poste(t, b, 0, "", "txn", "describe", "tx-open", "tx-ok")
	if got := row(t, r.stdout, "tx-open"); got[1] != "Ongoing" || got[len(got)-1] != "orders[1]" {
		t.Errorf("describe tx-open: %v", got)
	}
	if got := row(t, r.stdout, "tx-ok"); got[1] != "CompleteCommit" || got[len(got)-1] != "-" {
		t.Errorf("describe tx-ok: %v", got)
	}

	r = poste(t, b, 0, "", "txn", "describe", "tx-open", "--json")
	var js []struct {
		ID         string `json:"transactional_id"`
		State      string `json:"state"`
		Start      *int64 `json:"start_timestamp"`
		Partitions []struct {
			Topic      string  `json:"topic"`
			Partitions []int32 `json:"partitions"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, r.stdout)
	}
	if len(js) != 1 || js[0].State != "Ongoing" || js[0].Start == nil || len(js[0].Partitions) != 1 ||
		js[0].Partitions[0].Topic != "orders" || len(js[0].Partitions[0].Partitions) != 1 {
		t.Errorf("describe --json: %+v", js)
	}

	r = poste(t, b, 1, "", "txn", "describe", "tx-ok", "nope")
	if !strings.Contains(r.stderr, `unknown transactional id "nope"`) {
		t.Errorf("describe unknown: stderr %q", r.stderr)
	}
	if got := row(t, r.stdout, "tx-ok"); got[1] != "CompleteCommit" {
		t.Errorf("describe with an unknown id still shows the others: %v", got)
	}

	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// The ended transaction leaves the last stable offset free again.
	r = poste(t, b, 0, "", "consume", "orders", "--from-beginning", "-q", "-n", "3",
		"--isolation", "read_committed", "--format", `%v\n`)
	if got := strings.Join(lines(r.stdout), " "); got != "a b c" {
		t.Errorf("consume after abort: %q", got)
	}
}

func TestTxnUsage(t *testing.T) {
	for _, args := range [][]string{
		{"produce", "t", "--abort"},
		{"produce", "t", "--transactional-id", ""},
		{"produce", "t", "--transactional-id", "x", "--acks", "1"},
		{"txn", "list", "--state", "bogus"},
		{"txn", "describe"},
		{"txn", "nope"},
	} {
		r := runCtx(context.Background(), "", append([]string{"-b", "127.0.0.1:1"}, args...)...)
		if r.code != 2 {
			t.Errorf("poste %s: exit %d, want 2\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
