package streams

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleKV is the persistent kvBytes: one Pebble database per task and store, in the store's
// directory under state.dir. Writes go to Pebble's write-ahead log without an fsync; sync
// makes them durable, and the task does so before it writes a checkpoint, so a checkpoint
// never claims more than the disk holds. Pebble recovers a prefix of the log after a crash,
// and the changelog's tail after the checkpoint replays the rest.
//
// Same rules as every kvBytes: one writer (the task's goroutine); reads may come from
// another goroutine only while the application's store lock excludes the writer. After the
// first I/O error (err) every operation is a no-op that reads as empty.
type pebbleKV struct {
	db      *pebble.DB
	dir     string
	failure error
}

// openPebbleKV opens (creating if needed) the database in dir.
func openPebbleKV(dir string, log *slog.Logger) (*pebbleKV, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrStateStore, dir, err)
	}
	return &pebbleKV{db: db, dir: dir}, nil
}

func (s *pebbleKV) fail(op string, err error) {
	if s.failure == nil {
		s.failure = fmt.Errorf("%w: %s %s: %w", ErrStateStore, op, s.dir, err)
	}
}

func (s *pebbleKV) get(k []byte) ([]byte, bool) {
	if s.failure != nil {
		return nil, false
	}
	v, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		s.fail("get", err)
		return nil, false
	}
	out := append([]byte{}, v...) // non-nil even when empty: a present value
	_ = c.Close()
	return out, true
}

func (s *pebbleKV) put(k, v []byte) {
	if s.failure == nil {
		if err := s.db.Set(k, v, pebble.NoSync); err != nil {
			s.fail("put", err)
		}
	}
}

func (s *pebbleKV) del(k []byte) {
	if s.failure == nil {
		if err := s.db.Delete(k, pebble.NoSync); err != nil {
			s.fail("delete", err)
		}
	}
}

// writeBatch applies the writes fill makes to one Pebble batch, committed without an fsync:
// one pass through the commit pipeline and one write-ahead log append for all of them, where
// put and del pay one each. This is what makes a changelog restore fast. size estimates the
// batch's bytes (0: unknown), so that it is allocated once rather than grown. The batch
// copies keys and values, so fill may reuse its buffers. A failure is sticky, as for single
// writes.
func (s *pebbleKV) writeBatch(size int, fill func(b *pebble.Batch) error) {
	if s.failure != nil {
		return
	}
	var b *pebble.Batch
	if size > 0 {
		b = s.db.NewBatchWithSize(size)
	} else {
		b = s.db.NewBatch()
	}
	defer func() { _ = b.Close() }()
	if err := fill(b); err != nil {
		s.fail("batch", err)
		return
	}
	if b.Empty() {
		return
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		s.fail("batch", err)
	}
}

// onPebble returns the Pebble database holding kv's entries — kv itself, or the one under
// a window or session store's suffixKV — and how kv's keys map to the database's keys (nil:
// unchanged). nil when kv is not on Pebble.
func onPebble(kv kvBytes) (*pebbleKV, func([]byte) []byte) {
	switch kv := kv.(type) {
	case *pebbleKV:
		return kv, nil
	case *suffixKV:
		if db, ok := kv.m.(*pebbleKV); ok {
			return db, kv.in
		}
	}
	return nil, nil
}

// applyBatch writes n entries as one batch (writeBatch): at(i) gives the i-th key, mapped
// through in when in is not nil, and value (nil: a deletion), or skip.
func (s *pebbleKV) applyBatch(n, size int, in func([]byte) []byte, at func(i int) (k, v []byte, skip bool)) {
	s.writeBatch(size, func(b *pebble.Batch) error {
		for i := range n {
			k, v, skip := at(i)
			if skip {
				continue
			}
			if in != nil {
				k = in(k)
			}
			var err error
			if v == nil {
				err = b.Delete(k, nil)
			} else {
				err = b.Set(k, v, nil)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// scan iterates a consistent view taken when it starts; writes made by fn are not seen. Keys
// and values handed to fn are copies, which callers (and their deserializers) may keep.
func (s *pebbleKV) scan(from, to []byte, fn func(k, v []byte) bool) {
	if s.failure != nil {
		return
	}
	o := &pebble.IterOptions{LowerBound: from}
	if to != nil {
		o.UpperBound = append(append(make([]byte, 0, len(to)+1), to...), 0) // inclusive: to's successor
	}
	it, err := s.db.NewIter(o)
	if err != nil {
		s.fail("scan", err)
		return
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			s.fail("scan", err)
			break
		}
		if !fn(append([]byte(nil), it.Key()...), append([]byte{}, v...)) {
			break
		}
	}
	if err := it.Close(); err != nil {
		s.fail("scan", err)
	}
}

// len counts the entries: O(n) on disk, so only for tests and queries.
func (s *pebbleKV) len() int {
	n := 0
	s.scan(nil, nil, func(_, _ []byte) bool { n++; return true })
	return n
}

func (s *pebbleKV) err() error { return s.failure }

// sync makes every write so far durable (one fsync of the write-ahead log).
func (s *pebbleKV) sync() error {
	if s.failure != nil {
		return s.failure
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		s.fail("sync", err)
	}
	return s.failure
}

// empty reports whether the database holds no key.
func (s *pebbleKV) empty() bool {
	none := true
	s.scan(nil, nil, func(_, _ []byte) bool { none = false; return false })
	return none
}

func (s *pebbleKV) close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if s.failure == nil {
		s.failure = fmt.Errorf("%w: %s is closed", ErrStateStore, s.dir)
	}
	if err != nil {
		return fmt.Errorf("%w: close %s: %w", ErrStateStore, s.dir, err)
	}
	return nil
}

// pebbleLogger routes Pebble's messages to the application's logger: its routine events at
// debug level, its errors as warnings.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(msg) // Pebble expects Fatalf not to return
}
