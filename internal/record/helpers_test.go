package record

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// testRecords returns n records numbered 0..n-1 with a mix of null, empty and
// set keys, values and headers.
func testRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{
			TimestampDelta: int64(i * 3),
			OffsetDelta:    int32(i),
			Key:            []byte(fmt.Sprintf("key-%d", i)),
			Value:          []byte(fmt.Sprintf("value-%d-%s", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")),
		}
		switch i % 4 {
		case 1:
			r.Value = nil
		case 2:
			r.Value = []byte{}
			r.Headers = []RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}}
		case 3:
			r.Headers = []RecordHeader{{Key: "trace", Value: []byte{}}}
		}
		recs[i] = r
	}
	return recs
}

const testNow = int64(1_700_000_000_000)

func testHeader(c Compression) Header {
	return Header{
		BaseOffset:           0,
		PartitionLeaderEpoch: -1,
		Attributes:           int16(c),
		FirstTimestamp:       testNow - 1000,
		MaxTimestamp:         testNow - 1000 + 30,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
}

func mustBuild(t testing.TB, h Header, recs []Record) []byte {
	t.Helper()
	b, err := Build(nil, h, recs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

// fixCRC recomputes the CRC of the batch at the front of b after a test has
// mutated bytes the CRC covers.
func fixCRC(b []byte) {
	size := int(int32(binary.BigEndian.Uint32(b[offBatchLength:]))) + lengthOverhead
	binary.BigEndian.PutUint32(b[offCRC:], computeCRC(b[:size]))
}

func put32(b []byte, off int, v int32) { binary.BigEndian.PutUint32(b[off:], uint32(v)) }
func put64(b []byte, off int, v int64) { binary.BigEndian.PutUint64(b[off:], uint64(v)) }
func put16(b []byte, off int, v int16) { binary.BigEndian.PutUint16(b[off:], uint16(v)) }
