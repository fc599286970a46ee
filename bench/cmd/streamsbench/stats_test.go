package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
)

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: names(allKinds)},
		{in: "all", want: names(allKinds)},
		{in: "streams-map-alo, loop-map-alo", want: []string{"loop-map-alo", "streams-map-alo"}},
		{in: "restore-count-eos", want: []string{"streams-countall-eos", "restore-count-eos"}},
		{in: "restore-table-alo,loop-count-alo", want: []string{"loop-count-alo", "streams-table-alo", "restore-table-alo"}},
		{in: "streams-table-eos,streams-count-eos", want: []string{"streams-count-eos", "streams-table-eos"}},
		{in: "loop-table-alo", wantErr: true},
		{in: "restore-countall-alo", wantErr: true},
		{in: "loop-map-xyz", wantErr: true},
		{in: "loop-map-alo,loop-map-alo", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseKinds(tt.in)
		if tt.wantErr {
			if !errors.Is(err, errBadKinds) {
				t.Errorf("parseKinds(%q) error = %v, want errBadKinds", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("parseKinds(%q): %v", tt.in, err)
		}
		if g := names(got); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("parseKinds(%q) = %v, want %v", tt.in, g, tt.want)
		}
	}
}

func TestCounterpart(t *testing.T) {
	if got := (kind{"streams", "count", "eos"}).counterpart(); got != (kind{"loop", "count", "eos"}) {
		t.Errorf("counterpart = %v", got)
	}
}

// TestRestoreSources checks that every restore run follows the pkg/streams run
// whose changelog it reads, and that the two name each other.
func TestRestoreSources(t *testing.T) {
	tests := []struct {
		restore, source string
	}{
		{"restore-count-alo", "streams-countall-alo"},
		{"restore-count-eos", "streams-countall-eos"},
		{"restore-table-alo", "streams-table-alo"},
		{"restore-table-eos", "streams-table-eos"},
	}
	pos := map[string]int{}
	for i, k := range allKinds {
		pos[k.String()] = i
	}
	for _, tt := range tests {
		ri, ok1 := pos[tt.restore]
		si, ok2 := pos[tt.source]
		if !ok1 || !ok2 || si >= ri {
			t.Errorf("%s must follow %s in a round: positions %d, %d", tt.restore, tt.source, ri, si)
			continue
		}
		r, s := allKinds[ri], allKinds[si]
		if r.source() != s {
			t.Errorf("%s reads the changelog of %s, want %s", r, r.source(), s)
		}
		if got, ok := s.restore(); !ok || got != r {
			t.Errorf("%s is restored by %v %v, want %s", s, got, ok, r)
		}
	}
	for _, k := range allKinds {
		if rk, ok := k.restore(); ok && !containsKind(allKinds, rk) {
			t.Errorf("%s names an unknown restore %s", k, rk)
		}
		if k.Impl == "streams" && k.hasLoop() && !containsKind(allKinds, k.counterpart()) {
			t.Errorf("%s has no loop twin", k)
		}
		if k.Impl != "restore" && storeOf(k) == "" && k.Op != "map" {
			t.Errorf("%s has no store", k)
		}
	}
}

func TestLatestCounts(t *testing.T) {
	truth := map[string]int64{"a@0": 3, "a@60": 2, "b@0": 5}
	tests := []struct {
		name string
		last map[string]int64
		want string
	}{
		{"final counts", map[string]int64{"a@0": 3, "a@60": 2, "b@0": 5}, ""},
		{"a window's final count missing", map[string]int64{"a@0": 3, "b@0": 5}, "the last counts of 2 windows add up to 8, not 10"},
		{"a stale last count", map[string]int64{"a@0": 2, "a@60": 2, "b@0": 5}, "the last counts of 3 windows add up to 9, not 10"},
		{"counted twice", map[string]int64{"a@0": 4, "a@60": 1, "b@0": 5}, "1 windows counted past their true count"},
		{"unknown window", map[string]int64{"a@0": 3, "a@60": 2, "b@0": 4, "c@0": 1}, "1 output keys are no window of the input"},
		{"nothing", nil, "the last counts of 0 windows add up to 0, not 10"},
	}
	for _, tt := range tests {
		if got := latestCounts(tt.last, truth, 10); got != tt.want {
			t.Errorf("%s: latestCounts = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTargets(t *testing.T) {
	sum := map[kind]summary{
		{"loop", "count", "alo"}:       {recPerS: 1000},
		{"streams", "count", "alo"}:    {recPerS: 600},
		{"loop", "map", "alo"}:         {recPerS: 1000},
		{"streams", "map", "alo"}:      {recPerS: 600},
		{"streams", "table", "alo"}:    {recPerS: 500},
		{"restore", "table", "alo"}:    {mbPerS: 120},
		{"restore", "count", "alo"}:    {mbPerS: 20},
		{"streams", "countall", "eos"}: {recPerS: 100},
	}
	tests := []struct {
		k           kind
		ratio, goal string
	}{
		{kind{"streams", "count", "alo"}, "0.60", "≥ 0.50: met"},
		{kind{"streams", "map", "alo"}, "0.60", "≥ 0.90: missed"},
		{kind{"streams", "countall", "eos"}, "0.00", "≥ 0.50: not measured"},
		{kind{"streams", "table", "alo"}, "", ""},
		{kind{"restore", "table", "alo"}, "", "≥ 100 MB/s: met"},
		{kind{"restore", "count", "alo"}, "", ""},
		{kind{"loop", "map", "alo"}, "", ""},
	}
	for _, tt := range tests {
		if r, g := target(tt.k, sum); r != tt.ratio || g != tt.goal {
			t.Errorf("target(%s) = %q, %q; want %q, %q", tt.k, r, g, tt.ratio, tt.goal)
		}
	}
	for _, k := range allKinds {
		if d := describe(k); strings.Contains(d, ": ,") || strings.HasSuffix(d, ": ") || strings.Contains(d, "  ") {
			t.Errorf("describe(%s) = %q", k, d)
		}
	}
}

func TestMedianRatioRate(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.xs...)
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.xs) {
			t.Errorf("median reordered its input: %v", tt.xs)
		}
	}
	for _, tt := range []struct{ a, b, want float64 }{{9, 10, 0.9}, {1, 0, 0}, {1, -1, 0}} {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if got := rate(1000, 2*time.Second); got != 500 {
		t.Errorf("rate = %v, want 500", got)
	}
	if got := rate(1000, 0); got != 0 {
		t.Errorf("rate over 0 = %v, want 0", got)
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		v, target float64
		want      string
	}{{0.95, 0.9, "met"}, {0.9, 0.9, "met"}, {0.89, 0.9, "missed"}, {0, 0.5, "not measured"}}
	for _, tt := range tests {
		if got := verdict(tt.v, tt.target); got != tt.want {
			t.Errorf("verdict(%v, %v) = %q, want %q", tt.v, tt.target, got, tt.want)
		}
	}
}

func TestRestoreSpan(t *testing.T) {
	t0 := time.Unix(100, 0)
	tests := []struct {
		name string
		ends []time.Time
		took []time.Duration
		want time.Duration
	}{
		{"none", nil, nil, 0},
		{"mismatch", []time.Time{t0}, nil, 0},
		{"one", []time.Time{t0}, []time.Duration{time.Second}, time.Second},
		// [t0-3s, t0] and [t0+1s-2s, t0+1s] overlap: the span is t0-3s .. t0+1s.
		{"overlap", []time.Time{t0, t0.Add(time.Second)}, []time.Duration{3 * time.Second, 2 * time.Second}, 4 * time.Second},
	}
	for _, tt := range tests {
		if got := restoreSpan(tt.ends, tt.took); got != tt.want {
			t.Errorf("%s: restoreSpan = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 2000000: "2,000,000", -12345: "-12,345"} {
		if got := group(in); got != want {
			t.Errorf("group(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestSummarizeSkipsFailedRuns(t *testing.T) {
	k := kind{"loop", "map", "alo"}
	results := []result{
		{Kind: k.String(), RecPerS: 100, MBPerS: 10},
		{Kind: k.String(), RecPerS: 300, MBPerS: 30},
		{Kind: k.String(), RecPerS: 200, MBPerS: 20},
		{Kind: k.String(), RecPerS: 9999, MBPerS: 999, Err: "lost records"},
		{Kind: "streams-map-alo", RecPerS: 1},
	}
	s := summarize([]kind{k}, results)[k]
	if s.runs != 3 || s.recPerS != 200 || s.mbPerS != 20 {
		t.Errorf("summary = %+v, want 3 runs, 200 records/s, 20 MB/s", s)
	}
}

func TestRecordTransforms(t *testing.T) {
	if got := string(upper([]byte("abc-xyz 09"))); got != "ABC-XYZ 09" {
		t.Errorf("upper = %q", got)
	}
	tests := []struct {
		key   string
		start int64
		want  []byte
	}{
		{"k", 1, []byte{'k', 0, 0, 0, 0, 0, 0, 0, 1}},
		{"", 0x0102030405060708, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for _, tt := range tests {
		if got := windowedKey([]byte(tt.key), tt.start); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("windowedKey(%q, %d) = %v, want %v", tt.key, tt.start, got, tt.want)
		}
	}
	// The loop's output must be what pkg/streams writes for the same window and count.
	start := time.UnixMilli(120_000)
	want, err := streams.TimeWindowedSerde(streams.Bytes(), time.Minute).Serialize("out",
		streams.Windowed[[]byte]{Key: []byte("key-7"), Start: start, End: start.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got := windowedKey([]byte("key-7"), 120_000); !reflect.DeepEqual(got, want) {
		t.Errorf("windowedKey = %v, pkg/streams writes %v", got, want)
	}
	if want, _ := streams.Int64().Serialize("out", 258); !reflect.DeepEqual(count8(258), want) {
		t.Errorf("count8(258) = %v, pkg/streams writes %v", count8(258), want)
	}
	if got := count8(258); !reflect.DeepEqual(got, []byte{0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Errorf("count8(258) = %v", got)
	}
}

func TestTargetJudgesTheRoundsRatios(t *testing.T) {
	// The machine slows in round 2: each round's pair agrees, the medians of each kind
	// taken apart do not.
	results := []result{
		{Kind: "loop-map-alo", Round: 1, RecPerS: 2000}, {Kind: "streams-map-alo", Round: 1, RecPerS: 1960},
		{Kind: "loop-map-alo", Round: 2, RecPerS: 1300}, {Kind: "streams-map-alo", Round: 2, RecPerS: 1300},
		{Kind: "loop-map-alo", Round: 3, RecPerS: 1700}, {Kind: "streams-map-alo", Round: 3, RecPerS: 1500},
		{Kind: "loop-map-alo", Round: 4, RecPerS: 9000, Err: "failed"}, {Kind: "streams-map-alo", Round: 4, RecPerS: 100},
	}
	kinds := []kind{{"loop", "map", "alo"}, {"streams", "map", "alo"}}
	sum := summarize(kinds, results)
	if got := sum[kinds[1]].rounds; len(got) != 3 {
		t.Fatalf("rounds = %v, want the 3 rounds whose loop succeeded", got)
	}
	r, g := target(kinds[1], sum)
	if r != "0.98 (0.88–1.00; of medians 0.82)" || g != "≥ 0.90: met" {
		t.Fatalf("target = %q, %q", r, g)
	}
}
