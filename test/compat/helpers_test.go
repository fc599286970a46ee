package compat

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The suite's verdicts rest on diffRecords: each case must report exactly its differences.
func TestDiffRecords(t *testing.T) {
	ts := time.UnixMilli(postmarkBase)
	ref := func() *kgo.Record {
		return &kgo.Record{Topic: "parties", Partition: 3, Offset: 7, Key: []byte("Santa"), Value: []byte("v"),
			Headers: []kgo.RecordHeader{{Key: "postmark", Value: []byte("North Pole")}}, Timestamp: ts}
	}
	good := func() gotRecord {
		return gotRecord{Topic: "parties", Partition: 3, Offset: 7, Key: ptr("Santa"), Value: ptr("v"),
			Headers: [][2]string{{"postmark", "North Pole"}}, Timestamp: postmarkBase, TimestampType: "create"}
	}
	tests := []struct {
		name   string
		mutate func(*gotRecord)
		extra  []gotRecord
		want   []string // substrings, one per expected difference, in order
	}{
		{name: "identical", mutate: func(*gotRecord) {}},
		{name: "key", mutate: func(g *gotRecord) { g.Key = ptr("Elf") }, want: []string{`key "Elf", want "Santa"`}},
		{name: "null key", mutate: func(g *gotRecord) { g.Key = nil }, want: []string{`key null, want "Santa"`}},
		{name: "value", mutate: func(g *gotRecord) { g.Value = ptr("w") }, want: []string{`value "w", want "v"`}},
		{name: "headers", mutate: func(g *gotRecord) { g.Headers = nil }, want: []string{"headers"}},
		{name: "timestamp", mutate: func(g *gotRecord) { g.Timestamp++ }, want: []string{"timestamp 1550000000001"}},
		{name: "timestamp type", mutate: func(g *gotRecord) { g.TimestampType = "log_append" }, want: []string{"timestamp type log_append"}},
		{name: "missing", mutate: func(g *gotRecord) { g.Offset = 8 },
			want: []string{"did not read parties[3]@7", "read parties[3]@8, which franz-go did not"}},
		{name: "twice", mutate: func(*gotRecord) {}, extra: []gotRecord{good()}, want: []string{"read parties[3]@7 twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := good()
			tc.mutate(&g)
			diffs := diffRecords([]*kgo.Record{ref()}, append([]gotRecord{g}, tc.extra...))
			if len(diffs) != len(tc.want) {
				t.Fatalf("diffs %q, want %d matching %q", diffs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(diffs[i], w) {
					t.Errorf("diff %d is %q, want it to contain %q", i, diffs[i], w)
				}
			}
		})
	}
}

func TestSameKcatRun(t *testing.T) {
	h1 := [][2]string{{"a", "1"}}
	h2 := [][2]string{{"a", "2"}}
	tests := []struct {
		name string
		a, b sendRecord
		want bool
	}{
		{"both unkeyed", sendRecord{Value: "x"}, sendRecord{Value: "y"}, true},
		{"keyed and unkeyed", sendRecord{Key: ptr("k")}, sendRecord{}, false},
		{"same headers", sendRecord{Headers: h1}, sendRecord{Headers: h1}, true},
		{"other headers", sendRecord{Headers: h1}, sendRecord{Headers: h2}, false},
		{"same partition", sendRecord{Partition: ptr(int32(1))}, sendRecord{Partition: ptr(int32(1))}, true},
		{"other partition", sendRecord{Partition: ptr(int32(1))}, sendRecord{Partition: ptr(int32(2))}, false},
		{"partition and none", sendRecord{Partition: ptr(int32(1))}, sendRecord{}, false},
	}
	for _, tc := range tests {
		if got := sameKcatRun(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameKcatRun = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		in             string
		producer, what string
		i              int
		ok             bool
	}{
		{value("kcat", "Cool pool party", 4), "kcat", "Cool pool party", 4, true},
		{value("kafkajs", "gzip", 9) + "|filler", "kafkajs", "gzip", 9, true},
		{"no separators", "", "", 0, false},
		{"a|b|not-a-number", "", "", 0, false},
	}
	for _, tc := range tests {
		p, w, i, ok := parseValue([]byte(tc.in))
		if ok != tc.ok || (ok && (p != tc.producer || w != tc.what || i != tc.i)) {
			t.Errorf("parseValue(%q) = %q, %q, %d, %v; want %q, %q, %d, %v", tc.in, p, w, i, ok, tc.producer, tc.what, tc.i, tc.ok)
		}
	}
}

func TestBigValue(t *testing.T) {
	a, b := bigValue("kcat"), bigValue("kafkajs")
	if len(a) != 900<<10 || len(b) != 900<<10 {
		t.Fatalf("sizes %d and %d, want %d", len(a), len(b), 900<<10)
	}
	if a == b || a != bigValue("kcat") {
		t.Error("bigValue must be deterministic per producer and differ between producers")
	}
	if strings.ContainsAny(a, "\n\t") {
		t.Error("bigValue must fit on one kcat input line")
	}
}

func TestKcatOffsetLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"postmarks [0] offset 3", []string{"postmarks", "0", "3"}},
		{"postmarks [0] offset -1", []string{"postmarks", "0", "-1"}},
		{"% ERROR: timed out", nil},
	} {
		m := kcatOffsetLine.FindStringSubmatch(tc.line)
		if (m == nil) != (tc.want == nil) || (m != nil && !slices.Equal(m[1:], tc.want)) {
			t.Errorf("%q parsed as %q, want %q", tc.line, m, tc.want)
		}
	}
}
