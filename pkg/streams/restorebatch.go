package streams

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreRecords applies a run of one changelog partition's records to the store, in offset
// order, with the meaning restore gives each record: a nil value deletes its key, and
// control records (transaction markers) are skipped. It writes nothing to the changelog and
// leaves the store's position to the caller.
//
// A Pebble store (alone, or under a window or session store's suffixKV) takes the whole run
// as one batch: per record, a Pebble write costs a commit-pipeline pass and a write-ahead
// log append, which bounded restores to about a million records a second. A global store
// takes its write lock once for the run. Any other store is written record by record.
// Failures are sticky in the store (kv.err), as with restore. Called from the goroutine that
// owns the store's writes: the restoring goroutine, the standby goroutine or the global
// reader.
func (s *storeInst) restoreRecords(recs []*kgo.Record) {
	switch kv := s.kv.(type) {
	case *pebbleKV:
		kv.restoreBatch(recs, nil)
		return
	case *suffixKV:
		if db, ok := kv.m.(*pebbleKV); ok {
			db.restoreBatch(recs, kv.in)
			return
		}
	case *lockedKV:
		kv.mu.Lock()
		defer kv.mu.Unlock()
		for _, r := range recs {
			if !r.Attrs.IsControl() {
				restoreOne(kv.mu.kv, r.Key, r.Value)
			}
		}
		return
	}
	for _, r := range recs {
		if !r.Attrs.IsControl() {
			s.restore(r.Key, r.Value)
		}
	}
}

// restoreBatch writes recs as one batch, each key mapped through in when it is not nil.
func (s *pebbleKV) restoreBatch(recs []*kgo.Record, in func([]byte) []byte) {
	size := 0
	for _, r := range recs {
		// A batch entry: its kind, the key and value lengths as varints, the key (with
		// suffixKV's 4-byte prefix) and the value.
		size += 1 + 2*binary.MaxVarintLen32 + 4 + len(r.Key) + len(r.Value)
	}
	s.writeBatch(size, func(b *pebble.Batch) error {
		for _, r := range recs {
			if r.Attrs.IsControl() {
				continue
			}
			k := r.Key
			if in != nil {
				k = in(k)
			}
			var err error
			if r.Value == nil {
				err = b.Delete(k, nil)
			} else {
				err = b.Set(k, r.Value, nil)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// restoreOne applies one changelog record to kv (nil value deletes).
func restoreOne(kv kvBytes, k, v []byte) {
	if v == nil {
		kv.del(k)
	} else {
		kv.put(k, v)
	}
}

// dataRecords counts the records of recs that are not control records.
func dataRecords(recs []*kgo.Record) int64 {
	var n int64
	for _, r := range recs {
		if !r.Attrs.IsControl() {
			n++
		}
	}
	return n
}
