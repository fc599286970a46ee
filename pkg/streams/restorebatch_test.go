package streams

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// changelogRec is a changelog record at off; value "<nil>" is a tombstone.
func changelogRec(off int64, key, value string) *kgo.Record {
	return &kgo.Record{Topic: "cl", Partition: 0, Offset: off, Key: b(key), Value: b(value)}
}

// markerRec is a transaction marker at off. Its key and value are those of a record that
// would change the store, so that applying it by mistake shows.
func markerRec(off int64) *kgo.Record {
	r := changelogRec(off, "marker", "applied")
	r.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Control: true, Transactional: true})
	return r
}

// wkey is a window store's changelog key: key then an 8-byte window start.
func wkey(k string, start int64) string { return string(appendTimes([]byte(k), start)) }

// skey is a session store's changelog key: key then 8-byte end and start.
func skey(k string, end, start int64) string { return string(appendTimes([]byte(k), end, start)) }

// rawDump renders the bytes the store's innermost kvBytes holds, hex-free but exact.
func rawDump(kv kvBytes) string {
	switch s := kv.(type) {
	case *suffixKV:
		kv = s.m
	case *lockedKV:
		kv = s.mu.kv
	}
	var parts []string
	kv.scan(nil, nil, func(k, v []byte) bool {
		parts = append(parts, fmt.Sprintf("%q=%q", k, v))
		return true
	})
	return strings.Join(parts, " ")
}

// TestRestoreRecordsEqualsRecordByRecord restores one changelog sequence (puts, overwrites,
// tombstones, an empty value, a delete of a missing key, transaction markers) into key-value,
// window and session stores in memory and on Pebble, and into a global store: applied as
// batches of any size through restoreRecords, the store must hold exactly what restoring
// record by record gives.
func TestRestoreRecordsEqualsRecordByRecord(t *testing.T) {
	shapes := []struct {
		name   string
		suffix int
		global bool
		keys   []string
	}{
		{name: "key-value", keys: []string{"a", "ab", "b", "c"}},
		{name: "window", suffix: 8, keys: []string{wkey("a", 0), wkey("ab", 10), wkey("a", 60_000), wkey("b", 0)}},
		{name: "session", suffix: 16, keys: []string{skey("a", 5, 0), skey("ab", 9, 9), skey("a", 20, 12), skey("b", 3, 1)}},
		{name: "global", global: true, keys: []string{"a", "ab", "b", "c"}},
	}
	chunkings := []int{1, 2, 3, 100}
	for _, cfg := range storeConfigs {
		for _, sh := range shapes {
			if sh.global && cfg.name != "memory" {
				continue // global stores are always in memory
			}
			t.Run(cfg.name+"/"+sh.name, func(t *testing.T) {
				k := sh.keys
				recs := []*kgo.Record{
					changelogRec(0, k[0], "1"),
					changelogRec(1, k[1], "2"),
					changelogRec(2, k[0], "3"), // overwrite
					markerRec(3),
					changelogRec(4, k[2], "4"),
					changelogRec(5, k[1], "<nil>"), // tombstone
					changelogRec(6, k[3], "<nil>"), // tombstone of a key never written
					changelogRec(7, k[3], ""),      // an empty value is a present value
					changelogRec(9, k[2], "5"),     // after a compacted gap
					markerRec(10),
					changelogRec(11, k[1], "6"), // back after its tombstone
					changelogRec(12, k[0], "<nil>"),
				}
				open := func() *storeInst {
					kv := cfg.open(t)
					switch {
					case sh.suffix > 0:
						kv = &suffixKV{m: kv, suffix: sh.suffix}
					case sh.global:
						kv = newLockedKV(kv)
					}
					return &storeInst{spec: &storeSpec{name: "s", suffix: sh.suffix}, kv: kv}
				}
				ref := open()
				for _, r := range recs {
					if !r.Attrs.IsControl() {
						ref.restore(r.Key, r.Value)
					}
				}
				want := rawDump(ref.kv)
				if strings.Contains(want, "marker") || !strings.Contains(want, `="6"`) || !strings.Contains(want, `="5"`) {
					t.Fatalf("reference store is wrong: %s", want)
				}
				for _, n := range chunkings {
					si := open()
					for i := 0; i < len(recs); i += n {
						si.restoreRecords(recs[i:min(i+n, len(recs))])
					}
					if err := si.kv.err(); err != nil {
						t.Fatalf("runs of %d: %v", n, err)
					}
					if got := rawDump(si.kv); got != want {
						t.Errorf("runs of %d:\n got %s\nwant %s", n, got, want)
					}
					if got, ok := si.kv.get([]byte(k[3])); !ok || got == nil || len(got) != 0 {
						t.Errorf("runs of %d: empty value of %q read as %q, %v", n, k[3], got, ok)
					}
				}
			})
		}
	}
}

// TestRestoreRecordsOnAFailedStore checks that a Pebble store that failed stays failed: a
// batch is not written and the first error is kept.
func TestRestoreRecordsOnAFailedStore(t *testing.T) {
	for _, suffix := range []int{0, 8} {
		kv := storeConfigs[1].open(t).(*pebbleKV)
		if err := kv.close(); err != nil {
			t.Fatal(err)
		}
		first := kv.err()
		var store kvBytes = kv
		if suffix > 0 {
			store = &suffixKV{m: kv, suffix: suffix}
		}
		si := &storeInst{spec: &storeSpec{name: "s", suffix: suffix}, kv: store}
		si.restoreRecords([]*kgo.Record{changelogRec(0, wkey("a", 0), "1")})
		if err := si.kv.err(); err == nil || err != first {
			t.Errorf("suffix %d: err %v, want the first failure %v", suffix, err, first)
		}
	}
}

// TestRestoreJobStopsAtItsEnd feeds fetched runs to a restore job: the records up to the
// one that reaches the end offset are applied (markers are not counted), the rest of the
// run is not, and the store's position becomes the end.
func TestRestoreJobStopsAtItsEnd(t *testing.T) {
	tests := []struct {
		name         string
		end          int64
		runs         [][]*kgo.Record
		wantApplied  []int64
		wantFinished bool
		wantReached  int64
		wantStore    string
	}{
		{
			name:         "ends inside a run",
			end:          4,
			runs:         [][]*kgo.Record{{changelogRec(1, "a", "1"), changelogRec(2, "b", "2"), changelogRec(3, "c", "3"), changelogRec(4, "late", "4"), changelogRec(5, "late2", "5")}},
			wantApplied:  []int64{3},
			wantFinished: true, wantReached: 4,
			wantStore: `"a"="1" "b"="2" "c"="3"`,
		},
		{
			name:         "ends on a marker",
			end:          4,
			runs:         [][]*kgo.Record{{changelogRec(1, "a", "1"), changelogRec(2, "b", "2")}, {markerRec(3), changelogRec(4, "late", "4")}},
			wantApplied:  []int64{2, 0},
			wantFinished: true, wantReached: 4,
			wantStore: `"a"="1" "b"="2"`,
		},
		{
			name:         "a compacted gap jumps past the end",
			end:          4,
			runs:         [][]*kgo.Record{{changelogRec(1, "a", "1"), changelogRec(6, "b", "2"), changelogRec(7, "late", "3")}},
			wantApplied:  []int64{2},
			wantFinished: true, wantReached: 7,
			wantStore: `"a"="1" "b"="2"`,
		},
		{
			name:        "not there yet",
			end:         10,
			runs:        [][]*kgo.Record{{changelogRec(1, "a", "1")}, {}, {changelogRec(2, "a", "<nil>"), changelogRec(3, "b", "2")}},
			wantApplied: []int64{1, 0, 2}, wantReached: 4,
			wantStore: `"b"="2"`,
		},
		{
			name:         "nothing applied once finished",
			end:          2,
			runs:         [][]*kgo.Record{{changelogRec(1, "a", "1")}, {changelogRec(2, "b", "2")}},
			wantApplied:  []int64{1, 0},
			wantFinished: true, wantReached: 2,
			wantStore: `"a"="1"`,
		},
	}
	for _, cfg := range storeConfigs {
		for _, tt := range tests {
			t.Run(cfg.name+"/"+tt.name, func(t *testing.T) {
				si := &storeInst{spec: &storeSpec{name: "s"}, kv: cfg.open(t)}
				si.pos.Store(-1)
				j := &restoreJob{si: si, from: 1, reached: 1, end: tt.end}
				var total int64
				for i, run := range tt.runs {
					if got := j.apply(run); got != tt.wantApplied[i] {
						t.Errorf("run %d applied %d, want %d", i, got, tt.wantApplied[i])
					}
					total += tt.wantApplied[i]
				}
				if j.finished != tt.wantFinished || j.reached != tt.wantReached || j.records != total {
					t.Errorf("finished %v reached %d records %d, want %v %d %d", j.finished, j.reached, j.records, tt.wantFinished, tt.wantReached, total)
				}
				wantPos := int64(-1)
				if tt.wantFinished {
					wantPos = tt.end
				}
				if si.pos.Load() != wantPos {
					t.Errorf("position %d, want %d", si.pos.Load(), wantPos)
				}
				if got := rawDump(si.kv); got != tt.wantStore {
					t.Errorf("store %s, want %s", got, tt.wantStore)
				}
			})
		}
	}
}

// TestGlobalApplyRecordsSkipsNullKeys checks that a global table ignores records without a
// key, wherever they sit in a run, and records of topics it does not read.
func TestGlobalApplyRecordsSkipsNullKeys(t *testing.T) {
	tp := NewTopology()
	GlobalTableFrom(tp, "g", "gs", String(), String())
	gs := newGlobalStores(tp)
	nullKey := func(off int64) *kgo.Record { return &kgo.Record{Topic: "g", Offset: off, Value: []byte("v")} }
	gs.applyRecords("g", []*kgo.Record{changelogRec(0, "a", "1"), nullKey(1), changelogRec(2, "b", "2"), nullKey(3)})
	gs.applyRecords("g", []*kgo.Record{nullKey(4)})
	gs.applyRecords("g", []*kgo.Record{changelogRec(5, "a", "<nil>")})
	gs.applyRecords("other", []*kgo.Record{changelogRec(6, "c", "3")})
	if got, want := rawDump(gs.byStore["gs"].kv), `"b"="2"`; got != want {
		t.Errorf("global store %s, want %s", got, want)
	}
}

// BenchmarkRestorePebble restores changelog runs of 500 records with ~100 B values into a
// Pebble store, record by record (one Pebble write each) and as batches (restoreRecords).
func BenchmarkRestorePebble(bm *testing.B) {
	value := []byte(strings.Repeat("v", 100))
	run := make([]*kgo.Record, 500)
	var size int64
	for i := range run {
		run[i] = changelogRec(int64(i), fmt.Sprintf("key-%d", i*7919%10000), "")
		run[i].Value = value
		size += int64(len(run[i].Key) + len(value))
	}
	for _, mode := range []string{"record-by-record", "batched"} {
		bm.Run(mode, func(bm *testing.B) {
			kv, err := openPebbleKV(filepath.Join(bm.TempDir(), "store"), slog.Default())
			if err != nil {
				bm.Fatal(err)
			}
			defer func() { _ = kv.close() }()
			si := &storeInst{spec: &storeSpec{name: "s"}, kv: kv}
			bm.SetBytes(size)
			for bm.Loop() {
				if mode == "batched" {
					si.restoreRecords(run)
					continue
				}
				for _, r := range run {
					si.restore(r.Key, r.Value)
				}
			}
			if err := si.kv.err(); err != nil {
				bm.Fatal(err)
			}
		})
	}
}
