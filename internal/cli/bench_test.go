package cli_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/poste-io/poste/internal/testkit"
)

// benchJSON is the JSON a produce, consume or e2e run prints.
type benchJSON struct {
	Command     string   `json:"command"`
	Topic       string   `json:"topic"`
	Partitions  int32    `json:"partitions"`
	Workload    string   `json:"workload"`
	Records     int64    `json:"records"`
	Bytes       int64    `json:"bytes"`
	Seconds     float64  `json:"seconds"`
	RecordsPerS float64  `json:"records_per_s"`
	MBPerS      float64  `json:"mb_per_s"`
	Ack         *latJSON `json:"ack_latency_ms"`
	E2E         *latJSON `json:"e2e_latency_ms"`
	Poll        *latJSON `json:"poll_wait_ms"`
	Batches     int64    `json:"batches"`
	Txns        int64    `json:"transactions"`
	TxnPerS     float64  `json:"transactions_per_s"`
	Commit      *latJSON `json:"commit_latency_ms"`
}

type latJSON struct {
	Count int64   `json:"count"`
	Avg   float64 `json:"avg"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// check fails unless the distribution holds count values and its figures are ordered.
func (l *latJSON) check(t *testing.T, name string, count int64) {
	t.Helper()
	if l == nil {
		t.Fatalf("%s latency missing", name)
	}
	if l.Count != count {
		t.Errorf("%s latency count %d, want %d", name, l.Count, count)
	}
	if !(l.Avg >= 0 && 0 <= l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Avg <= l.Max) {
		t.Errorf("%s latency not ordered: %+v", name, *l)
	}
}

func parseBenchJSON(t *testing.T, out string) benchJSON {
	t.Helper()
	var r benchJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if r.Seconds <= 0 || r.RecordsPerS <= 0 || r.MBPerS <= 0 {
		t.Errorf("rates not positive: %+v", r)
	}
	return r
}

// textValue returns the number in the second column of the text row named key.
func textValue(t *testing.T, out, key string) float64 {
	t.Helper()
	f := row(t, out, key)
	if len(f) < 2 {
		t.Fatalf("row %q has no value: %v", key, f)
	}
	v, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		t.Fatalf("row %q: %v", key, err)
	}
	return v
}

// textLatency parses the text latency row named key: avg p50 p95 p99 p99.9 max.
func textLatency(t *testing.T, out, key string, count int64) {
	t.Helper()
	f := row(t, out, key)
	if len(f) != 7 {
		t.Fatalf("latency row %q: %v", key, f)
	}
	var v [6]float64
	for i := range v {
		var err error
		if v[i], err = strconv.ParseFloat(f[i+1], 64); err != nil {
			t.Fatalf("latency row %q: %v", key, err)
		}
	}
	l := latJSON{Count: count, Avg: v[0], P50: v[1], P95: v[2], P99: v[3], P999: v[4], Max: v[5]}
	l.check(t, key, count)
}

// checkText verifies the totals of a text report: exact counts, positive rates.
func checkText(t *testing.T, out string, records int64, mb float64) {
	t.Helper()
	if got := textValue(t, out, "records"); got != float64(records) {
		t.Errorf("records %v, want %d\n%s", got, records, out)
	}
	if got := textValue(t, out, "MB"); math.Abs(got-mb) > 0.0005 { // printed to 3 decimals
		t.Errorf("MB %v, want %v\n%s", got, mb, out)
	}
	for _, k := range []string{"seconds", "records/s", "MB/s"} {
		if v := textValue(t, out, k); v <= 0 {
			t.Errorf("%s = %v, want > 0\n%s", k, v, out)
		}
	}
}

func TestBenchProduceConsume(t *testing.T) {
	b := testkit.StartBroker(t, nil)

	r := poste(t, b, 0, "", "bench", "produce", "--topic", "b1", "--records", "2000", "--record-size", "100",
		"--partitions", "3", "--progress", "0")
	checkText(t, r.stdout, 2000, 0.2)
	textLatency(t, r.stdout, "ack", 2000)
	if !strings.Contains(r.stdout, "2000 records × 100 B to b1 (3 partitions)") {
		t.Errorf("no workload line:\n%s", r.stdout)
	}

	// Three producers share 2001 records unevenly; every one is acknowledged once.
	r = poste(t, b, 0, "", "bench", "produce", "--topic", "b1", "--records", "2001", "--record-size", "100",
		"--producers", "3", "--acks", "1", "--compression", "lz4", "--throughput", "1MB/s", "--json", "--progress", "0")
	j := parseBenchJSON(t, r.stdout)
	if j.Command != "produce" || j.Topic != "b1" || j.Partitions != 3 || j.Records != 2001 || j.Bytes != 200100 {
		t.Errorf("produce JSON: %+v", j)
	}
	j.Ack.check(t, "ack", 2001)
	if j.E2E != nil || j.Poll != nil {
		t.Errorf("produce JSON has consumer latencies: %s", r.stdout)
	}

	// Everything the topic holds, then a prefix.
	r = poste(t, b, 0, "", "bench", "consume", "--topic", "b1", "--progress", "0")
	checkText(t, r.stdout, 4001, 0.4001)
	if f := row(t, r.stdout, "poll-wait"); len(f) != 7 {
		t.Errorf("poll-wait row: %v", f)
	}
	r = poste(t, b, 0, "", "bench", "consume", "--topic", "b1", "--records", "1500", "--json")
	j = parseBenchJSON(t, r.stdout)
	if j.Command != "consume" || j.Records != 1500 || j.Bytes != 150000 || j.Partitions != 3 {
		t.Errorf("consume JSON: %+v", j)
	}
	if j.Poll == nil || j.Poll.Count < 1 || j.Poll.Count > 1500 {
		t.Errorf("poll wait: %+v", j.Poll)
	}

	// An existing topic with another partition count is refused only when -p is given.
	poste(t, b, 1, "", "bench", "produce", "--topic", "b1", "--records", "10", "--partitions", "5")
	poste(t, b, 4, "", "bench", "consume", "--topic", "nope")
	poste(t, b, 0, "", "topic", "create", "empty", "-p", "2")
	r = poste(t, b, 1, "", "bench", "consume", "--topic", "empty")
	if !strings.Contains(r.stderr, "holds no records") {
		t.Errorf("empty topic: %s", r.stderr)
	}
}

func TestBenchProduceTxn(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	for _, tc := range []struct {
		name      string
		args      []string
		records   int64
		txns      int64 // 0: no transactions
		workload  string
		committed []string // transactional ids that must end committed
	}{
		{name: "plain", args: []string{"--no-idempotence"}, records: 1500, workload: ", not idempotent"},
		{name: "plain acks 1", args: []string{"--no-idempotence", "--acks", "1"}, records: 700, workload: ", not idempotent"},
		{name: "idempotent", records: 1200, workload: ", idempotent"},
		// 2500 = 1000 + 1000 + 500: the last transaction holds the rest.
		{name: "one producer", args: []string{"--transactional-id", "bt", "--txn-records", "1000"}, records: 2500, txns: 3,
			workload: ", transactions of 1000 records per producer (id bt)", committed: []string{"bt"}},
		// 1001 records (3 transactions of ≤ 500) and 1000 (2).
		{name: "two producers", args: []string{"--transactional-id", "bt2", "--txn-records", "500", "--producers", "2"}, records: 2001, txns: 5,
			committed: []string{"bt2-0", "bt2-1"}},
		// One record per transaction, each its own batch.
		{name: "record each", args: []string{"--transactional-id", "bt3", "--txn-records", "1"}, records: 40, txns: 40, committed: []string{"bt3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "bt-" + strings.ReplaceAll(tc.name, " ", "-")
			args := append([]string{"bench", "produce", "--topic", topic, "--records", strconv.FormatInt(tc.records, 10),
				"--record-size", "100", "--partitions", "3", "--progress", "0", "--json"}, tc.args...)
			j := parseBenchJSON(t, poste(t, b, 0, "", args...).stdout)
			if j.Records != tc.records || j.Bytes != 100*tc.records || j.Txns != tc.txns {
				t.Errorf("records %d, bytes %d, transactions %d; want %d, %d, %d", j.Records, j.Bytes, j.Txns, tc.records, 100*tc.records, tc.txns)
			}
			if !strings.HasSuffix(j.Workload, tc.workload) {
				t.Errorf("workload %q, want suffix %q", j.Workload, tc.workload)
			}
			j.Ack.check(t, "ack", tc.records)
			// A batch holds at least one record; a transaction flushes at least one batch.
			if j.Batches < max(tc.txns, 1) || j.Batches > tc.records {
				t.Errorf("batches %d, want %d..%d", j.Batches, max(tc.txns, 1), tc.records)
			}
			if tc.txns == 0 {
				if j.Commit != nil || j.TxnPerS != 0 {
					t.Errorf("commit figures without transactions: %+v", j)
				}
			} else {
				j.Commit.check(t, "commit", tc.txns)
				if j.TxnPerS <= 0 {
					t.Errorf("transactions/s %v", j.TxnPerS)
				}
				if tc.txns == tc.records && j.Batches != tc.records {
					t.Errorf("batches %d, want one per one-record transaction", j.Batches)
				}
			}
			// Everything is visible to a read_committed consumer, nothing twice.
			r := poste(t, b, 0, "", "consume", topic, "--from-beginning", "-q", "--isolation", "read_committed",
				"-n", strconv.FormatInt(tc.records, 10), "--format", `%p %o\n`)
			seen := map[string]bool{}
			for _, l := range lines(r.stdout) {
				if seen[l] {
					t.Errorf("record %s twice", l)
				}
				seen[l] = true
			}
			if int64(len(seen)) != tc.records {
				t.Errorf("read_committed consumer got %d records, want %d", len(seen), tc.records)
			}
			if len(tc.committed) > 0 {
				r = poste(t, b, 0, "", "txn", "list")
				for _, id := range tc.committed {
					if got := row(t, r.stdout, id); got[1] != "CompleteCommit" {
						t.Errorf("txn list %s: %v, want CompleteCommit", id, got)
					}
				}
			}
		})
	}

	// The text report adds the batch, transaction and commit rows.
	r := poste(t, b, 0, "", "bench", "produce", "--topic", "bt-text", "--records", "300", "--record-size", "10",
		"--transactional-id", "btx", "--txn-records", "100", "--progress", "0")
	checkText(t, r.stdout, 300, 0.003)
	if got := textValue(t, r.stdout, "transactions"); got != 3 {
		t.Errorf("transactions %v, want 3\n%s", got, r.stdout)
	}
	if got := textValue(t, r.stdout, "batches"); got < 3 || got > 300 {
		t.Errorf("batches %v, want 3..300\n%s", got, r.stdout)
	}
	textValue(t, r.stdout, "transactions/s")
	textLatency(t, r.stdout, "commit", 3)
	textLatency(t, r.stdout, "ack", 300)
}

func TestBenchE2E(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	// Records already in the topic are not part of the run.
	poste(t, b, 0, "", "bench", "produce", "--topic", "e", "--records", "300", "--record-size", "64", "--partitions", "2", "--progress", "0")

	r := poste(t, b, 0, "", "bench", "e2e", "--topic", "e", "--records", "2000", "--record-size", "64",
		"--throughput", "20000", "--linger", "1ms", "--progress", "0")
	checkText(t, r.stdout, 2000, 0.128)
	textLatency(t, r.stdout, "end-to-end", 2000)
	textLatency(t, r.stdout, "ack", 2000)

	r = poste(t, b, 0, "", "bench", "e2e", "--topic", "e", "--records", "2000", "--record-size", "64",
		"--throughput", "0", "--producers", "2", "--json", "--progress", "0")
	j := parseBenchJSON(t, r.stdout)
	if j.Command != "e2e" || j.Records != 2000 || j.Bytes != 128000 || j.Partitions != 2 {
		t.Errorf("e2e JSON: %+v", j)
	}
	j.E2E.check(t, "e2e", 2000)
	j.Ack.check(t, "ack", 2000)
	if j.Poll == nil || j.Poll.Count < 1 {
		t.Errorf("poll wait: %+v", j.Poll)
	}
}

func TestBenchLimits(t *testing.T) {
	dir := t.TempDir()
	r := runCtx(t.Context(), "", "bench", "limits", "--dir", dir, "--size", "2MiB", "--fsyncs", "5")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, k := range []string{"loopback-tcp", "write", "write+fsync"} {
		f := row(t, r.stdout, k)
		if mb, _ := strconv.ParseFloat(f[1], 64); mb <= 0 || f[2] != "2" {
			t.Errorf("%s row %v: want positive MB/s and 2 MB", k, f)
		}
	}
	if f := row(t, r.stdout, "fsync-4k"); f[len(f)-1] != "5" {
		t.Errorf("fsync row %v: want n = 5", f)
	}

	r = runCtx(t.Context(), "", "bench", "limits", "--dir", dir, "--size", "1MiB", "--fsyncs", "3", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	type rate struct {
		Bytes  int64   `json:"bytes"`
		MBPerS float64 `json:"mb_per_s"`
	}
	var j struct {
		Command string `json:"command"`
		Dir     string `json:"dir"`
		TCP     rate   `json:"loopback_tcp"`
		Write   rate   `json:"write"`
		Fsynced rate   `json:"write_fsync"`
		Fsync   struct {
			N   int     `json:"n"`
			P50 float64 `json:"p50_us"`
			P99 float64 `json:"p99_us"`
			Max float64 `json:"max_us"`
		} `json:"fsync_4kib"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	for name, p := range map[string]rate{"loopback_tcp": j.TCP, "write": j.Write, "write_fsync": j.Fsynced} {
		if p.Bytes != 1<<20 || p.MBPerS <= 0 {
			t.Errorf("%s: %+v, want 1 MiB at a positive rate", name, p)
		}
	}
	if j.Command != "limits" || j.Dir != dir || j.Fsync.N != 3 || !(0 < j.Fsync.P50 && j.Fsync.P50 <= j.Fsync.P99 && j.Fsync.P99 <= j.Fsync.Max) {
		t.Errorf("limits JSON: %s", r.stdout)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 0 {
		t.Errorf("probe files left behind: %v", left)
	}
}

func TestBenchUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, args := range [][]string{
		{"bench", "nope"},
		{"bench", "produce", "--records", "0"},
		{"bench", "produce", "--record-size", "0"},
		{"bench", "produce", "--acks", "2"},
		{"bench", "produce", "--compression", "brotli"},
		{"bench", "produce", "--throughput", "fast"},
		{"bench", "produce", "--throughput", "10MB/h"},
		{"bench", "produce", "--producers", "0"},
		{"bench", "produce", "--batch-max-bytes", "1000"},
		{"bench", "produce", "--buffer-bytes", "1000"},
		{"bench", "produce", "extra-arg"},
		{"bench", "produce", "--txn-records", "10"},
		{"bench", "produce", "--transactional-id", "x", "--txn-records", "0"},
		{"bench", "produce", "--transactional-id", "x", "--no-idempotence"},
		{"bench", "produce", "--transactional-id", "x", "--acks", "1"},
		{"bench", "e2e", "--record-size", "15"},
		{"bench", "consume", "--records", "-1"},
		{"bench", "consume", "--stall-timeout", "0s"},
		{"bench", "limits", "--size", "1KB"},
		{"bench", "limits", "--max-time", "0s"},
		{"bench", "limits", "--dir", missing},
	} {
		// The broker address is unreachable: a usage error must come before any connection.
		r := runCtx(t.Context(), "", append([]string{"-b", "127.0.0.1:1"}, args...)...)
		if r.code != 2 {
			t.Errorf("poste %s: exit %d, want 2\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	r := runCtx(t.Context(), "", "bench")
	if r.code != 0 || !strings.Contains(r.stdout, "limits") {
		t.Errorf("poste bench: exit %d\n%s", r.code, r.stdout)
	}
	if r := runCtx(t.Context(), "", "-b", "127.0.0.1:1", "bench", "produce", "--records", "1"); r.code != 3 {
		t.Errorf("unreachable broker: exit %d, want 3\n%s", r.code, r.stderr)
	}
}
