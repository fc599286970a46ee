package record

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func testConfig() *ValidateConfig {
	return &ValidateConfig{
		MaxBatchBytes: 1 << 20,
		TimestampType: CreateTime,
		NowMs:         testNow,
		BeforeMaxMs:   math.MaxInt64,
		AfterMaxMs:    3_600_000,
	}
}

func TestValidateErrors(t *testing.T) {
	valid := func(t *testing.T) []byte { return mustBuild(t, testHeader(None), testRecords(3)) }
	// Records 0..2 are small, so each varint is one byte: the first record
	// starts at HeaderSize with [length, attrs, tsDelta, offDelta, keyLen…].
	const rec0 = HeaderSize
	tests := []struct {
		name   string
		build  func(t *testing.T) []byte
		config func(*ValidateConfig)
		want   error
	}{
		{name: "valid", build: valid},
		{name: "empty payload", build: func(*testing.T) []byte { return nil }, want: ErrCorrupt},
		{name: "shorter than length field", build: func(t *testing.T) []byte { return valid(t)[:11] }, want: ErrCorrupt},
		{name: "truncated by one byte", build: func(t *testing.T) []byte { b := valid(t); return b[:len(b)-1] }, want: ErrCorrupt},
		{name: "truncated header", build: func(t *testing.T) []byte { return valid(t)[:40] }, want: ErrCorrupt},
		{name: "trailing garbage short", build: func(t *testing.T) []byte { return append(valid(t), 1, 2, 3) }, want: ErrCorrupt},
		{name: "trailing zeros", build: func(t *testing.T) []byte { return append(valid(t), make([]byte, 30)...) }, want: ErrCorrupt},
		{name: "negative batch length", build: func(t *testing.T) []byte { b := valid(t); put32(b, offBatchLength, -5); return b }, want: ErrCorrupt},
		{name: "batch length below header", build: func(t *testing.T) []byte { b := valid(t); put32(b, offBatchLength, 48); return b }, want: ErrCorrupt},
		{name: "batch length beyond payload", build: func(t *testing.T) []byte {
			b := valid(t)
			put32(b, offBatchLength, int32(len(b)))
			return b
		}, want: ErrCorrupt},
		{name: "magic 1", build: func(t *testing.T) []byte { b := valid(t); b[offMagic] = 1; return b }, want: ErrUnsupportedMagic},
		{name: "magic 3", build: func(t *testing.T) []byte { b := valid(t); b[offMagic] = 3; return b }, want: ErrUnsupportedMagic},
		{name: "crc field flipped", build: func(t *testing.T) []byte { b := valid(t); b[offCRC] ^= 1; return b }, want: ErrCorrupt},
		{name: "record byte flipped", build: func(t *testing.T) []byte { b := valid(t); b[len(b)-2] ^= 0x40; return b }, want: ErrCorrupt},
		{name: "attributes flipped without crc", build: func(t *testing.T) []byte { b := valid(t); b[offAttributes+1] ^= 1; return b }, want: ErrCorrupt},
		{name: "over max batch bytes", build: valid, config: func(c *ValidateConfig) { c.MaxBatchBytes = 100 }, want: ErrTooLarge},
		{name: "codec 5", build: func(t *testing.T) []byte { b := valid(t); put16(b, offAttributes, 5); fixCRC(b); return b }, want: ErrUnsupportedCompression},
		{name: "codec 7", build: func(t *testing.T) []byte { b := valid(t); put16(b, offAttributes, 7); fixCRC(b); return b }, want: ErrUnsupportedCompression},
		{name: "control batch", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.Attributes |= attrControl | attrTransactional
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 7, 0, 0
			return mustBuild(t, h, testRecords(1))
		}, want: ErrInvalidRecord},
		{name: "zero records", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.LastOffsetDelta = -1
			b := mustBuild(t, h, nil)
			put32(b, offLastOffsetDelta, -1)
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "negative record count", build: func(t *testing.T) []byte {
			b := valid(t)
			put32(b, offNumRecords, -1)
			put32(b, offLastOffsetDelta, -2)
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "count differs from last offset delta", build: func(t *testing.T) []byte {
			b := valid(t)
			put32(b, offLastOffsetDelta, 5)
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "count claims more records than present", build: func(t *testing.T) []byte {
			b := valid(t)
			put32(b, offNumRecords, 4)
			put32(b, offLastOffsetDelta, 3)
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "count claims fewer records than present", build: func(t *testing.T) []byte {
			b := valid(t)
			put32(b, offNumRecords, 2)
			put32(b, offLastOffsetDelta, 1)
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "offset deltas out of order", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[1].OffsetDelta, recs[2].OffsetDelta = 2, 1
			h := testHeader(None)
			h.LastOffsetDelta = 2
			return mustBuild(t, h, recs)
		}, want: ErrInvalidRecord},
		{name: "offset deltas with a gap", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[2].OffsetDelta = 3
			b := mustBuild(t, testHeader(None), recs)
			put32(b, offLastOffsetDelta, 2)
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "record length past batch end", build: func(t *testing.T) []byte {
			b := valid(t)
			b[rec0] = 0x7e // zigzag 63, longer than the batch
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "record length shorter than fields", build: func(t *testing.T) []byte {
			b := valid(t)
			b[rec0] -= 2 // one less, zigzag
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "negative record length", build: func(t *testing.T) []byte {
			b := valid(t)
			b[rec0] = 0x01 // zigzag -1
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "key length -2", build: func(t *testing.T) []byte {
			b := valid(t)
			b[rec0+4] = 0x03 // zigzag -2
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "unterminated varint", build: func(t *testing.T) []byte {
			b := mustBuild(t, testHeader(None), testRecords(1))
			for i := rec0 + 2; i < len(b); i++ {
				b[i] = 0xff
			}
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "null header key", build: func(t *testing.T) []byte {
			recs := []Record{{Key: []byte("k"), Value: []byte("v"), Headers: []RecordHeader{{Key: "a", Value: []byte("b")}}}}
			h := testHeader(None)
			b := mustBuild(t, h, recs)
			// [len attrs ts off keyLen 'k' valLen 'v' hdrCount hKeyLen 'a' …]
			i := bytes.Index(b[rec0:], []byte{2, 'a'})
			b[rec0+i] = 0x01 // header key length -1
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "negative header count", build: func(t *testing.T) []byte {
			recs := []Record{{Key: []byte("k"), Value: []byte("v")}}
			b := mustBuild(t, testHeader(None), recs)
			b[len(b)-1] = 0x01 // header count -1
			fixCRC(b)
			return b
		}, want: ErrInvalidRecord},
		{name: "producer id without sequence", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 42, 0, -1
			return mustBuild(t, h, testRecords(2))
		}, want: ErrInvalidRecord},
		{name: "idempotent batch", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 42, 3, 17
			return mustBuild(t, h, testRecords(2))
		}},
		{name: "any base offset accepted", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.BaseOffset = 123456
			return mustBuild(t, h, testRecords(2))
		}},
		{name: "producer claims log append time", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.Attributes |= attrLogAppendTime
			return mustBuild(t, h, testRecords(2))
		}, want: ErrInvalidTimestamp},
		{name: "first timestamp too old", build: valid, config: func(c *ValidateConfig) { c.BeforeMaxMs = 500 }, want: ErrInvalidTimestamp},
		{name: "max timestamp in the future", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.MaxTimestamp = testNow + 3_600_001
			return mustBuild(t, h, testRecords(2))
		}, want: ErrInvalidTimestamp},
		{name: "record timestamp out of bounds", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[2].TimestampDelta = 3_600_000 + 2000 // batch header stays in bounds
			return mustBuild(t, testHeader(None), recs)
		}, want: ErrInvalidTimestamp},
		{name: "timestamp bounds at the edge", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.FirstTimestamp, h.MaxTimestamp = testNow-1000, testNow+3_600_000
			recs := testRecords(2)
			recs[1].TimestampDelta = 3_601_000
			return mustBuild(t, h, recs)
		}, config: func(c *ValidateConfig) { c.BeforeMaxMs = 1000 }},
		{name: "no timestamp is exempt", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.FirstTimestamp, h.MaxTimestamp = NoTimestamp, NoTimestamp
			recs := testRecords(1)
			recs[0].TimestampDelta = 0
			return mustBuild(t, h, recs)
		}, config: func(c *ValidateConfig) { c.BeforeMaxMs = 10 }},
		{name: "log append time topic ignores bounds", build: func(t *testing.T) []byte {
			h := testHeader(None)
			h.FirstTimestamp, h.MaxTimestamp = 5, 10
			return mustBuild(t, h, testRecords(2))
		}, config: func(c *ValidateConfig) { c.TimestampType = LogAppendTime; c.BeforeMaxMs = 10 }},
		{name: "compacted topic null key", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[1].Key = nil
			return mustBuild(t, testHeader(None), recs)
		}, config: func(c *ValidateConfig) { c.RequireKeys = true }, want: ErrInvalidRecord},
		{name: "compacted topic empty key is a key", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[1].Key = []byte{}
			return mustBuild(t, testHeader(None), recs)
		}, config: func(c *ValidateConfig) { c.RequireKeys = true }},
		{name: "compacted topic null key compressed", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[2].Key = nil
			return mustBuild(t, testHeader(Zstd), recs)
		}, config: func(c *ValidateConfig) { c.RequireKeys = true }, want: ErrInvalidRecord},
		{name: "null key compressed on a normal topic is not inspected", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[2].Key = nil
			return mustBuild(t, testHeader(Gzip), recs)
		}},
		{name: "compacted topic over decompression limit", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[0].Value = make([]byte, 10_000)
			return mustBuild(t, testHeader(LZ4), recs)
		}, config: func(c *ValidateConfig) { c.RequireKeys = true; c.MaxDecompressedBytes = 5000 }, want: ErrTooLarge},
		{name: "compacted topic garbage compressed data", build: func(t *testing.T) []byte {
			b := mustBuild(t, testHeader(Gzip), testRecords(3))
			for i := HeaderSize; i < len(b); i++ {
				b[i] = byte(i)
			}
			fixCRC(b)
			return b
		}, config: func(c *ValidateConfig) { c.RequireKeys = true }, want: ErrCorrupt},
		{name: "compacted topic compressed offset deltas checked", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[1].OffsetDelta = 7
			b := mustBuild(t, testHeader(Snappy), recs)
			put32(b, offLastOffsetDelta, 2)
			fixCRC(b)
			return b
		}, config: func(c *ValidateConfig) { c.RequireKeys = true }, want: ErrInvalidRecord},
		{name: "second batch corrupt", build: func(t *testing.T) []byte {
			b := valid(t)
			c := valid(t)
			c[len(c)-1] ^= 1
			return append(b, c...)
		}, want: ErrCorrupt},
		{name: "second batch too large", build: func(t *testing.T) []byte {
			recs := testRecords(3)
			recs[0].Value = make([]byte, 2000)
			return append(valid(t), mustBuild(t, testHeader(None), recs)...)
		}, config: func(c *ValidateConfig) { c.MaxBatchBytes = 1000 }, want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.config != nil {
				tt.config(cfg)
			}
			data := tt.build(t)
			infos, err := Validate(nil, data, cfg)
			t.Logf("Validate: %v", err)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			// Accepted payloads are tiled exactly by their batches.
			pos := 0
			for _, bi := range infos {
				if bi.Pos != pos {
					t.Fatalf("batch at %d, want %d", bi.Pos, pos)
				}
				pos += bi.Header.Size()
			}
			if pos != len(data) {
				t.Fatalf("batches cover %d of %d bytes", pos, len(data))
			}
		})
	}
}

func TestValidateMultipleBatches(t *testing.T) {
	var data []byte
	var wantPos []int
	for i, c := range []Compression{None, Gzip, None, Zstd} {
		h := testHeader(c)
		h.BaseSequence, h.ProducerID, h.ProducerEpoch = int32(i*10), 9, 1
		wantPos = append(wantPos, len(data))
		var err error
		if data, err = Build(data, h, testRecords(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.RequireKeys = true
	infos, err := Validate(make([]BatchInfo, 0, 1), data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 4 {
		t.Fatalf("%d batches, want 4", len(infos))
	}
	for i, bi := range infos {
		if bi.Pos != wantPos[i] || bi.Header.NumRecords != int32(i+1) || bi.Header.BaseSequence != int32(i*10) {
			t.Errorf("batch %d: pos %d records %d seq %d", i, bi.Pos, bi.Header.NumRecords, bi.Header.BaseSequence)
		}
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	var data []byte
	for i := 0; i < 3; i++ {
		data = append(data, mustBuild(t, testHeader(None), testRecords(50))...)
	}
	cfg := testConfig()
	cfg.RequireKeys = true
	dst := make([]BatchInfo, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = Validate(dst[:0], data, cfg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Validate allocated %.1f times per run", allocs)
	}
}

func TestValidateNilConfig(t *testing.T) {
	h := testHeader(None)
	h.FirstTimestamp, h.MaxTimestamp = 1, 1 // ancient, but nil config has no bounds
	if _, err := Validate(nil, mustBuild(t, h, testRecords(2)), nil); err != nil {
		t.Fatal(err)
	}
}

func TestTimestampBoundsSaturate(t *testing.T) {
	tests := []struct {
		name           string
		now, bef, aft  int64
		wantLo, wantHi int64
	}{
		{"unlimited", 100, math.MaxInt64, math.MaxInt64, math.MinInt64, math.MaxInt64},
		{"negative means unlimited", 100, -1, -1, math.MinInt64, math.MaxInt64},
		{"plain", 100, 10, 20, 90, 120},
		{"would underflow", math.MinInt64 + 5, 10, 0, math.MinInt64, math.MinInt64 + 5},
		{"would overflow", math.MaxInt64 - 5, 0, 10, math.MaxInt64 - 5, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := timestampBounds(&ValidateConfig{NowMs: tt.now, BeforeMaxMs: tt.bef, AfterMaxMs: tt.aft})
			if lo != tt.wantLo || hi != tt.wantHi {
				t.Fatalf("bounds [%d, %d], want [%d, %d]", lo, hi, tt.wantLo, tt.wantHi)
			}
		})
	}
}
