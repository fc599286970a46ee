package record

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgRecords encodes recs with franz-go's kmsg.Record, which writes the
// length field as given, so it is computed from a first encoding.
func kmsgRecords(recs []Record) []byte {
	var out []byte
	for _, r := range recs {
		kr := kmsg.Record{
			Attributes:       r.Attributes,
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      r.OffsetDelta,
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := kr.AppendTo(nil)[1:] // Length 0 encodes as one byte
		kr.Length = int32(len(body))
		out = kr.AppendTo(out)
	}
	return out
}

// kmsgBatch encodes a batch the way franz-go's producer does: kmsg fields,
// then the CRC32C over attributes onward.
func kmsgBatch(h Header, recs []Record, codec Compression) []byte {
	plain := kmsgRecords(recs)
	body, err := Compress(nil, codec, plain)
	if err != nil {
		panic(err)
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          h.BaseOffset,
		Length:               int32(minBatchLength + len(body)),
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           h.Attributes | int16(codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       h.FirstTimestamp,
		MaxTimestamp:         h.MaxTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		FirstSequence:        h.BaseSequence,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	b := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestFranzGoBatchesValidate(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			h := testHeader(None)
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 1234, 5, 99
			recs := testRecords(25)
			var payload []byte
			payload = append(payload, kmsgBatch(h, recs, c)...)
			payload = append(payload, kmsgBatch(h, recs[:3], c)...)
			cfg := testConfig()
			cfg.RequireKeys = true
			infos, err := Validate(nil, payload, cfg)
			if err != nil {
				t.Fatalf("Validate(franz-go batch): %v", err)
			}
			if len(infos) != 2 || infos[0].Header.NumRecords != 25 || infos[1].Header.NumRecords != 3 {
				t.Fatalf("infos %+v", infos)
			}
			got, err := Records(payload[infos[1].Pos:], 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("%d records", len(got))
			}
			for i := range got {
				if !recordsEqual(got[i], recs[i]) {
					t.Fatalf("record %d: got %+v want %+v", i, got[i], recs[i])
				}
			}
		})
	}
}

func TestBuildReadsBackWithFranzGo(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			h := testHeader(c)
			h.BaseOffset, h.PartitionLeaderEpoch = 5000, 7
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 1, 2, 3
			recs := testRecords(12)
			b := mustBuild(t, h, recs)

			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(b); err != nil {
				t.Fatalf("kmsg ReadFrom: %v", err)
			}
			if kb.FirstOffset != 5000 || kb.Length != int32(len(b)-12) || kb.PartitionLeaderEpoch != 7 || kb.Magic != 2 ||
				kb.Attributes != int16(c) || kb.LastOffsetDelta != 11 || kb.FirstTimestamp != h.FirstTimestamp ||
				kb.MaxTimestamp != h.MaxTimestamp || kb.ProducerID != 1 || kb.ProducerEpoch != 2 || kb.FirstSequence != 3 ||
				kb.NumRecords != 12 {
				t.Fatalf("kmsg batch fields: %+v", kb)
			}
			if uint32(kb.CRC) != crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) {
				t.Fatal("CRC is not CRC32C of attributes onward")
			}
			plain, err := Decompress(nil, c, kb.Records, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, kmsgRecords(recs)) {
				t.Fatal("records section differs from franz-go's encoding of the same records")
			}
			for i := 0; len(plain) > 0; i++ {
				var kr kmsg.Record
				if err := kr.ReadFrom(plain); err != nil {
					t.Fatalf("kmsg record %d: %v", i, err)
				}
				if kr.OffsetDelta != recs[i].OffsetDelta || kr.TimestampDelta64 != recs[i].TimestampDelta ||
					!bytes.Equal(kr.Key, recs[i].Key) || !bytes.Equal(kr.Value, recs[i].Value) ||
					(kr.Value == nil) != (recs[i].Value == nil) || len(kr.Headers) != len(recs[i].Headers) {
					t.Fatalf("record %d: %+v", i, kr)
				}
				_, n := binary.Varint(plain)
				plain = plain[n+int(kr.Length):]
			}
		})
	}
}

func recordsEqual(a, b Record) bool {
	if a.Attributes != b.Attributes || a.TimestampDelta != b.TimestampDelta || a.OffsetDelta != b.OffsetDelta ||
		!bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
		!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) ||
			(a.Headers[i].Value == nil) != (b.Headers[i].Value == nil) {
			return false
		}
	}
	return true
}
