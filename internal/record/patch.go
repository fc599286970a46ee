package record

import "encoding/binary"

// The setters below patch the fields the broker owns, in place. batch must
// start with one whole batch that passed Validate (or VerifyCRC); it may
// continue past it. They panic on a slice shorter than the batch, which is a
// caller bug, not a data error.

// SetBaseOffset writes the batch's base offset. The CRC does not cover it.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch writes the leader epoch that appended the batch.
// The CRC does not cover it.
func SetPartitionLeaderEpoch(batch []byte, e int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(e))
}

// SetLogAppendTime marks the batch as LogAppendTime and writes ts as its
// MaxTimestamp, then recomputes the CRC. As in Kafka, FirstTimestamp and the
// records' deltas are left alone: readers of a LogAppendTime batch take
// MaxTimestamp as the timestamp of every record in it.
func SetLogAppendTime(batch []byte, ts int64) {
	size := int(int32(binary.BigEndian.Uint32(batch[offBatchLength:]))) + lengthOverhead
	b := batch[:size]
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | attrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], computeCRC(b))
}
