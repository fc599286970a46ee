package record

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// HeaderSize is the size in bytes of a v2 batch header, up to and including
// the records count.
const HeaderSize = 61

// Field offsets inside a v2 batch.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is the part of a batch not counted by BatchLength.
	lengthOverhead = 12
	// minBatchLength is the BatchLength of a batch with no record bytes.
	minBatchLength = HeaderSize - lengthOverhead
)

// Attribute bits of a v2 batch.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 1 << 3
	attrTransactional   = 1 << 4
	attrControl         = 1 << 5
	attrDeleteHorizon   = 1 << 6
)

// NoTimestamp is the timestamp value meaning "unknown"; it is exempt from
// timestamp bounds, as in Kafka.
const NoTimestamp int64 = -1

// Compression is the codec of a batch's records section (attribute bits 0-2).
type Compression int8

// Codecs defined by the Kafka protocol; 5..7 are unassigned.
const (
	None   Compression = 0
	Gzip   Compression = 1
	Snappy Compression = 2
	LZ4    Compression = 3
	Zstd   Compression = 4
)

// String returns the codec's name as Kafka's compression.type spells it.
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return "unknown"
}

// TimestampType says what a batch's timestamps mean (attribute bit 3).
type TimestampType int8

// Timestamp types.
const (
	CreateTime    TimestampType = 0
	LogAppendTime TimestampType = 1
)

// Sentinel errors. Every error returned by Validate, Records and Decompress
// matches exactly one of them with errors.Is (details are wrapped around it);
// internal/api maps them to Kafka error codes.
var (
	// ErrCorrupt: truncated batch, bad CRC, impossible lengths, trailing
	// bytes after the last batch, or undecodable compressed data.
	ErrCorrupt = errors.New("record: corrupt batch")
	// ErrInvalidRecord: the batch frame is intact but its content breaks a
	// rule: counts, offset deltas, a malformed record, a missing key on a
	// compacted topic, a control batch from a client, a bad sequence.
	ErrInvalidRecord = errors.New("record: invalid record")
	// ErrInvalidTimestamp: a timestamp outside the topic's bounds, or a
	// producer claiming LogAppendTime.
	ErrInvalidTimestamp = errors.New("record: invalid timestamp")
	// ErrTooLarge: a batch over the size limit, or decompressed data over
	// its limit.
	ErrTooLarge = errors.New("record: batch too large")
	// ErrUnsupportedMagic: a batch whose magic byte is not 2.
	ErrUnsupportedMagic = errors.New("record: unsupported magic")
	// ErrUnsupportedCompression: codec bits 5, 6 or 7.
	ErrUnsupportedCompression = errors.New("record: unsupported compression")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a decoded v2 batch header. It is a plain value, safe to copy and
// share between goroutines; decoding it checks nothing, so its fields are
// exactly the bytes on the wire and hold no invariant until Validate
// accepted the batch they came from.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// ParseHeader decodes the first HeaderSize bytes of b. It returns ErrCorrupt
// if b is shorter than that and checks nothing else.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrCorrupt
	}
	b = b[:HeaderSize]
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// appendHeader encodes h in the v2 layout.
func appendHeader(dst []byte, h *Header) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BaseOffset))
	dst = be.AppendUint32(dst, uint32(h.BatchLength))
	dst = be.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, byte(h.Magic))
	dst = be.AppendUint32(dst, h.CRC)
	dst = be.AppendUint16(dst, uint16(h.Attributes))
	dst = be.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(h.FirstTimestamp))
	dst = be.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(h.ProducerID))
	dst = be.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(h.BaseSequence))
	dst = be.AppendUint32(dst, uint32(h.NumRecords))
	return dst
}

// Size is the total number of bytes the batch occupies: BatchLength + 12.
func (h Header) Size() int { return int(h.BatchLength) + lengthOverhead }

// LastOffset is the offset of the batch's last record (or of the last record
// it once held, for batches emptied by compaction).
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec of the records section.
func (h Header) Compression() Compression {
	return Compression(h.Attributes & attrCompressionMask)
}

// TimestampType says whether MaxTimestamp is the producer's (CreateTime) or
// the broker's (LogAppendTime).
func (h Header) TimestampType() TimestampType {
	if h.Attributes&attrLogAppendTime != 0 {
		return LogAppendTime
	}
	return CreateTime
}

// IsTransactional reports attribute bit 4.
func (h Header) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports attribute bit 5: the batch holds transaction markers.
func (h Header) IsControl() bool { return h.Attributes&attrControl != 0 }

// HasDeleteHorizon reports attribute bit 6: FirstTimestamp is the delete
// horizon set by compaction.
func (h Header) HasDeleteHorizon() bool { return h.Attributes&attrDeleteHorizon != 0 }

// computeCRC returns the CRC32C a batch must carry; batch is exactly one
// whole batch (at least HeaderSize bytes).
func computeCRC(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// VerifyCRC checks the framing and CRC32C of the single batch at the start of
// b (b may continue past it). It returns ErrCorrupt if b is shorter than the
// batch claims or the checksum does not match.
func VerifyCRC(b []byte) error {
	if len(b) < HeaderSize {
		return ErrCorrupt
	}
	bl := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if bl < minBatchLength || int64(bl)+lengthOverhead > int64(len(b)) {
		return ErrCorrupt
	}
	size := int(bl) + lengthOverhead
	if computeCRC(b[:size]) != binary.BigEndian.Uint32(b[offCRC:]) {
		return ErrCorrupt
	}
	return nil
}
