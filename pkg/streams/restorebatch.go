package streams

import (
	"encoding/binary"

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
	if db, in := onPebble(s.kv); db != nil {
		size := 0
		for _, r := range recs {
			size += batchEntrySize(len(r.Key), len(r.Value))
		}
		db.applyBatch(len(recs), size, in, func(i int) ([]byte, []byte, bool) {
			return recs[i].Key, recs[i].Value, recs[i].Attrs.IsControl()
		})
		return
	}
	kv := s.kv
	if lk, ok := kv.(*lockedKV); ok {
		lk.mu.Lock()
		defer lk.mu.Unlock()
		kv = lk.mu.kv
	}
	for _, r := range recs {
		if !r.Attrs.IsControl() {
			restoreOne(kv, r.Key, r.Value)
		}
	}
}

// batchEntrySize bounds what one write takes in a Pebble batch: its kind, the key and value
// lengths as varints, the key (with suffixKV's 4-byte prefix) and the value.
func batchEntrySize(k, v int) int { return 1 + 2*binary.MaxVarintLen32 + 4 + k + v }

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
