package record

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func testPayload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		if i%3 == 0 {
			b[i] = byte(r.IntN(256)) // a third random keeps codecs honest
		} else {
			b[i] = byte('a' + i%7)
		}
	}
	return b
}

func TestCompressRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for _, n := range []int{0, 1, 100, xerialBlockSize, xerialBlockSize + 1, 300_000} {
			src := testPayload(n)
			comp, err := Compress([]byte("prefix"), c, src)
			if err != nil {
				t.Fatalf("%v/%d: Compress: %v", c, n, err)
			}
			if !bytes.HasPrefix(comp, []byte("prefix")) {
				t.Fatalf("%v/%d: Compress lost dst's prefix", c, n)
			}
			out, err := Decompress([]byte("head"), c, comp[6:], n)
			if err != nil {
				t.Fatalf("%v/%d: Decompress: %v", c, n, err)
			}
			if !bytes.Equal(out, append([]byte("head"), src...)) {
				t.Fatalf("%v/%d: round trip differs", c, n)
			}
			if n > 1 { // a limit of 0 selects the default
				if _, err := Decompress(nil, c, comp[6:], n-1); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%v/%d: limit n-1: %v, want ErrTooLarge", c, n, err)
				}
			}
		}
	}
	if _, err := Compress(nil, Compression(5), []byte("x")); !errors.Is(err, ErrUnsupportedCompression) {
		t.Fatalf("Compress(codec 5) = %v", err)
	}
	if _, err := Decompress(nil, Compression(7), []byte("x"), 10); !errors.Is(err, ErrUnsupportedCompression) {
		t.Fatalf("Decompress(codec 7) = %v", err)
	}
}

// TestCompressedFormsOtherClientsWrite decodes what other Kafka clients and
// independent codec implementations write.
func TestCompressedFormsOtherClientsWrite(t *testing.T) {
	src := testPayload(200_000)
	var stdGz bytes.Buffer
	w := stdgzip.NewWriter(&stdGz)
	w.Write(src[:1000])
	w.Close()
	w = stdgzip.NewWriter(&stdGz) // a second gzip member, as concatenating writers produce
	w.Write(src[1000:])
	w.Close()

	var lz bytes.Buffer
	lw := lz4.NewWriter(&lz)
	lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true), lz4.ChecksumOption(false))
	lw.Write(src)
	lw.Close()

	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(true))
	zs := enc.EncodeAll(src, nil)

	// Java's xerial stream: header, then blocks of length + raw block.
	xerial := append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
	for p := 0; p < len(src); p += 10_000 {
		blk := snappy.Encode(nil, src[p:min(p+10_000, len(src))])
		xerial = binary.BigEndian.AppendUint32(xerial, uint32(len(blk)))
		xerial = append(xerial, blk...)
	}

	tests := []struct {
		name string
		c    Compression
		data []byte
		want []byte
	}{
		{"gzip two members", Gzip, stdGz.Bytes(), src},
		{"snappy raw block (franz-go, librdkafka)", Snappy, snappy.Encode(nil, src), src},
		{"snappy xerial (java)", Snappy, xerial, src},
		{"snappy xerial empty", Snappy, xerial[:xerialHeaderSize], nil},
		{"lz4 64k blocks with block checksums", LZ4, lz.Bytes(), src},
		{"zstd with checksum", Zstd, zs, src},
		{"zstd two frames", Zstd, append(enc.EncodeAll(src[:10], nil), enc.EncodeAll(src[10:], nil)...), src},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Decompress(nil, tt.c, tt.data, len(tt.want))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.want) {
				t.Fatal("decoded bytes differ")
			}
		})
	}
}

// TestCompressOutputIndependentlyReadable checks Poste's output with decoders
// other than the ones Decompress uses.
func TestCompressOutputIndependentlyReadable(t *testing.T) {
	src := testPayload(100_000)

	gz, _ := Compress(nil, Gzip, src)
	r, err := stdgzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("stdlib gzip: %v", err)
	}

	sn, _ := Compress(nil, Snappy, src)
	if !bytes.HasPrefix(sn, xerialMagic) || binary.BigEndian.Uint32(sn[8:]) != 1 || binary.BigEndian.Uint32(sn[12:]) != 1 {
		t.Fatalf("snappy output lacks the xerial header: % x", sn[:16])
	}
	var got []byte
	for rest := sn[xerialHeaderSize:]; len(rest) > 0; {
		n := binary.BigEndian.Uint32(rest)
		blk, err := snappy.Decode(nil, rest[4:4+n])
		if err != nil {
			t.Fatalf("golang/snappy: %v", err)
		}
		if len(blk) > xerialBlockSize {
			t.Fatalf("xerial block of %d bytes", len(blk))
		}
		got = append(got, blk...)
		rest = rest[4+n:]
	}
	if !bytes.Equal(got, src) {
		t.Fatal("xerial blocks do not decode to the input")
	}

	zs, _ := Compress(nil, Zstd, src)
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	if got, err := dec.DecodeAll(zs, nil); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("zstd DecodeAll: %v", err)
	}

	l, _ := Compress(nil, LZ4, src)
	if ok, err := lz4.ValidFrameHeader(l); !ok || err != nil {
		t.Fatalf("lz4 frame header: %v", err)
	}
}

func TestDecompressCorrupt(t *testing.T) {
	src := testPayload(50_000)
	for _, c := range []Compression{Gzip, Snappy, LZ4, Zstd} {
		comp, _ := Compress(nil, c, src)
		flipped := bytes.Clone(comp)
		flipped[len(flipped)/2] ^= 0xff
		flipped[len(flipped)/2+1] ^= 0x55
		cases := map[string][]byte{
			"garbage":   bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 50),
			"truncated": comp[:len(comp)-7],
			"flipped":   flipped,
		}
		if c == Snappy {
			delete(cases, "flipped") // snappy carries no checksum: flipped literals decode
		}
		for name, data := range cases {
			out, err := Decompress([]byte("keep"), c, data, 1<<20)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v %s: %v, want ErrCorrupt", c, name, err)
			}
			if string(out) != "keep" {
				t.Errorf("%v %s: dst not restored on error: %q…", c, name, out[:min(len(out), 8)])
			}
		}
	}
	xer, _ := Compress(nil, Snappy, src)
	for name, data := range map[string][]byte{
		"xerial trailing bytes": append(bytes.Clone(xer), 0, 0),
		"xerial block past end": append(bytes.Clone(xer[:xerialHeaderSize]), 0, 0, 1, 0, 1, 2),
	} {
		if _, err := Decompress(nil, Snappy, data, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestDecompressionBomb: 100 MiB of zeros compresses to a few hundred KiB;
// with a 1 MiB limit Decompress must fail without materialising it.
func TestDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 100 MiB")
	}
	zeros := make([]byte, 100<<20)
	var gz bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	gw.Write(zeros)
	gw.Close()
	bombs := map[Compression][]byte{Gzip: gz.Bytes()}
	for _, c := range []Compression{Snappy, LZ4, Zstd} {
		b, err := Compress(nil, c, zeros)
		if err != nil {
			t.Fatal(err)
		}
		bombs[c] = b
	}
	rawSnappy := snappy.Encode(nil, zeros)
	zeros = nil
	runtime.GC()

	check := func(name string, c Compression, data []byte) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decompress(nil, c, data, 1<<20)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", name, err)
		}
		// The output buffer stays under ~2 MiB; codec state adds a little.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: allocated %d MiB for a 1 MiB limit", name, alloc>>20)
		}
		t.Logf("%s: %d KiB compressed, %d KiB allocated", name, len(data)>>10, (after.TotalAlloc-before.TotalAlloc)>>10)
	}
	for c, data := range bombs {
		check(c.String(), c, data)
	}
	check("snappy raw", Snappy, rawSnappy)

	// Inside a batch on a compacted topic, the same bomb is ErrTooLarge.
	batch := testHeader(Gzip)
	batch.LastOffsetDelta, batch.NumRecords = 0, 1
	b := appendHeader(nil, &batch)
	b = append(b, bombs[Gzip]...)
	put32(b, offBatchLength, int32(len(b)-lengthOverhead))
	b[offMagic] = 2
	fixCRC(b)
	cfg := testConfig()
	cfg.MaxBatchBytes = 0
	cfg.RequireKeys, cfg.MaxDecompressedBytes = true, 1<<20
	if _, err := Validate(nil, b, cfg); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Validate(bomb) = %v", err)
	}
	cfg.RequireKeys = false // not inspected otherwise: stored as sent
	if _, err := Validate(nil, b, cfg); err != nil {
		t.Fatalf("Validate(bomb, no key check) = %v", err)
	}
}
