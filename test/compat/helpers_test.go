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

func TestSplitsPartitions(t *testing.T) {
	tests := []struct {
		name        string
		assignments [][]int32
		want        []string // substrings of the verdict; none: the split is right
	}{
		{"halves", [][]int32{{0, 1, 2}, {3, 4}}, nil},
		{"overlap", [][]int32{{0, 1, 2}, {2, 3, 4}}, []string{"partition 2 assigned to members 0 and 1"}},
		{"gap", [][]int32{{0, 1}, {3, 4}}, []string{"partition 2 assigned to no member"}},
		{"idle member", [][]int32{{0, 1, 2, 3, 4}, {}}, []string{"member 1 was assigned nothing"}},
		{"unknown partition", [][]int32{{0, 1, 2}, {3, 4, 5}}, []string{"6 partitions assigned, the topic has 5"}},
	}
	for _, tc := range tests {
		got := splitsPartitions(tc.assignments, 5)
		if (got == "") != (len(tc.want) == 0) {
			t.Errorf("%s: verdict %q, want one containing %q", tc.name, got, tc.want)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: verdict %q does not contain %q", tc.name, got, w)
			}
		}
	}
}

func TestParseKcatGroupOutput(t *testing.T) {
	stderr := "% Waiting for group rebalance\n" +
		"% Group nerds-kcat rebalanced (memberid rdkafka-1): assigned: parties [0], parties [1], parties [10]\n" +
		"% Reached end of topic parties [0] at offset 3\n" +
		"% Group nerds-kcat rebalanced (memberid rdkafka-1): revoked: parties [0], parties [1], parties [10]\n" +
		"% Group nerds-kcat rebalanced (memberid rdkafka-1): assigned: parties [4]\n"
	stdout := `{"topic":"parties","partition":10,"offset":2,"tstype":"create","ts":1550000000000,"broker":1,"headers":["postmark","North Pole"],"key":"Santa","payload":"v"}` + "\n" +
		`{"topic":"parties","partition":0,"offset":0,"tstype":"logappend","ts":7,"broker":1,"key":null,"payload":"w"}` + "\n"
	m, err := parseKcatGroupOutput([]byte(stdout), []byte(stderr))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]int32{{0, 1, 10}, {4}}; !slices.EqualFunc(m.Assignments, want, slices.Equal) {
		t.Errorf("assignments %v, want %v", m.Assignments, want)
	}
	want := []gotRecord{
		{Topic: "parties", Partition: 10, Offset: 2, Key: ptr("Santa"), Value: ptr("v"),
			Headers: [][2]string{{"postmark", "North Pole"}}, Timestamp: postmarkBase, TimestampType: "create"},
		{Topic: "parties", Partition: 0, Offset: 0, Value: ptr("w"), Timestamp: 7, TimestampType: "log_append"},
	}
	if len(m.Records) != len(want) {
		t.Fatalf("records %+v, want %+v", m.Records, want)
	}
	for i := range want {
		g, w := m.Records[i], want[i]
		if g.Partition != w.Partition || g.Offset != w.Offset || describeOpt(g.Key) != describeOpt(w.Key) ||
			describeOpt(g.Value) != describeOpt(w.Value) || !slices.Equal(g.Headers, w.Headers) ||
			g.Timestamp != w.Timestamp || g.TimestampType != w.TimestampType {
			t.Errorf("record %d is %+v, want %+v", i, g, w)
		}
	}
	if _, err := parseKcatGroupOutput([]byte("not json\n"), nil); err == nil {
		t.Error("a line that is not JSON must fail")
	}
}
