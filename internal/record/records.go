package record

import (
	"encoding/binary"
	"fmt"
)

// RecordHeader is one header of a record. Kafka header keys are never null.
type RecordHeader struct {
	Key   string
	Value []byte // nil = null
}

// Record is one decoded record of a batch, a plain value. Its offset is the
// batch's BaseOffset + OffsetDelta and its CreateTime timestamp
// FirstTimestamp + TimestampDelta. Records decodes byte slices that alias
// their source, so a Record is only as immutable as the batch it came from.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte // nil = null; non-nil and empty = empty
	Headers        []RecordHeader
}

// minRecordSize is the smallest encoded record: length, attributes,
// timestamp delta, offset delta, key, value and header count, one byte each.
const minRecordSize = 7

// Records decodes every record of the batch at the front of batch,
// decompressing if needed with at most maxDecompressed bytes of output
// (<= 0 selects DefaultMaxDecompressedBytes; more is ErrTooLarge).
//
// It checks framing and record structure but not the CRC (see VerifyCRC):
// it serves the log, which validated its batches on the way in. Key, Value
// and header values alias batch for uncompressed batches and a fresh buffer
// otherwise; copy them to keep them past batch's lifetime. A batch whose
// records do not parse, or do not number exactly NumRecords, is
// ErrInvalidRecord; a short batch is ErrCorrupt.
func Records(batch []byte, maxDecompressed int) ([]Record, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return nil, err
	}
	if h.BatchLength < minBatchLength || int64(h.BatchLength)+lengthOverhead > int64(len(batch)) {
		return nil, fmt.Errorf("%w: batch length %d, %d bytes", ErrCorrupt, h.BatchLength, len(batch))
	}
	if h.Magic != 2 {
		return nil, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, h.Magic)
	}
	if h.NumRecords < 0 {
		return nil, fmt.Errorf("%w: %d records", ErrInvalidRecord, h.NumRecords)
	}
	b := batch[HeaderSize:h.Size()]
	if c := h.Compression(); c != None {
		if b, err = Decompress(nil, c, b, maxDecompressed); err != nil {
			return nil, err
		}
	}
	// Bound the allocation by what the bytes can hold, not by the claim.
	recs := make([]Record, 0, min(int(h.NumRecords), len(b)/minRecordSize))
	var r rawRecord
	for i := int32(0); i < h.NumRecords; i++ {
		n := nextRecord(b, &r)
		if n == 0 {
			return nil, fmt.Errorf("%w: record %d malformed", ErrInvalidRecord, i)
		}
		b = b[n:]
		rec := Record{
			Attributes:     r.attributes,
			TimestampDelta: r.timestampDelta,
			OffsetDelta:    r.offsetDelta,
			Key:            r.key,
			Value:          r.value,
		}
		if r.numHeaders > 0 {
			rec.Headers = make([]RecordHeader, 0, r.numHeaders)
			hb := r.headers
			for j := int32(0); j < r.numHeaders; j++ {
				k, n := readBytes(hb) // bounds were checked by nextRecord
				hb = hb[n:]
				v, n := readBytes(hb)
				hb = hb[n:]
				rec.Headers = append(rec.Headers, RecordHeader{Key: string(k), Value: v})
			}
		}
		recs = append(recs, rec)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrInvalidRecord, len(b))
	}
	return recs, nil
}

// Build appends one encoded v2 batch to dst. From h it takes BaseOffset,
// PartitionLeaderEpoch, Attributes (codec included), FirstTimestamp,
// MaxTimestamp, ProducerID, ProducerEpoch and BaseSequence; it sets Magic to
// 2 and computes BatchLength, NumRecords (len(recs)), the CRC and
// LastOffsetDelta: the larger of h.LastOffsetDelta and the last record's
// OffsetDelta, so a compacted batch keeps its original offset range while
// callers that number records 0..n-1 need not set it. Records are written
// with their own OffsetDelta and TimestampDelta. The records section is
// compressed with the header's codec (ErrUnsupportedCompression for 5..7).
func Build(dst []byte, h Header, recs []Record) ([]byte, error) {
	c := h.Compression()
	if c > Zstd {
		return dst, ErrUnsupportedCompression
	}
	start := len(dst)
	h.Magic = 2
	h.NumRecords = int32(len(recs))
	if n := len(recs); n > 0 && recs[n-1].OffsetDelta > h.LastOffsetDelta {
		h.LastOffsetDelta = recs[n-1].OffsetDelta
	}
	h.BatchLength, h.CRC = 0, 0
	dst = appendHeader(dst, &h)
	if c == None {
		for i := range recs {
			dst = appendRecord(dst, &recs[i])
		}
	} else {
		bp := scratch.Get().(*[]byte)
		plain := (*bp)[:0]
		for i := range recs {
			plain = appendRecord(plain, &recs[i])
		}
		var err error
		dst, err = Compress(dst, c, plain)
		if cap(plain) <= maxPooledScratch {
			*bp = plain[:0]
		}
		scratch.Put(bp)
		if err != nil {
			return dst[:start], err
		}
	}
	batch := dst[start:]
	binary.BigEndian.PutUint32(batch[offBatchLength:], uint32(len(batch)-lengthOverhead))
	binary.BigEndian.PutUint32(batch[offCRC:], computeCRC(batch))
	return dst, nil
}

// appendRecord encodes one record, length prefix first.
func appendRecord(dst []byte, r *Record) []byte {
	body := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for i := range r.Headers {
		body += varintLen(int64(len(r.Headers[i].Key))) + len(r.Headers[i].Key) + bytesLen(r.Headers[i].Value)
	}
	dst = binary.AppendVarint(dst, int64(body))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(r.Headers[i].Key)))
		dst = append(dst, r.Headers[i].Key...)
		dst = appendBytes(dst, r.Headers[i].Value)
	}
	return dst
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
