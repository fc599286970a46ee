package record

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var allCodecs = []Compression{None, Gzip, Snappy, LZ4, Zstd}

func TestRoundTripEveryCodec(t *testing.T) {
	big := bytes.Repeat([]byte("poste "), 20_000) // spans several xerial blocks
	for _, c := range allCodecs {
		for _, n := range []int{1, 2, 17, 300} {
			t.Run(c.String(), func(t *testing.T) {
				recs := testRecords(n)
				recs[0].Value = big
				h := testHeader(c)
				h.BaseOffset, h.PartitionLeaderEpoch = 1000, 4
				h.ProducerID, h.ProducerEpoch, h.BaseSequence = 77, 2, 5
				h.Attributes |= attrTransactional
				h.MaxTimestamp = h.FirstTimestamp + int64(3*(n-1))
				b := mustBuild(t, h, recs)

				cfg := testConfig()
				cfg.RequireKeys = true // forces the compressed path to decompress and walk
				infos, err := Validate(nil, b, cfg)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				got := infos[0].Header
				want := h
				want.Magic, want.NumRecords, want.LastOffsetDelta = 2, int32(n), int32(n-1)
				want.BatchLength, want.CRC = got.BatchLength, got.CRC
				if got != want {
					t.Fatalf("header\n got %+v\nwant %+v", got, want)
				}
				if got.Size() != len(b) || got.LastOffset() != 1000+int64(n-1) || got.Compression() != c || !got.IsTransactional() {
					t.Fatalf("accessors: size %d/%d last %d codec %v", got.Size(), len(b), got.LastOffset(), got.Compression())
				}
				dec, err := Records(b, 1<<20)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				if !reflect.DeepEqual(dec, recs) {
					t.Fatalf("records differ after the round trip")
				}
			})
		}
	}
}

func TestBuildKeepsCompactedOffsetRange(t *testing.T) {
	// A compacted batch keeps its original last offset delta even when its
	// last records were removed, and its records keep their own deltas.
	recs := testRecords(5)
	kept := []Record{recs[0], recs[3]}
	h := testHeader(None)
	h.LastOffsetDelta = 4
	b := mustBuild(t, h, kept)
	got, _ := ParseHeader(b)
	if got.LastOffsetDelta != 4 || got.NumRecords != 2 {
		t.Fatalf("last offset delta %d, records %d", got.LastOffsetDelta, got.NumRecords)
	}
	dec, err := Records(b, 0)
	if err != nil || len(dec) != 2 || dec[1].OffsetDelta != 3 {
		t.Fatalf("Records = %v, %v", dec, err)
	}
	// Emptied entirely: still a well-formed batch.
	b = mustBuild(t, h, nil)
	if err := VerifyCRC(b); err != nil {
		t.Fatal(err)
	}
	if dec, err := Records(b, 0); err != nil || len(dec) != 0 {
		t.Fatalf("Records(empty) = %v, %v", dec, err)
	}
}

func TestBuildRejectsUnknownCodec(t *testing.T) {
	h := testHeader(None)
	h.Attributes = 6
	if _, err := Build(nil, h, testRecords(1)); !errors.Is(err, ErrUnsupportedCompression) {
		t.Fatalf("Build = %v", err)
	}
}

func TestRecordsErrors(t *testing.T) {
	valid := mustBuild(t, testHeader(None), testRecords(3))
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(valid)
		f(b)
		return b
	}
	tests := []struct {
		name  string
		batch []byte
		limit int
		want  error
	}{
		{"short header", valid[:60], 0, ErrCorrupt},
		{"truncated", valid[:len(valid)-1], 0, ErrCorrupt},
		{"length below header", mut(func(b []byte) { put32(b, offBatchLength, 10) }), 0, ErrCorrupt},
		{"magic", mut(func(b []byte) { b[offMagic] = 0 }), 0, ErrUnsupportedMagic},
		{"negative count", mut(func(b []byte) { put32(b, offNumRecords, -3) }), 0, ErrInvalidRecord},
		{"count too high", mut(func(b []byte) { put32(b, offNumRecords, 1<<30) }), 0, ErrInvalidRecord},
		{"count too low", mut(func(b []byte) { put32(b, offNumRecords, 1) }), 0, ErrInvalidRecord},
		{"malformed record", mut(func(b []byte) { b[HeaderSize] = 0x7f }), 0, ErrInvalidRecord},
		{"codec 6", mut(func(b []byte) { put16(b, offAttributes, 6) }), 0, ErrUnsupportedCompression},
		{"decompression limit", mustBuild(t, testHeader(Gzip), testRecords(40)), 100, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Records(tt.batch, tt.limit); !errors.Is(err, tt.want) {
				t.Fatalf("Records = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPatchers(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := mustBuild(t, testHeader(c), testRecords(4))
			payload := append(bytes.Clone(b), b...) // patch the first of two batches
			crc := bytes.Clone(payload[offCRC : offCRC+4])

			SetBaseOffset(payload, 1<<40+3)
			SetPartitionLeaderEpoch(payload, 12)
			if !bytes.Equal(crc, payload[offCRC:offCRC+4]) {
				t.Fatal("offset/epoch patch changed the CRC")
			}
			if _, err := Validate(nil, payload, testConfig()); err != nil {
				t.Fatalf("after offset/epoch patch: %v", err)
			}
			h, _ := ParseHeader(payload)
			if h.BaseOffset != 1<<40+3 || h.PartitionLeaderEpoch != 12 || h.LastOffset() != 1<<40+6 {
				t.Fatalf("patched header %+v", h)
			}

			const lat = testNow + 5
			SetLogAppendTime(payload, lat)
			if err := VerifyCRC(payload); err != nil {
				t.Fatalf("CRC after SetLogAppendTime: %v", err)
			}
			if err := VerifyCRC(payload[len(b):]); err != nil {
				t.Fatalf("second batch damaged: %v", err)
			}
			h, _ = ParseHeader(payload)
			want := testHeader(c)
			if h.TimestampType() != LogAppendTime || h.MaxTimestamp != lat || h.FirstTimestamp != want.FirstTimestamp || h.Compression() != c {
				t.Fatalf("after SetLogAppendTime: %+v", h)
			}
			if recs, err := Records(payload, 0); err != nil || len(recs) != 4 {
				t.Fatalf("Records after patches: %d, %v", len(recs), err)
			}
			// A producer may not send LogAppendTime; the patched batch is for the log.
			if _, err := Validate(nil, payload, testConfig()); !errors.Is(err, ErrInvalidTimestamp) {
				t.Fatalf("Validate(log-append batch) = %v", err)
			}
		})
	}
}

func TestHeaderAccessors(t *testing.T) {
	tests := []struct {
		attrs                       int16
		codec                       Compression
		ts                          TimestampType
		txn, control, deleteHorizon bool
	}{
		{0, None, CreateTime, false, false, false},
		{0x01, Gzip, CreateTime, false, false, false},
		{0x0a, Snappy, LogAppendTime, false, false, false},
		{0x13, LZ4, CreateTime, true, false, false},
		{0x34, Zstd, CreateTime, true, true, false},
		{0x40, None, CreateTime, false, false, true},
		{0x7f, Compression(7), LogAppendTime, true, true, true},
	}
	for _, tt := range tests {
		h := Header{Attributes: tt.attrs}
		if h.Compression() != tt.codec || h.TimestampType() != tt.ts || h.IsTransactional() != tt.txn ||
			h.IsControl() != tt.control || h.HasDeleteHorizon() != tt.deleteHorizon {
			t.Errorf("attributes %#x decoded wrong", tt.attrs)
		}
	}
	if _, err := ParseHeader(make([]byte, HeaderSize-1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ParseHeader(short) = %v", err)
	}
}
