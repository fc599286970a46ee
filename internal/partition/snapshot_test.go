package partition

import (
	"bytes"
	"errors"
	"math/rand"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

const testDir = "/data/t-0"

// partState is what a reopen must restore, normalised for comparison. Producers' last
// timestamps are left out: a live append stamps the wall clock, a replay the batch's time.
type partState struct {
	Producers map[int64]producerEntry
	Ongoing   map[int64]int64
	Aborted   []AbortedTxn
	Epochs    []EpochEntry
	LSO       int64
}

func stateOf(p *Partition) partState {
	lso := p.LastStableOffset()
	aborted := p.AbortedTxns(0, p.LogEndOffset())
	p.mu.Lock()
	defer p.mu.Unlock()
	s := partState{Producers: map[int64]producerEntry{}, Ongoing: map[int64]int64{}, Aborted: aborted,
		Epochs: slices.Clone(p.mu.epochs), LSO: lso}
	for id, pe := range p.mu.producers {
		e := *pe
		e.lastTs = 0
		e.batches = slices.Clone(pe.batches)
		if len(e.batches) == 0 {
			e.batches = nil
		}
		s.Producers[id] = e
	}
	for id, f := range p.mu.ongoing {
		s.Ongoing[id] = f
	}
	return s
}

// snapshotFiles lists the snapshot offsets in the partition directory.
func snapshotFiles(t *testing.T, fs vfs.FS) []int64 {
	t.Helper()
	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, n := range names {
		if off, ok := parseSnapshotName(n); ok {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs
}

func removeSnapshots(t *testing.T, fs vfs.FS) {
	t.Helper()
	for _, off := range snapshotFiles(t, fs) {
		if err := fs.Remove(filepath.Join(testDir, SnapshotName(off))); err != nil {
			t.Fatal(err)
		}
	}
}

func smallSegments(fs vfs.FS) Config {
	cfg := testConfig(fs)
	cfg.Log.SegmentBytes = 2048
	return cfg
}

// workload appends a seeded random mix of plain, idempotent and transactional batches and
// markers (some bumping the epoch, as a coordinator's timeout abort does) and returns the
// number of batches appended.
func workload(t *testing.T, p *Partition, seed int64, steps int) int {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	type prod struct {
		epoch int16
		seq   int32
		open  bool
	}
	prods := map[int64]*prod{1: {}, 2: {}, 3: {}, 4: {}, 5: {}}
	n := 0
	for range steps {
		pid := int64(rng.Intn(6)) // 0 means a plain batch
		recs := 1 + rng.Intn(4)
		var err error
		switch {
		case pid == 0:
			_, err = p.Append(batch(t, recs, -1, 0, 0))
		case pid <= 2: // idempotent only
			pr := prods[pid]
			_, err = p.Append(batch(t, recs, pid, pr.epoch, pr.seq))
			pr.seq += int32(recs)
		default: // transactional
			pr := prods[pid]
			if pr.open && rng.Intn(3) == 0 {
				epoch := pr.epoch
				if rng.Intn(4) == 0 {
					epoch++ // an abort with a bumped epoch fences the producer
				}
				commit := epoch == pr.epoch && rng.Intn(2) == 0
				_, err = p.AppendMarker(pid, epoch, commit, int32(rng.Intn(3)))
				if epoch != pr.epoch {
					pr.epoch, pr.seq = epoch, 0
				}
				pr.open = false
			} else {
				_, err = p.Append(txnBatch(t, recs, pid, pr.epoch, pr.seq))
				pr.seq += int32(recs)
				pr.open = true
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	commitAll(t, p)
	return n
}

// openFS opens the partition on fs (closed at the end of the test).
func openFS(t *testing.T, fs vfs.FS) *Partition {
	t.Helper()
	return open(t, fs, smallSegments(fs))
}

// TestSnapshotReopenMatchesFullScan: after many rolls and a crash, a reopen from the
// snapshots gives the same producer state, transactions, aborted index and leader epochs as a
// reopen from a full scan and as the live partition had, while scanning only the batches
// after the newest snapshot.
func TestSnapshotReopenMatchesFullScan(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		fs := vfs.NewMem()
		p := openFS(t, fs)
		total := workload(t, p, seed, 400)
		live := stateOf(p)
		if p.log.NumSegments() < 10 {
			t.Fatalf("seed %d: only %d segments; the test needs many rolls", seed, p.log.NumSegments())
		}
		crashed := fs.CrashClone()
		if got := snapshotFiles(t, fs); len(got) != maxSnapshots {
			t.Fatalf("seed %d: snapshots %v, want %d", seed, got, maxSnapshots)
		}
		p.Close()

		// Removals of old snapshots are not synced: a crash may bring one back.
		snaps := snapshotFiles(t, crashed)
		scan := crashed.CrashClone()
		removeSnapshots(t, scan)

		fromSnap := openFS(t, crashed)
		fromScan := openFS(t, scan)
		if got := stateOf(fromSnap); !reflect.DeepEqual(got, live) {
			t.Fatalf("seed %d: state from snapshot\n%+v\nlive\n%+v", seed, got, live)
		}
		if got := stateOf(fromScan); !reflect.DeepEqual(got, live) {
			t.Fatalf("seed %d: state from full scan\n%+v\nlive\n%+v", seed, got, live)
		}
		if len(live.Aborted) == 0 || len(live.Producers) < 4 {
			t.Fatalf("seed %d: weak workload: %d aborted, %d producers", seed, len(live.Aborted), len(live.Producers))
		}
		// Only the batches from the newest snapshot on are scanned.
		want := 0
		if err := fromSnap.log.ScanHeaders(snaps[len(snaps)-1], func(h record.Header) { want++ }); err != nil {
			t.Fatal(err)
		}
		if fromSnap.scannedAtOpen != want || fromScan.scannedAtOpen != total {
			t.Fatalf("seed %d: scanned %d from snapshot (want %d), %d in full (want %d)",
				seed, fromSnap.scannedAtOpen, want, fromScan.scannedAtOpen, total)
		}

		// A clean close snapshots the log end: the next open scans nothing.
		fromSnap.Close()
		again := openFS(t, crashed)
		if again.scannedAtOpen != 0 {
			t.Fatalf("seed %d: scanned %d batches after a clean close", seed, again.scannedAtOpen)
		}
		if got := stateOf(again); !reflect.DeepEqual(got, live) {
			t.Fatalf("seed %d: state after clean close differs", seed)
		}
	}
}

// TestSnapshotRetriesDeduplicateAfterRestart: a producer retrying batches it sent before a
// crash (some before the newest snapshot, some after) gets its original offsets.
func TestSnapshotRetriesDeduplicateAfterRestart(t *testing.T) {
	fs := vfs.NewMem()
	p := openFS(t, fs)
	var sent [][]byte
	var offs []int64
	seq := int32(0)
	for p.log.NumSegments() < 4 {
		b := batch(t, 20, 7, 0, seq)
		res, err := p.Append(slices.Clone(b))
		if err != nil {
			t.Fatal(err)
		}
		sent, offs = append(sent, b), append(offs, res.BaseOffset)
		seq += 20
	}
	// Two more batches after the roll, so the last five straddle the snapshot.
	for range 2 {
		b := batch(t, 20, 7, 0, seq)
		res, err := p.Append(slices.Clone(b))
		if err != nil {
			t.Fatal(err)
		}
		sent, offs = append(sent, b), append(offs, res.BaseOffset)
		seq += 20
	}
	commitAll(t, p)
	crashed := fs.CrashClone()
	p.Close()
	snaps := snapshotFiles(t, crashed)
	if snaps[len(snaps)-1] <= offs[len(offs)-5] || snaps[len(snaps)-1] > offs[len(offs)-1] {
		t.Fatalf("snapshot at %d does not split the last five batches %v", snaps[len(snaps)-1], offs[len(offs)-5:])
	}

	p = openFS(t, crashed)
	for i := len(sent) - 5; i < len(sent); i++ {
		res, err := p.Append(slices.Clone(sent[i]))
		if err != nil || !res.Duplicate || res.BaseOffset != offs[i] {
			t.Fatalf("retry of batch %d: %+v, %v; want duplicate at %d", i, res, err, offs[i])
		}
	}
	if _, err := p.Append(batch(t, 1, 7, 0, seq+1)); !errors.Is(err, ErrOutOfOrderSeq) {
		t.Fatalf("gap after restart: %v", err)
	}
	if res, err := p.Append(batch(t, 1, 7, 0, seq)); err != nil || res.Duplicate {
		t.Fatalf("next batch after restart: %+v, %v", res, err)
	}
}

// TestSnapshotDamageFallsBack: a torn newest snapshot, or snapshots that a crash left past
// the recovered log end, are discarded; the state still matches a full scan.
func TestSnapshotDamageFallsBack(t *testing.T) {
	build := func(t *testing.T, cfg func(vfs.FS) Config) (*vfs.MemFS, partState) {
		fs := vfs.NewMem()
		p := open(t, fs, cfg(fs))
		workload(t, p, 9, 300)
		st := stateOf(p)
		crashed := fs.CrashClone()
		p.Close()
		return crashed, st
	}
	edit := func(t *testing.T, fs vfs.FS, off int64, f func([]byte) []byte) {
		name := filepath.Join(testDir, SnapshotName(off))
		b, err := readAll(fs, name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f(b))
		w.Sync()
		w.Close()
	}
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, fs vfs.FS, snaps []int64)
		wantScanAt func(snaps []int64) int64 // where the scan starts: a snapshot offset, or 0
	}{
		{"torn newest", func(t *testing.T, fs vfs.FS, snaps []int64) {
			edit(t, fs, snaps[len(snaps)-1], func(b []byte) []byte { return b[:len(b)/2] })
		}, func(snaps []int64) int64 { return snaps[len(snaps)-2] }},
		{"flipped bit in newest", func(t *testing.T, fs vfs.FS, snaps []int64) {
			edit(t, fs, snaps[len(snaps)-1], func(b []byte) []byte { b[len(b)-3] ^= 1; return b })
		}, func(snaps []int64) int64 { return snaps[len(snaps)-2] }},
		{"all empty", func(t *testing.T, fs vfs.FS, snaps []int64) {
			for _, off := range snaps {
				edit(t, fs, off, func([]byte) []byte { return nil })
			}
		}, func([]int64) int64 { return 0 }},
		{"leftover temporary file", func(t *testing.T, fs vfs.FS, snaps []int64) {
			f, _ := fs.Create(filepath.Join(testDir, SnapshotName(snaps[len(snaps)-1]+1)+".tmp"))
			f.Write([]byte("partial"))
			f.Close()
		}, func(snaps []int64) int64 { return snaps[len(snaps)-1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, live := build(t, smallSegments)
			snaps := snapshotFiles(t, fs)
			tc.damage(t, fs, snaps)
			p := openFS(t, fs)
			if got := stateOf(p); !reflect.DeepEqual(got, live) {
				t.Fatalf("state\n%+v\nwant\n%+v", got, live)
			}
			want := 0
			p.log.ScanHeaders(tc.wantScanAt(snaps), func(record.Header) { want++ })
			if p.scannedAtOpen != want {
				t.Fatalf("scanned %d batches, want %d", p.scannedAtOpen, want)
			}
			names, _ := fs.List(testDir)
			for _, n := range names {
				if strings.HasSuffix(n, ".tmp") {
					t.Fatalf("leftover %s", n)
				}
			}
		})
	}

	// A damaged sealed segment makes recovery cut the log below the snapshots: they must go
	// (durably, before the log grows past them again) and the state is the full scan's.
	t.Run("snapshots past the recovered end", func(t *testing.T) {
		fs, _ := build(t, smallSegments)
		snaps := snapshotFiles(t, fs)
		names, _ := fs.List(testDir)
		var logs []string
		for _, n := range names {
			if strings.HasSuffix(n, ".log") {
				logs = append(logs, n)
			}
		}
		slices.Sort(logs)
		seg := filepath.Join(testDir, logs[len(logs)/2])
		b, err := readAll(fs, seg)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-5] ^= 0xff // the last batch's CRC no longer matches
		w, _ := fs.Create(seg)
		w.Write(b)
		w.Sync()
		w.Close()

		scan := fs.CrashClone()
		removeSnapshots(t, scan)
		ref := openFS(t, scan)
		end := ref.LogEndOffset()
		if snaps[0] <= end {
			t.Fatalf("log cut at %d, not below the snapshots %v; the case tests nothing", end, snaps)
		}
		want := stateOf(ref)
		p := openFS(t, fs)
		if got := stateOf(p); !reflect.DeepEqual(got, want) {
			t.Fatalf("state\n%+v\nwant (full scan)\n%+v", got, want)
		}
		if got := snapshotFiles(t, fs.CrashClone()); len(got) != 0 {
			t.Fatalf("snapshots %v past the end %d survive a crash", got, end)
		}
	})
}

// TestSnapshotsBelowLogStartRemoved: DeleteRecords past the snapshots removes them (their
// successors are gone) and snapshots the log end instead, so producers and open transactions
// below the new start survive a restart.
func TestSnapshotsBelowLogStartRemoved(t *testing.T) {
	fs := vfs.NewMem()
	p := openFS(t, fs)
	workload(t, p, 5, 200)
	snaps := snapshotFiles(t, fs)
	if _, err := p.DeleteRecords(snaps[len(snaps)-1] + 1); err != nil {
		t.Fatal(err)
	}
	if got := snapshotFiles(t, fs); len(got) != 1 || got[0] != p.LogEndOffset() {
		t.Fatalf("snapshots %v after DeleteRecords, want one at the log end %d", got, p.LogEndOffset())
	}
	live := stateOf(p)
	crashed := fs.CrashClone()
	p.Close()
	p = openFS(t, crashed)
	if got := stateOf(p); !reflect.DeepEqual(got, live) {
		t.Fatalf("after DeleteRecords and reopen:\n%+v\nwant\n%+v", got, live)
	}
}

func TestSnapshotEncoding(t *testing.T) {
	s := &producerSnapshot{
		Offset: 1000,
		Producers: []snapProducer{
			{ID: 1, Epoch: 3, CoordEpoch: -1, LastTs: 12345, Batches: []batchMeta{{0, 4, 10, 14, -1}, {5, 5, 20, 20, 99}}},
			{ID: 9, Epoch: 0, CoordEpoch: 7, LastTs: 1, Batches: []batchMeta{}},
		},
		Ongoing: []snapTxn{{ID: 9, First: 500}},
		Aborted: []AbortedTxn{{9, 100, 200}, {1, 150, 300}},
		Epochs:  []EpochEntry{{0, 0}, {4, 700}},
	}
	enc := encodeSnapshot(nil, s)
	got, err := decodeSnapshot(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip\n%+v\nwant\n%+v", got, s)
	}
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }},
		{"bit flip", func(b []byte) []byte { b[20] ^= 0x10; return b }},
		{"version", func(b []byte) []byte { b[1] = 9; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeSnapshot(tc.edit(bytes.Clone(enc))); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("decode: %v, want ErrBadSnapshot", err)
			}
		})
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(nil, &producerSnapshot{Offset: 5, Producers: []snapProducer{{ID: 1, Batches: []batchMeta{{0, 0, 1, 1, -1}}}}}))
	f.Add([]byte{0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if enc := encodeSnapshot(nil, s); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func readAll(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if n, err := f.ReadAt(b, 0); n < len(b) {
		return nil, err
	}
	return b, nil
}
