package streams

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storeConfigs are the kvBytes implementations every store test runs over.
var storeConfigs = []struct {
	name string
	open func(t *testing.T) kvBytes
}{
	{"memory", func(*testing.T) kvBytes { return newMemKV() }},
	{"pebble", func(t *testing.T) kvBytes {
		kv, err := openPebbleKV(filepath.Join(t.TempDir(), "store"), slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kv.close() })
		return kv
	}},
}

// dump renders a scan as "k=v k=v".
func dump(kv kvBytes, from, to []byte) string {
	var parts []string
	kv.scan(from, to, func(k, v []byte) bool {
		parts = append(parts, string(k)+"="+string(v))
		return true
	})
	return strings.Join(parts, " ")
}

func b(s string) []byte {
	if s == "<nil>" {
		return nil
	}
	return []byte(s)
}

func TestKVBytes(t *testing.T) {
	type op struct{ kind, k, v string } // put, del
	tests := []struct {
		name     string
		ops      []op
		from, to string
		want     string
		wantLen  int
	}{
		{"empty", nil, "<nil>", "<nil>", "", 0},
		{"ordered scan", []op{{"put", "b", "2"}, {"put", "a", "1"}, {"put", "c", "3"}}, "<nil>", "<nil>", "a=1 b=2 c=3", 3},
		{"overwrite", []op{{"put", "a", "1"}, {"put", "a", "9"}}, "<nil>", "<nil>", "a=9", 1},
		{"delete", []op{{"put", "a", "1"}, {"put", "b", "2"}, {"del", "a", ""}}, "<nil>", "<nil>", "b=2", 1},
		{"delete missing", []op{{"put", "a", "1"}, {"del", "z", ""}}, "<nil>", "<nil>", "a=1", 1},
		{"inclusive bounds", []op{{"put", "a", "1"}, {"put", "b", "2"}, {"put", "c", "3"}, {"put", "d", "4"}}, "b", "c", "b=2 c=3", 4},
		{"upper bound excludes extensions", []op{{"put", "b", "1"}, {"put", "b\x00", "2"}, {"put", "ba", "3"}}, "a", "b", "b=1", 3},
		{"open lower", []op{{"put", "a", "1"}, {"put", "b", "2"}}, "<nil>", "a", "a=1", 2},
		{"open upper", []op{{"put", "a", "1"}, {"put", "b", "2"}}, "b", "<nil>", "b=2", 2},
		{"empty value is present", []op{{"put", "a", ""}}, "<nil>", "<nil>", "a=", 1},
		{"binary keys", []op{{"put", "\xff\x01", "x"}, {"put", "\x00", "y"}}, "<nil>", "<nil>", "\x00=y \xff\x01=x", 2},
	}
	for _, cfg := range storeConfigs {
		for _, tc := range tests {
			t.Run(cfg.name+"/"+tc.name, func(t *testing.T) {
				kv := cfg.open(t)
				for _, o := range tc.ops {
					if o.kind == "put" {
						kv.put([]byte(o.k), []byte(o.v))
					} else {
						kv.del([]byte(o.k))
					}
				}
				if got := dump(kv, b(tc.from), b(tc.to)); got != tc.want {
					t.Errorf("scan = %q, want %q", got, tc.want)
				}
				if got := kv.len(); got != tc.wantLen {
					t.Errorf("len = %d, want %d", got, tc.wantLen)
				}
				for _, o := range tc.ops {
					v, ok := kv.get([]byte(o.k))
					if strings.Contains(tc.want, o.k+"=") && (!ok || v == nil) {
						t.Errorf("get(%q) = %q, %v; want present", o.k, v, ok)
					}
				}
				if err := kv.err(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestKVBytesScanStopsAndSurvivesWrites(t *testing.T) {
	for _, cfg := range storeConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			kv := cfg.open(t)
			for _, k := range []string{"a", "b", "c", "d"} {
				kv.put([]byte(k), []byte(k))
			}
			var seen []string
			kv.scan(nil, nil, func(k, _ []byte) bool {
				seen = append(seen, string(k))
				kv.del(k) // purges delete while scanning
				return len(seen) < 3
			})
			if got := strings.Join(seen, ","); got != "a,b,c" {
				t.Errorf("scan saw %s, want a,b,c", got)
			}
			if got := dump(kv, nil, nil); got != "d=d" {
				t.Errorf("after deleting during scan: %q", got)
			}
		})
	}
}

func TestPebbleKVPersistsAndWipes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	kv, err := openPebbleKV(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	kv.put([]byte("a"), []byte("1"))
	kv.put([]byte("b"), []byte("2"))
	if err := kv.sync(); err != nil {
		t.Fatal(err)
	}
	if err := kv.close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := kv.get([]byte("a")); ok || !errors.Is(kv.err(), ErrStateStore) {
		t.Errorf("a closed store still reads, or reports no error: %v", kv.err())
	}
	kv, err = openPebbleKV(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer kv.close()
	if got := dump(kv, nil, nil); got != "a=1 b=2" {
		t.Fatalf("after reopen: %q", got)
	}
	if _, err := openPebbleKV(dir, slog.Default()); !errors.Is(err, ErrStateStore) {
		t.Errorf("second open of a locked store: %v, want ErrStateStore", err)
	}
	if err := kv.wipe(slog.Default()); err != nil {
		t.Fatal(err)
	}
	if !kv.empty() || kv.err() != nil {
		t.Errorf("after wipe: %q, err %v", dump(kv, nil, nil), kv.err())
	}
}

// typedStore builds a store instance of kind over kv, unlogged, outside any task.
func typedStore(kv kvBytes, kind storeKind) *storeInst {
	spec := &storeSpec{name: "s", keys: String(), values: Int64(), kind: kind, size: 10}
	switch kind {
	case windowStore:
		kv = &suffixKV{m: kv, suffix: 8}
	case sessionStore:
		kv = &suffixKV{m: kv, suffix: 16}
	}
	return &storeInst{spec: spec, kv: kv}
}

type storeOnly struct{ si *storeInst }

func (s storeOnly) rawStore(string) (*storeInst, error) { return s.si, nil }

func TestWindowStoreOnEveryConfig(t *testing.T) {
	ms := time.UnixMilli
	for _, cfg := range storeConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			ws, err := GetWindowStore[string, int64](storeOnly{typedStore(cfg.open(t), windowStore)}, "s")
			if err != nil {
				t.Fatal(err)
			}
			// "a" is a byte prefix of "ab": their windows must not interleave.
			for _, w := range []struct {
				k     string
				start int64
				v     int64
			}{{"a", 20, 2}, {"ab", 10, 5}, {"a", 0, 1}, {"a", 10, 7}, {"b", 0, 3}} {
				if err := ws.Put(w.k, ms(w.start), w.v); err != nil {
					t.Fatal(err)
				}
			}
			if err := ws.Put("a", ms(10), 8); err != nil { // overwrite
				t.Fatal(err)
			}
			if err := ws.Delete("b", ms(0)); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				k        string
				from, to int64
				want     string
			}{
				{"a", 0, 100, "a[0,10)=1 a[10,20)=8 a[20,30)=2"},
				{"a", 5, 15, "a[10,20)=8"},
				{"a", 10, 10, "a[10,20)=8"},
				{"ab", 0, 100, "ab[10,20)=5"},
				{"b", 0, 100, ""},
				{"a", 30, 100, ""},
			}
			for _, tc := range tests {
				var got []string
				if err := ws.FetchRange(tc.k, ms(tc.from), ms(tc.to), func(w Windowed[string], v int64) bool {
					got = append(got, fmt.Sprintf("%s[%d,%d)=%d", w.Key, w.Start.UnixMilli(), w.End.UnixMilli(), v))
					return true
				}); err != nil {
					t.Fatal(err)
				}
				if g := strings.Join(got, " "); g != tc.want {
					t.Errorf("FetchRange(%s, %d, %d) = %q, want %q", tc.k, tc.from, tc.to, g, tc.want)
				}
			}
			if v, ok, err := ws.Fetch("a", ms(20)); err != nil || !ok || v != 2 {
				t.Errorf("Fetch(a, 20) = %d, %v, %v", v, ok, err)
			}
			if _, ok, _ := ws.Fetch("a", ms(30)); ok {
				t.Error("Fetch of a missing window found one")
			}
			if n := ws.Len(); n != 4 {
				t.Errorf("Len = %d, want 4", n)
			}
		})
	}
}

func TestSessionStoreOnEveryConfig(t *testing.T) {
	ms := time.UnixMilli
	for _, cfg := range storeConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			ss, err := GetSessionStore[string, int64](storeOnly{typedStore(cfg.open(t), sessionStore)}, "s")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				k          string
				start, end int64
				v          int64
			}{{"u", 0, 5, 2}, {"u", 20, 30, 3}, {"u", 50, 50, 1}, {"uv", 0, 100, 9}, {"v", 7, 8, 4}} {
				if err := ss.Put(Windowed[string]{Key: s.k, Start: ms(s.start), End: ms(s.end)}, s.v); err != nil {
					t.Fatal(err)
				}
			}
			if err := ss.Remove(Windowed[string]{Key: "v", Start: ms(7), End: ms(8)}); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				k                        string
				earliestEnd, latestStart int64
				want                     string
			}{
				{"u", 0, math.MaxInt64, "u[0,5]=2 u[20,30]=3 u[50,50]=1"},
				{"u", 6, 40, "u[20,30]=3"},
				{"u", 30, 50, "u[20,30]=3 u[50,50]=1"},
				{"u", 0, 10, "u[0,5]=2"},
				{"uv", 0, math.MaxInt64, "uv[0,100]=9"},
				{"v", 0, math.MaxInt64, ""},
			}
			for _, tc := range tests {
				var got []string
				if err := ss.FindSessions(tc.k, ms(tc.earliestEnd), ms(tc.latestStart), func(w Windowed[string], v int64) bool {
					got = append(got, fmt.Sprintf("%s[%d,%d]=%d", w.Key, w.Start.UnixMilli(), w.End.UnixMilli(), v))
					return true
				}); err != nil {
					t.Fatal(err)
				}
				if g := strings.Join(got, " "); g != tc.want {
					t.Errorf("FindSessions(%s, %d, %d) = %q, want %q", tc.k, tc.earliestEnd, tc.latestStart, g, tc.want)
				}
			}
			if n := ss.Len(); n != 4 {
				t.Errorf("Len = %d, want 4", n)
			}
		})
	}
}

func TestKeyValueStoreOnEveryConfig(t *testing.T) {
	for _, cfg := range storeConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			kv, err := GetKeyValueStore[string, int64](storeOnly{typedStore(cfg.open(t), kvStore)}, "s")
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range []string{"pear", "apple", "fig", "kiwi"} {
				if err := kv.Put(k, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := kv.Delete("kiwi"); err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := kv.Range("b", "g", func(k string, v int64) bool { got = append(got, fmt.Sprint(k, v)); return true }); err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, " "); g != "fig2" {
				t.Errorf("Range(b, g) = %q", g)
			}
			got = nil
			if err := kv.All(func(k string, v int64) bool { got = append(got, fmt.Sprint(k, v)); return true }); err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, " "); g != "apple1 fig2 pear0" {
				t.Errorf("All = %q", g)
			}
			if v, ok, err := kv.Get("pear"); v != 0 || !ok || err != nil {
				t.Errorf("Get(pear) = %d %v %v", v, ok, err)
			}
			if _, ok, _ := kv.Get("kiwi"); ok {
				t.Error("deleted key found")
			}
		})
	}
}

func TestCheckpointFile(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[string]int64
		wantErr bool
	}{
		{"round trip", string(formatCheckpoint(map[string]int64{"counts": 42, "b-store": 0})), map[string]int64{"counts": 42, "b-store": 0}, false},
		{"empty", checkpointHeader + "\n", map[string]int64{}, false},
		{"no header", "42 counts\n", nil, true},
		{"other version", "poste-streams-checkpoint 2\n", nil, true},
		{"negative", checkpointHeader + "\n-1 counts\n", nil, true},
		{"no store", checkpointHeader + "\n42\n", nil, true},
		{"garbage", checkpointHeader + "\nxx counts\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCheckpoint([]byte(tc.text))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStateDirCheckpointLifecycle(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(fmt.Sprint("eos=", eos), func(t *testing.T) {
			d := newStateDir(t.TempDir(), "app", eos, InMemory, slog.Default())
			id := TaskID{1, 3}
			if ck, err := d.openTask(id); err != nil || len(ck) != 0 {
				t.Fatalf("first open: %v %v", ck, err)
			}
			if err := d.writeCheckpoint(id, map[string]int64{"s": 7}); err != nil {
				t.Fatal(err)
			}
			ck, err := d.openTask(id)
			if err != nil || ck["s"] != 7 {
				t.Fatalf("reopen: %v %v", ck, err)
			}
			// exactly_once_v2 deletes the checkpoint on open, so a crash leaves none.
			ck, err = d.openTask(id)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := ck["s"]; ok == eos {
				t.Errorf("checkpoint after a second open: %v (eos=%v)", ck, eos)
			}
			if got := filepath.Base(d.taskDir(id)); got != "1_3" {
				t.Errorf("task dir %q", got)
			}
		})
	}
}

func TestStoreTypeSelection(t *testing.T) {
	spec := func(typ StoreType) *storeSpec { return &storeSpec{typ: typ} }
	tests := []struct {
		def  StoreType
		spec *storeSpec
		want bool
	}{
		{InMemory, spec(DefaultStore), false},
		{Persistent, spec(DefaultStore), true},
		{InMemory, spec(Persistent), true},
		{Persistent, spec(InMemory), false},
		{Persistent, &storeSpec{typ: DefaultStore, global: true}, false},
	}
	for _, tc := range tests {
		d := &stateDir{defaultType: tc.def}
		if got := d.persistent(tc.spec); got != tc.want {
			t.Errorf("default %v, store %v (global %v): persistent = %v", tc.def, tc.spec.typ, tc.spec.global, got)
		}
	}
	var none *stateDir
	if none.persistent(spec(Persistent)) {
		t.Error("without a state dir every store must be in memory")
	}
	tp := NewTopology()
	From(tp, "in", String(), String()).GroupByKey().Count("c")
	tp.SetStoreType("c", Persistent)
	if tp.stores["c"].typ != Persistent || tp.Validate() != nil {
		t.Errorf("SetStoreType: %v %v", tp.stores["c"].typ, tp.Validate())
	}
	tp.SetStoreType("missing", Persistent)
	if !errors.Is(tp.Validate(), ErrTopology) {
		t.Error("SetStoreType on an unknown store must fail the topology")
	}
}

func TestKeyPartitionIsStable(t *testing.T) {
	// Every key lands in range, and the same key always on the same partition.
	for n := 1; n <= 12; n++ {
		for i := range 100 {
			k := []byte(fmt.Sprint("key-", i))
			p := keyPartition(k, n)
			if p < 0 || p >= n || p != keyPartition(k, n) {
				t.Fatalf("keyPartition(%s, %d) = %d", k, n, p)
			}
		}
	}
}
