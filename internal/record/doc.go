// Package record validates, patches, decodes and builds Kafka record batches
// (message format v2, "magic 2").
//
// The broker stores produce batches byte for byte as the producer sent them.
// This package is the only place that understands their layout:
//
//   - Validate walks a produce payload and checks everything Poste relies on
//     before the bytes reach the log (framing, CRC32C, counts, timestamps,
//     and, for uncompressed batches, every record). It never decompresses,
//     except to check keys for compacted topics, and it does not allocate for
//     uncompressed payloads.
//   - SetBaseOffset, SetPartitionLeaderEpoch and SetLogAppendTime patch the
//     fields the broker owns, in place.
//   - Records, Build, Compress and Decompress decode and encode whole batches
//     for compaction, control batches, timestamp lookups and tests.
//
// Everything here is a pure function of its arguments (plus pools of codec
// state that are invisible to callers) and is safe for concurrent use.
//
// Byte layout of a v2 batch header (big endian), offsets in bytes:
//
//	 0 BaseOffset int64          27 FirstTimestamp int64
//	 8 BatchLength int32         35 MaxTimestamp int64
//	12 PartitionLeaderEpoch i32  43 ProducerID int64
//	16 Magic int8                51 ProducerEpoch int16
//	17 CRC uint32                53 BaseSequence int32
//	21 Attributes int16          57 NumRecords int32
//	23 LastOffsetDelta int32     61 records…
//
// BatchLength counts the bytes after itself, so a batch occupies
// BatchLength+12 bytes. The CRC32C (Castagnoli) covers Attributes through the
// end of the batch; BaseOffset, BatchLength and PartitionLeaderEpoch are
// outside it, which is why the broker can assign offsets and epochs without
// touching the CRC.
package record
