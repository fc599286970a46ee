package record

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite the committed fuzz seed corpora under testdata/fuzz")

// seedPayloads are the payloads the fuzz corpora start from: valid batches
// of every codec and a few near misses.
func seedPayloads(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range allCodecs {
		h := testHeader(c)
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = 3, 0, 0
		seeds = append(seeds, mustBuild(t, h, testRecords(3)))
	}
	one := mustBuild(t, testHeader(None), []Record{{Key: []byte("k"), Value: []byte("v"),
		Headers: []RecordHeader{{Key: "h", Value: nil}}}})
	two := append(bytes.Clone(one), one...)
	badCRC := bytes.Clone(one)
	badCRC[len(badCRC)-1] ^= 1
	nullKey := mustBuild(t, testHeader(None), []Record{{Value: []byte("v")}})
	seeds = append(seeds, one, two, badCRC, nullKey, one[:HeaderSize], []byte{})
	return seeds
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to regenerate testdata/fuzz")
	}
	for _, target := range []string{"FuzzValidate", "FuzzRecords"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seedPayloads(t) {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if target == "FuzzValidate" {
				body += fmt.Sprintf("bool(%v)\nbool(%v)\n", i%2 == 0, i%3 != 0)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzValidate: Validate never panics, and whatever it accepts is tiled by
// well-formed batches whose records decode (uncompressed) to exactly
// NumRecords records numbered 0..n-1, and which stay valid when the broker
// patches them. With fix set, CRCs are recomputed first so that mutations
// reach the checks behind the CRC.
func FuzzValidate(f *testing.F) {
	for i, s := range seedPayloads(f) {
		f.Add(s, i%2 == 0, i%3 != 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, requireKeys, fix bool) {
		if fix {
			fixAllCRCs(data)
		}
		cfg := &ValidateConfig{
			MaxBatchBytes: 1 << 20, TimestampType: CreateTime, NowMs: testNow,
			BeforeMaxMs: 1 << 40, AfterMaxMs: 1 << 40,
			RequireKeys: requireKeys, MaxDecompressedBytes: 1 << 20,
		}
		infos, err := Validate(nil, data, cfg)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("non-sentinel error %v", err)
			}
			return
		}
		pos := 0
		for _, bi := range infos {
			if bi.Pos != pos {
				t.Fatalf("batch at %d, expected %d", bi.Pos, pos)
			}
			batch := data[bi.Pos : bi.Pos+bi.Header.Size()]
			pos += len(batch)
			if err := VerifyCRC(batch); err != nil {
				t.Fatalf("accepted batch fails VerifyCRC: %v", err)
			}
			recs, err := Records(batch, 1<<20)
			if bi.Header.Compression() == None || requireKeys {
				if err != nil {
					t.Fatalf("accepted batch does not decode: %v", err)
				}
				if len(recs) != int(bi.Header.NumRecords) {
					t.Fatalf("%d records, header says %d", len(recs), bi.Header.NumRecords)
				}
				for i, r := range recs {
					if r.OffsetDelta != int32(i) || (requireKeys && r.Key == nil) {
						t.Fatalf("record %d: offset delta %d key %v", i, r.OffsetDelta, r.Key)
					}
				}
			}
			patched := bytes.Clone(batch)
			SetBaseOffset(patched, 99)
			SetPartitionLeaderEpoch(patched, 3)
			SetLogAppendTime(patched, testNow)
			if err := VerifyCRC(patched); err != nil {
				t.Fatalf("patched batch fails VerifyCRC: %v", err)
			}
		}
		if pos != len(data) {
			t.Fatalf("batches cover %d of %d bytes", pos, len(data))
		}
	})
}

// FuzzRecords: Records never panics on any input, and what it decodes
// rebuilds into a batch that decodes to the same records.
func FuzzRecords(f *testing.F) {
	for _, s := range seedPayloads(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := Records(data, 1<<20)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("non-sentinel error %v", err)
			}
			return
		}
		h, _ := ParseHeader(data)
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		if h.Compression() > Zstd {
			return // Records only reaches here for codec 0..4
		}
		rebuilt, err := Build(nil, h, recs)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		if err := VerifyCRC(rebuilt); err != nil {
			t.Fatalf("rebuilt batch: %v", err)
		}
		again, err := Records(rebuilt, 1<<21)
		if err != nil {
			t.Fatalf("rebuilt batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(recs)) {
			t.Fatal("records differ after rebuild")
		}
	})
}

// fixAllCRCs recomputes the CRC of every complete batch frame in data.
func fixAllCRCs(data []byte) {
	for len(data) >= HeaderSize {
		h, _ := ParseHeader(data)
		if h.BatchLength < minBatchLength || int64(h.Size()) > int64(len(data)) {
			return
		}
		fixCRC(data)
		data = data[h.Size():]
	}
}

// normalize maps empty header slices to nil: Records yields nil for none.
func normalize(recs []Record) []Record {
	for i := range recs {
		if len(recs[i].Headers) == 0 {
			recs[i].Headers = nil
		}
	}
	return recs
}

func isSentinel(err error) bool {
	n := 0
	for _, s := range []error{ErrCorrupt, ErrInvalidRecord, ErrInvalidTimestamp, ErrTooLarge, ErrUnsupportedMagic, ErrUnsupportedCompression} {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1
}
