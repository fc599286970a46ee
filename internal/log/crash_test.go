package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// TestCrashKeepsSyncedBatches is a randomized property test: random appends,
// syncs, rolls and truncations, then a power loss at a random point (part of
// the unsynced bytes may survive), then reopen. Every batch covered by a
// returned Sync must be there; what is there must be exactly a prefix of
// what was appended, whole batches only; the log must go on working and
// survive further crashes.
func TestCrashKeepsSyncedBatches(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	rounds := 150
	if testing.Short() {
		rounds = 30
	}
	for round := range rounds {
		fs := vfs.NewMem()
		o := Options{
			SegmentBytes:       int64(300 + rng.Intn(3000)),
			IndexIntervalBytes: 1 + rng.Intn(400),
			SegmentIndexBytes:  24 + rng.Intn(200),
		}
		var m model
		for gen := range 3 {
			l, err := Open(testDir, Options{FS: fs, SegmentBytes: o.SegmentBytes,
				IndexIntervalBytes: o.IndexIntervalBytes, SegmentIndexBytes: o.SegmentIndexBytes})
			if err != nil {
				t.Fatalf("round %d gen %d: Open: %v", round, gen, err)
			}
			if gen > 0 {
				m = checkAfterCrash(t, l, m, round)
			}
			durable := l.EndOffset() // recovery synced what it kept
			for range 20 + rng.Intn(80) {
				switch r := rng.Intn(20); {
				case r < 14:
					var payload []byte
					for range 1 + rng.Intn(3) {
						b := makeBatch(t, l.EndOffset()+offsetsIn(payload), randSpec(rng))
						payload = append(payload, b...)
					}
					if rng.Intn(2) == 0 {
						must(t, l.Append(payload))
					} else {
						must(t, l.AppendDirect(payload)) // may leave zeros after it
					}
					for pos := 0; pos < len(payload); {
						h, _ := record.ParseHeader(payload[pos:])
						m.add(payload[pos : pos+h.Size()])
						pos += h.Size()
					}
				case r < 18:
					d, err := l.Sync()
					must(t, err)
					if d != m.end {
						t.Fatalf("Sync returned %d, end is %d", d, m.end)
					}
					durable = d
				case r < 19 && len(m.bases) > 0:
					to := m.bases[rng.Intn(len(m.bases))] + rng.Int63n(2)
					must(t, l.Truncate(to))
					m.truncate(to)
					durable = m.end // Truncate syncs
				default:
					must(t, l.MaybeRoll())
				}
			}
			fs = fs.CrashClone(vfs.KeepRandomUnsyncedTail(rng))
			m.start = durable // reused as "durable end" for the check
		}
	}
}

// offsetsIn counts the offsets of the batches in payload.
func offsetsIn(payload []byte) int64 {
	var n int64
	for pos := 0; pos < len(payload); {
		h, _ := record.ParseHeader(payload[pos:])
		n += int64(h.LastOffsetDelta) + 1
		pos += h.Size()
	}
	return n
}

// checkAfterCrash checks a reopened log against the model whose m.start
// holds the durable end offset, and returns the model of what survived.
func checkAfterCrash(t *testing.T, l *Log, m model, round int) model {
	t.Helper()
	durable := m.start
	got := readAllLog(t, l, 1<<20)
	if err := verifyBatches(got); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	all := m.bytes()
	if !bytes.HasPrefix(all, got) {
		t.Fatalf("round %d: recovered log (%d bytes) is not a prefix of what was appended (%d bytes, common %d)",
			round, len(got), len(all), commonPrefix(got, all))
	}
	if l.EndOffset() < durable {
		t.Fatalf("round %d: recovered end %d below the durable end %d", round, l.EndOffset(), durable)
	}
	// Keep the model's batches that survived.
	var kept model
	size := 0
	for _, b := range m.batches {
		if size+len(b) > len(got) {
			break
		}
		kept.add(b)
		size += len(b)
	}
	if size != len(got) {
		t.Fatalf("round %d: recovered log ends inside a batch", round)
	}
	if kept.end != l.EndOffset() && len(kept.batches) > 0 {
		t.Fatalf("round %d: EndOffset %d, batches end at %d", round, l.EndOffset(), kept.end)
	}
	return kept
}

// storageCase is one fault of TestStorageErrors.
type storageCase struct {
	name  string
	inj   func() vfs.Injector
	errno error // the errno the failing operation carries
}

func TestStorageErrors(t *testing.T) {
	tests := []storageCase{
		{name: "disk full at once", inj: func() vfs.Injector { return vfs.FailWritesAfter(0, syscall.ENOSPC) }, errno: syscall.ENOSPC},
		{name: "fsync fails", inj: func() vfs.Injector { return vfs.FailNext(syscall.EIO, vfs.OpSync) }, errno: syscall.EIO},
		{name: "dir sync fails", inj: func() vfs.Injector { return vfs.FailNext(syscall.EIO, vfs.OpSyncDir) }, errno: syscall.EIO},
		{name: "segment create fails", inj: func() vfs.Injector { return vfs.FailNext(syscall.EMFILE, vfs.OpCreate) }, errno: syscall.EMFILE},
	}
	// The disk fills up after every possible number of bytes, through data,
	// index and new segment writes.
	for n := int64(0); n < 6000; n += 37 {
		tests = append(tests, storageCase{name: fmt.Sprintf("disk full after %d bytes", n),
			inj: func() vfs.Injector { return vfs.FailWritesAfter(n, syscall.ENOSPC) }, errno: syscall.ENOSPC})
	}
	for _, tc := range tests {
		for budget := 0; budget < 3; budget++ {
			t.Run(tc.name, func(t *testing.T) {
				mem := vfs.NewMem()
				o := Options{SegmentBytes: 1000, IndexIntervalBytes: 100}
				// Create the log first without faults.
				l := openLog(t, mem, o)
				must(t, l.Close())

				var armed atomic.Bool
				inj := tc.inj()
				fs := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op) error {
					if !armed.Load() {
						return nil
					}
					return inj.MaybeError(op)
				}))
				l = openLog(t, fs, o)
				var m model
				rng := rand.New(rand.NewSource(int64(budget)))
				for range 3 + budget*4 {
					appendBatches(t, l, &m, randSpec(rng))
				}
				_, err := l.Sync()
				must(t, err)
				durable := m
				armed.Store(true)

				var failed error
				for i := 0; i < 100 && failed == nil; i++ {
					b := makeBatch(t, l.EndOffset(), randSpec(rng))
					if failed = l.Append(b); failed == nil {
						m.add(b)
						if i%3 == 2 {
							_, failed = l.Sync()
						}
					}
				}
				if failed == nil {
					t.Fatal("no operation failed")
				}
				if !errorsIsAll(failed, ErrStorage, tc.errno) {
					t.Fatalf("error %v does not wrap ErrStorage and %v", failed, tc.errno)
				}
				// The log is failed for good, but still readable.
				if err := l.Append(makeBatch(t, l.EndOffset(), batchSpec{})); !errors.Is(err, ErrStorage) {
					t.Fatalf("Append after failure: %v", err)
				}
				if _, err := l.Sync(); !errors.Is(err, ErrStorage) {
					t.Fatalf("Sync after failure: %v", err)
				}
				armed.Store(false)
				checkLog(t, l, &m)

				// Reopened, with or without a crash, the log is whole batches:
				// at least the synced ones, at most what was appended.
				for _, after := range []*vfs.MemFS{mem.CrashClone(), mem} {
					m2 := m
					m2.start = durable.end
					l2 := openLog(t, after, o)
					checkAfterCrash(t, l2, m2, budget)
					must(t, l2.Close())
				}
				_ = l.Close()
			})
		}
	}
}

// TestConcurrentAppendReadSync runs one appender, one syncer and readers
// together (meant for -race): readers must only ever see whole, valid
// batches at the offsets they asked for, and Sync's durable offsets must
// only grow.
func TestConcurrentAppendReadSync(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{SegmentBytes: 4000, IndexIntervalBytes: 200})
	defer l.Close()
	const batches = 1500
	var done atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}

	wg.Add(1)
	go func() { // syncer
		defer wg.Done()
		last := int64(0)
		for !done.Load() {
			d, err := l.Sync()
			if err != nil {
				report(err)
				return
			}
			if d < last || d > l.EndOffset() {
				report(errors.New("durable offset went backwards or past the end"))
				return
			}
			last = d
		}
	}()
	for r := range 2 {
		wg.Add(1)
		go func() { // reader
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(r)))
			var buf []byte
			for !done.Load() {
				end := l.EndOffset()
				if end == 0 {
					continue
				}
				off := rng.Int63n(end)
				s, err := l.Read(off, end, 1+rng.Intn(3000), true)
				if err != nil {
					report(err)
					return
				}
				if buf, err = s.ReadInto(buf[:0]); err != nil {
					report(err)
					return
				}
				if err := verifyBatches(buf); err != nil {
					report(err)
					return
				}
				h, _ := record.ParseHeader(buf)
				if h.BaseOffset > off || h.LastOffset() < off {
					report(errors.New("read returned the wrong batch"))
					return
				}
				if _, _, _, err := l.OffsetForTimestamp(1000 + rng.Int63n(1000)); err != nil {
					report(err)
					return
				}
			}
		}()
	}

	var m model
	rng := rand.New(rand.NewSource(9))
	for range batches {
		appendBatches(t, l, &m, randSpec(rng))
	}
	done.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	checkLog(t, l, &m)
}
