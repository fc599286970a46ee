package streams

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// cachedRunner runs t in a local runner whose cached stores share a cache of max bytes.
func cachedRunner(t *testing.T, tp *Topology, max int64) *LocalRunner {
	t.Helper()
	r, err := newLocalRunner(tp, "app", time.UnixMilli(0), &cacheBudget{max: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func pipe(t *testing.T, r *LocalRunner, topic, k, v string, ts int64) {
	t.Helper()
	if err := r.Pipe(topic, []byte(k), []byte(v), time.UnixMilli(ts), nil); err != nil {
		t.Fatal(err)
	}
}

// counts renders a count topic's records as "k=n k=n".
func counts(recs []RawRecord, windowed bool) string {
	var parts []string
	for _, rr := range recs {
		k := rr.Key
		if windowed {
			k = rr.Key[:len(rr.Key)-8]
			parts = append(parts, fmt.Sprintf("%s@%d=%d", k, binary.BigEndian.Uint64(rr.Key[len(rr.Key)-8:]), binary.BigEndian.Uint64(rr.Value)))
			continue
		}
		if rr.Value == nil {
			parts = append(parts, string(k)+"=<nil>")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d", k, binary.BigEndian.Uint64(rr.Value)))
	}
	return strings.Join(parts, " ")
}

func countTopology() *Topology {
	tp := NewTopology()
	From(tp, "in", String(), String()).GroupByKey().Count("counts").ToStream().To("out")
	return tp
}

func TestCacheDeduplicatesUntilFlush(t *testing.T) {
	r := cachedRunner(t, countTopology(), 10<<20)
	for i, k := range []string{"a", "b", "a", "a", "c", "b"} {
		pipe(t, r, "in", k, "x", int64(100+i))
	}
	if got := counts(r.Output("out"), false); got != "" {
		t.Fatalf("output before the flush: %s", got)
	}
	if got := counts(r.Changelog("counts"), false); got != "" {
		t.Fatalf("changelog before the flush: %s", got)
	}
	p, err := r.Store("counts")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := GetKeyValueStore[string, int64](p, "counts")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, err := kv.Get("a"); err != nil || !ok || n != 3 {
		t.Fatalf("Get(a) through the cache = %d, %v, %v; want 3", n, ok, err)
	}
	if err := r.flushCaches(); err != nil {
		t.Fatal(err)
	}
	// One record per key, in the order the keys first became dirty, with the latest count.
	out := r.Output("out")
	if got, want := counts(out, false), "a=3 b=2 c=1"; got != want {
		t.Fatalf("output after the flush: %s, want %s", got, want)
	}
	if got, want := counts(r.Changelog("counts"), false), "a=3 b=2 c=1"; got != want {
		t.Fatalf("changelog after the flush: %s, want %s", got, want)
	}
	if out[0].Timestamp.UnixMilli() != 103 || out[1].Timestamp.UnixMilli() != 105 {
		t.Fatalf("flushed records carry the time of the latest write: %v, %v", out[0].Timestamp, out[1].Timestamp)
	}
	// A second flush with nothing new writes nothing.
	if err := r.flushCaches(); err != nil {
		t.Fatal(err)
	}
	pipe(t, r, "in", "a", "x", 200)
	if err := r.flushCaches(); err != nil {
		t.Fatal(err)
	}
	if got, want := counts(r.Output("out"), false), "a=4"; got != want {
		t.Fatalf("output after the second flush: %s, want %s", got, want)
	}
}

func TestCacheEvictionFlushesAndKeepsCountsExact(t *testing.T) {
	// Room for a handful of entries: writes keep evicting, and each eviction of a dirty
	// entry flushes the store.
	r := cachedRunner(t, countTopology(), 5*(cacheEntryOverhead+16))
	want := map[string]int{}
	for i := range 500 {
		k := fmt.Sprintf("k%02d", (i/4*7)%23) // runs of 4 updates of one key
		want[k]++
		pipe(t, r, "in", k, "x", int64(i))
	}
	if err := r.flushCaches(); err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	out := r.Output("out")
	for _, rr := range out {
		last[string(rr.Key)] = int(binary.BigEndian.Uint64(rr.Value))
	}
	if fmt.Sprint(last) != fmt.Sprint(want) {
		t.Fatalf("last count per key %v, want %v", last, want)
	}
	if len(out) >= 500 || len(out) < len(want) {
		t.Fatalf("%d output records for 500 updates of %d keys: the cache neither deduplicated nor held", len(out), len(want))
	}
	tk := r.tasks[0]
	if used := tk.stores["counts"].cache.budget.used; used > 5*(cacheEntryOverhead+16) {
		t.Fatalf("cache holds %d bytes, over its budget", used)
	}
	tk.dropCaches()
	if used := tk.stores["counts"].cache.budget.used; used != 0 {
		t.Fatalf("cache holds %d bytes after being dropped", used)
	}
}

func TestCacheOffForwardsEveryUpdate(t *testing.T) {
	tp := countTopology()
	tp.SetStoreCaching("counts", false)
	r := cachedRunner(t, tp, 10<<20)
	for i, k := range []string{"a", "a", "b"} {
		pipe(t, r, "in", k, "x", int64(i))
	}
	if got, want := counts(r.Output("out"), false), "a=1 a=2 b=1"; got != want {
		t.Fatalf("output: %s, want %s", got, want)
	}
	bad := NewTopology()
	AddKeyValueStore(bad, StoreSpec[string, string]{Name: "raw", Keys: String(), Values: String()})
	bad.SetStoreCaching("raw", true)
	if bad.Validate() == nil {
		t.Fatal("caching a processor API store was accepted")
	}
}

func TestCachedWindowedCountAndRetention(t *testing.T) {
	tp := NewTopology()
	g := From(tp, "in", String(), String()).GroupByKey()
	WindowedCount(g.WindowedBy(TumblingWindows(10*time.Millisecond, 5*time.Millisecond)), "wc").ToStream().To("out")
	r := cachedRunner(t, tp, 10<<20)
	for _, ts := range []int64{1, 2, 11, 3, 12} { // window 0: a×3, window 10: a×2
		pipe(t, r, "in", "a", "x", ts)
	}
	if got := counts(r.Output("out"), true); got != "" {
		t.Fatalf("output before the flush: %s", got)
	}
	if err := r.flushCaches(); err != nil {
		t.Fatal(err)
	}
	if got, want := counts(r.Output("out"), true), "a@0=3 a@10=2"; got != want {
		t.Fatalf("output: %s, want %s", got, want)
	}
	// Stream time far ahead: retention purges both old windows, which were flushed: the
	// deletions forward nothing.
	pipe(t, r, "in", "a", "x", 100)
	pipe(t, r, "in", "a", "x", 101)
	if got := counts(r.Output("out"), true); got != "" {
		t.Fatalf("output after purging flushed windows: %s", got)
	}
	// Purging a window whose update is still pending flushes that update first.
	pipe(t, r, "in", "a", "x", 200)
	if got, want := counts(r.Output("out"), true), "a@100=2"; got != want {
		t.Fatalf("output after purging a pending window: %s, want %s", got, want)
	}
	p, _ := r.Store("wc")
	ws, err := GetWindowStore[string, int64](p, "wc")
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	if err := ws.All(func(w Windowed[string], n int64) bool {
		held = append(held, fmt.Sprintf("%s@%d=%d", w.Key, w.Start.UnixMilli(), n))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(held, " "); got != "a@200=1" {
		t.Fatalf("store holds %s, want only the live window", got)
	}
	tombs := 0
	for _, rr := range r.Changelog("wc") {
		if rr.Value == nil {
			tombs++
		}
	}
	if tombs != 3 {
		t.Fatalf("changelog has %d tombstones, want 3 (the purged windows)", tombs)
	}
}

func TestCachedScansMergeTheStore(t *testing.T) {
	tp := NewTopology()
	TableFrom(tp, "tbl", "t", String(), String())
	r := cachedRunner(t, tp, 10<<20)
	pipe(t, r, "tbl", "a", "1", 1)
	pipe(t, r, "tbl", "b", "2", 2)
	pipe(t, r, "tbl", "d", "4", 3)
	if err := r.flushCaches(); err != nil {
		t.Fatal(err)
	}
	pipe(t, r, "tbl", "a", "9", 4) // overwrite, cached
	if err := r.Pipe("tbl", []byte("b"), nil, time.UnixMilli(5), nil); err != nil {
		t.Fatal(err) // delete, cached
	}
	pipe(t, r, "tbl", "c", "3", 6) // new, cached
	p, _ := r.Store("t")
	kv, err := GetKeyValueStore[string, string](p, "t")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	if err := kv.All(func(k, v string) bool { all = append(all, k+"="+v); return true }); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(all, " "), "a=9 c=3 d=4"; got != want {
		t.Fatalf("All = %s, want %s", got, want)
	}
	if kv.Len() != 3 {
		t.Fatalf("Len = %d, want 3", kv.Len())
	}
	if _, ok, _ := kv.Get("b"); ok {
		t.Fatal("a cached deletion is still readable")
	}

	// Window stores order keys by length before bytes: "b" sorts before "ab".
	wt := NewTopology()
	g := From(wt, "in", String(), String()).GroupByKey()
	WindowedCount(g.WindowedBy(TumblingWindows(time.Hour, time.Hour)), "wc").ToStream().To("out")
	wr := cachedRunner(t, wt, 10<<20)
	pipe(t, wr, "in", "ab", "x", 1)
	pipe(t, wr, "in", "b", "x", 1)
	if err := wr.flushCaches(); err != nil {
		t.Fatal(err)
	}
	pipe(t, wr, "in", "b", "x", 2)
	pipe(t, wr, "in", "a", "x", 2)
	pipe(t, wr, "in", "abc", "x", 2)
	wp, _ := wr.Store("wc")
	ws, _ := GetWindowStore[string, int64](wp, "wc")
	var got []string
	if err := ws.All(func(w Windowed[string], n int64) bool {
		got = append(got, fmt.Sprintf("%s=%d", w.Key, n))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if s, want := strings.Join(got, " "), "a=1 b=2 ab=1 abc=1"; s != want {
		t.Fatalf("window store All = %s, want %s", s, want)
	}
}

func TestFlushedEntriesReachEveryStore(t *testing.T) {
	for _, cfg := range storeConfigs {
		for _, suffix := range []int{0, 8} {
			t.Run(fmt.Sprintf("%s/suffix%d", cfg.name, suffix), func(t *testing.T) {
				var kv kvBytes = cfg.open(t)
				if suffix > 0 {
					kv = &suffixKV{m: kv, suffix: suffix}
				}
				si := &storeInst{spec: &storeSpec{name: "s"}, kv: kv}
				key := func(s string) string { return s + strings.Repeat("\x00", suffix) }
				if _, err := si.writeEntries([]*cacheEntry{
					{key: key("a"), value: []byte("1")}, {key: key("b"), value: []byte("2")}, {key: key("c"), value: []byte{}},
				}); err != nil {
					t.Fatal(err)
				}
				keys, err := si.writeEntries([]*cacheEntry{{key: key("a"), value: nil}, {key: key("b"), value: []byte("9")}})
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) != 2 || string(keys[0]) != key("a") || string(keys[1]) != key("b") {
					t.Fatalf("written keys %q, want the entries' keys in order", keys)
				}
				var got []string
				si.kv.scan(nil, nil, func(k, v []byte) bool {
					got = append(got, strings.TrimRight(string(k), "\x00")+"="+string(v))
					return true
				})
				if s := strings.Join(got, " "); s != "b=9 c=" {
					t.Fatalf("store holds %q, want %q", s, "b=9 c=")
				}
				if !si.dirty {
					t.Fatal("a flushed store is not marked written")
				}
			})
		}
	}
}
