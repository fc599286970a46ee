package record

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
)

// ValidateConfig holds the topic and broker settings Validate checks against.
// Validate only reads it, so one value may serve concurrent calls. A nil
// *ValidateConfig checks structure only: no size limit, no timestamp bounds,
// no key requirement. In a non-nil one, zero timestamp bounds mean "exactly
// NowMs"; use math.MaxInt64 for no bound.
type ValidateConfig struct {
	// MaxBatchBytes is message.max.bytes: a batch larger than this is
	// ErrTooLarge. <= 0 means unlimited.
	MaxBatchBytes int
	// TimestampType is the topic's message.timestamp.type. Bounds apply only
	// to CreateTime topics; a LogAppendTime topic overwrites the timestamps.
	TimestampType TimestampType
	// NowMs is the broker's clock, injected.
	NowMs int64
	// BeforeMaxMs and AfterMaxMs are message.timestamp.before.max.ms and
	// message.timestamp.after.max.ms (KIP-937): a CreateTime timestamp must
	// lie in [NowMs-BeforeMaxMs, NowMs+AfterMaxMs]. math.MaxInt64 means
	// unlimited; so, for convenience, does a value < 0.
	BeforeMaxMs, AfterMaxMs int64
	// RequireKeys is set for compacted topics: every record needs a non-null
	// key. This is the one check that decompresses, capped by
	// MaxDecompressedBytes (<= 0 selects DefaultMaxDecompressedBytes).
	RequireKeys          bool
	MaxDecompressedBytes int
}

// BatchInfo describes one validated batch of a produce payload: its header as
// sent and where it starts. The batch is payload[Pos : Pos+Header.Size()].
type BatchInfo struct {
	Header Header
	Pos    int // byte offset of the batch in the payload
}

// Validate walks a produce payload, one or more concatenated v2 batches, and
// appends one BatchInfo per batch to dst. Per batch, in this order:
//
//   - framing: at least 12 bytes, BatchLength within the payload (ErrCorrupt);
//     magic 2 (ErrUnsupportedMagic); BatchLength >= 49 (ErrCorrupt); size
//     within MaxBatchBytes (ErrTooLarge); CRC32C (ErrCorrupt);
//   - codec 0..4 (ErrUnsupportedCompression);
//   - not a control batch, NumRecords >= 1 and == LastOffsetDelta+1, a
//     producer id implies a sequence >= 0 (ErrInvalidRecord);
//   - not LogAppendTime, and on CreateTime topics FirstTimestamp and
//     MaxTimestamp within bounds (ErrInvalidTimestamp);
//   - uncompressed: every record well formed, offset delta == index, exactly
//     NumRecords records filling the batch (ErrInvalidRecord), each record's
//     timestamp within bounds (ErrInvalidTimestamp), keys present when
//     required (ErrInvalidRecord); compressed with RequireKeys: the same, on
//     the decompressed records.
//
// Any base offset is accepted: the broker overwrites it. An empty payload is
// ErrCorrupt. On error, dst is returned with the batches validated so far.
// Validate does not allocate when dst has capacity, except to decompress for
// RequireKeys (and on the error path).
func Validate(dst []BatchInfo, data []byte, cfg *ValidateConfig) ([]BatchInfo, error) {
	if len(data) == 0 {
		return dst, fmt.Errorf("%w: empty payload", ErrCorrupt)
	}
	c := ValidateConfig{BeforeMaxMs: math.MaxInt64, AfterMaxMs: math.MaxInt64}
	if cfg != nil {
		c = *cfg
	}
	lo, hi := timestampBounds(&c)
	for pos := 0; pos < len(data); {
		h, size, err := validateBatch(data[pos:], &c, lo, hi)
		if err != nil {
			return dst, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		dst = append(dst, BatchInfo{Header: h, Pos: pos})
		pos += size
	}
	return dst, nil
}

// timestampBounds returns the inclusive CreateTime window, saturating
// instead of overflowing. Without a CreateTime check it is everything.
func timestampBounds(c *ValidateConfig) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if c.TimestampType != CreateTime {
		return lo, hi
	}
	if c.BeforeMaxMs >= 0 && c.BeforeMaxMs != math.MaxInt64 {
		if d := c.NowMs - c.BeforeMaxMs; d <= c.NowMs { // no wrap
			lo = d
		}
	}
	if c.AfterMaxMs >= 0 && c.AfterMaxMs != math.MaxInt64 {
		if d := c.NowMs + c.AfterMaxMs; d >= c.NowMs {
			hi = d
		}
	}
	return lo, hi
}

func inBounds(ts, lo, hi int64) bool {
	return ts == NoTimestamp || (ts >= lo && ts <= hi)
}

// validateBatch checks the batch at the front of b and returns its header
// and size.
func validateBatch(b []byte, c *ValidateConfig, lo, hi int64) (Header, int, error) {
	if len(b) < lengthOverhead {
		return Header{}, 0, fmt.Errorf("%w: %d bytes left, too few for a batch", ErrCorrupt, len(b))
	}
	bl := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
	if bl < 0 || bl+lengthOverhead > int64(len(b)) {
		return Header{}, 0, fmt.Errorf("%w: batch length %d with %d bytes left", ErrCorrupt, bl, len(b)-lengthOverhead)
	}
	size := int(bl) + lengthOverhead
	if size > offMagic && b[offMagic] != 2 {
		return Header{}, 0, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, int8(b[offMagic]))
	}
	if bl < minBatchLength {
		return Header{}, 0, fmt.Errorf("%w: batch length %d below the header size", ErrCorrupt, bl)
	}
	if c.MaxBatchBytes > 0 && size > c.MaxBatchBytes {
		return Header{}, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, c.MaxBatchBytes)
	}
	batch := b[:size]
	h, _ := ParseHeader(batch)
	if got := computeCRC(batch); got != h.CRC {
		return h, 0, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorrupt, h.CRC, got)
	}
	codec := h.Compression()
	if codec > Zstd {
		return h, 0, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, codec)
	}
	if h.IsControl() {
		return h, 0, fmt.Errorf("%w: control batch from a client", ErrInvalidRecord)
	}
	if h.NumRecords <= 0 || int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return h, 0, fmt.Errorf("%w: %d records, last offset delta %d", ErrInvalidRecord, h.NumRecords, h.LastOffsetDelta)
	}
	if h.ProducerID >= 0 && h.BaseSequence < 0 {
		return h, 0, fmt.Errorf("%w: producer id %d with sequence %d", ErrInvalidRecord, h.ProducerID, h.BaseSequence)
	}
	if h.TimestampType() == LogAppendTime {
		return h, 0, fmt.Errorf("%w: producer set LogAppendTime", ErrInvalidTimestamp)
	}
	if !inBounds(h.FirstTimestamp, lo, hi) || !inBounds(h.MaxTimestamp, lo, hi) {
		return h, 0, fmt.Errorf("%w: batch timestamps [%d, %d] outside [%d, %d]", ErrInvalidTimestamp, h.FirstTimestamp, h.MaxTimestamp, lo, hi)
	}
	recs := batch[HeaderSize:]
	if codec == None {
		return h, size, checkRecords(recs, &h, c.RequireKeys, lo, hi)
	}
	if !c.RequireKeys {
		return h, size, nil
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	plain, err := Decompress((*bp)[:0], codec, recs, c.MaxDecompressedBytes)
	if cap(plain) <= maxPooledScratch {
		*bp = plain[:0]
	}
	if err != nil {
		return h, 0, err
	}
	return h, size, checkRecords(plain, &h, true, lo, hi)
}

// scratch holds decompression buffers for the compacted-topic key check.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledScratch keeps one huge batch from pinning its buffer in the pool.
const maxPooledScratch = 8 << 20

// checkRecords walks an uncompressed records section.
func checkRecords(b []byte, h *Header, requireKeys bool, lo, hi int64) error {
	var r rawRecord
	checkTS := lo != math.MinInt64 || hi != math.MaxInt64
	for i := int32(0); i < h.NumRecords; i++ {
		n := nextRecord(b, &r)
		if n == 0 {
			return fmt.Errorf("%w: record %d malformed", ErrInvalidRecord, i)
		}
		b = b[n:]
		if r.offsetDelta != i {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, r.offsetDelta)
		}
		if requireKeys && r.key == nil {
			return fmt.Errorf("%w: record %d has no key on a compacted topic", ErrInvalidRecord, i)
		}
		if checkTS {
			if ts := h.FirstTimestamp + r.timestampDelta; !inBounds(ts, lo, hi) {
				return fmt.Errorf("%w: record %d timestamp %d outside [%d, %d]", ErrInvalidTimestamp, i, ts, lo, hi)
			}
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrInvalidRecord, len(b))
	}
	return nil
}
