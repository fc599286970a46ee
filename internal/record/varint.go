package record

import (
	"encoding/binary"
	"math"
)

// Kafka's record fields use zigzag varints, the same encoding as Go's
// binary.AppendVarint / binary.Varint.

// readVarlong decodes a zigzag varint from the front of b. n <= 0 means b is
// truncated or the value overflows 64 bits.
func readVarlong(b []byte) (v int64, n int) {
	if len(b) > 0 && b[0] < 0x80 { // one byte: the common case for deltas and lengths
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), 1
	}
	return binary.Varint(b)
}

// readVarint decodes a zigzag varint that must fit in an int32.
func readVarint(b []byte) (v int32, n int) {
	x, n := readVarlong(b)
	if n > 0 && (x < math.MinInt32 || x > math.MaxInt32) {
		return 0, -1
	}
	return int32(x), n
}

// varintLen is the encoded size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
