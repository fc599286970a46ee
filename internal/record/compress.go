package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultMaxDecompressedBytes is the decompression cap used wherever a limit
// <= 0 is given.
const DefaultMaxDecompressedBytes = 64 << 20

// zstdMaxWindow bounds the memory a hostile zstd frame can make a decoder
// reserve. Kafka clients at their default levels use windows of a few MiB.
const zstdMaxWindow = 64 << 20

// Snappy as Kafka clients write it comes in two shapes: the Java client and
// librdkafka's Java-compatible mode write xerial framing (a 16-byte header,
// then blocks of big-endian length + raw snappy block); franz-go and
// librdkafka by default write one raw snappy block. Every client reads the
// xerial form (the Java producer writes it), and Java's reader also accepts
// raw blocks, so Poste decodes both and writes xerial.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	xerialBlockSize  = 32 << 10
)

// Codec state is expensive to build (zstd especially), so it lives in pools.
var (
	gzipReaders sync.Pool // *gzip.Reader
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	// zstdDecoders hold synchronous stream decoders: one goroutine, no
	// background workers, so a pooled decoder that is dropped leaks nothing.
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			panic(err) // constant options: cannot fail
		}
		return d
	}}
	zstdEncoderOnce sync.Once
	zstdEncoder     *zstd.Encoder // EncodeAll is safe for concurrent use
)

func sharedZstdEncoder() *zstd.Encoder {
	zstdEncoderOnce.Do(func() {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithWindowSize(1<<20),
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(err) // constant options: cannot fail
		}
		zstdEncoder = e
	})
	return zstdEncoder
}

// Compress appends src compressed with codec c to dst, in the format Kafka
// clients read: gzip, xerial-framed snappy, the LZ4 frame format, or a zstd
// frame. None appends src unchanged.
func Compress(dst []byte, c Compression, src []byte) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return buf.Bytes(), nil
	case Snappy:
		return appendXerial(dst, src), nil
	case LZ4:
		buf := bytes.NewBuffer(dst)
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return buf.Bytes(), nil
	case Zstd:
		return sharedZstdEncoder().EncodeAll(src, dst), nil
	}
	return dst, ErrUnsupportedCompression
}

func appendXerial(dst, src []byte) []byte {
	dst = append(dst, xerialMagic...)
	dst = binary.BigEndian.AppendUint32(dst, 1) // version
	dst = binary.BigEndian.AppendUint32(dst, 1) // minimum compatible version
	for len(src) > 0 {
		n := min(len(src), xerialBlockSize)
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = growTo(dst, len(dst)+s2.MaxEncodedLen(n))
		enc := s2.EncodeSnappy(dst[len(dst):cap(dst)], src[:n])
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(enc)))
		dst = dst[:len(dst)+len(enc)]
		src = src[n:]
	}
	return dst
}

// growTo returns b with capacity for at least n bytes, keeping its length.
func growTo(b []byte, n int) []byte {
	if n <= cap(b) {
		return b
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)[:len(b)]
}

// Decompress appends src decompressed with codec c to dst. At most limit
// bytes are produced (limit <= 0 selects DefaultMaxDecompressedBytes);
// beyond that it stops and returns ErrTooLarge, so a compression bomb costs
// at most about limit bytes of memory. Malformed input is ErrCorrupt.
func Decompress(dst []byte, c Compression, src []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	switch c {
	case None:
		if len(src) > limit {
			return dst, ErrTooLarge
		}
		return append(dst, src...), nil
	case Gzip:
		var r *gzip.Reader
		if v := gzipReaders.Get(); v != nil {
			r = v.(*gzip.Reader)
			if err := r.Reset(bytes.NewReader(src)); err != nil {
				gzipReaders.Put(r)
				return dst, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
		} else {
			var err error
			if r, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
				return dst, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
		}
		defer gzipReaders.Put(r)
		return readLimited(dst, r, limit, len(src))
	case Snappy:
		return decodeSnappy(dst, src, limit)
	case LZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		out, err := readLimited(dst, r, limit, len(src))
		r.Reset(nil) // drop the reference to src before pooling
		return out, err
	case Zstd:
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer zstdDecoders.Put(d)
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		out, err := readLimited(dst, d, limit, len(src))
		_ = d.Reset(nil) // drop the reference to src before pooling
		return out, err
	}
	return dst, ErrUnsupportedCompression
}

// readLimited appends everything r yields to dst, failing with ErrTooLarge
// as soon as more than limit bytes arrive. The buffer grows geometrically
// from a guess based on the compressed size, never past limit+1 bytes.
func readLimited(dst []byte, r io.Reader, limit, srcLen int) ([]byte, error) {
	start := len(dst)
	want := min(limit+1, max(4*srcLen, 4<<10))
	dst = growTo(dst, start+want)
	for {
		if len(dst) == cap(dst) {
			grown := len(dst) - start
			if grown > limit {
				return dst[:start], ErrTooLarge
			}
			dst = growTo(dst, start+min(limit+1, 2*grown))
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], ErrTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
}

func decodeSnappy(dst, src []byte, limit int) ([]byte, error) {
	start := len(dst)
	if len(src) < xerialHeaderSize || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		out, err := decodeSnappyBlock(dst, src, limit)
		if err != nil {
			return dst[:start], err
		}
		return out, nil
	}
	// Sum the blocks' declared sizes first: the limit is then checked, and
	// the buffer sized, before anything is decoded.
	total := 0
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return dst, fmt.Errorf("%w: snappy: truncated xerial block length", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return dst, fmt.Errorf("%w: snappy: xerial block past end", ErrCorrupt)
		}
		dl, err := s2.DecodedLen(rest[:n])
		if err != nil {
			return dst, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
		}
		if total += dl; total > limit {
			return dst, ErrTooLarge
		}
		rest = rest[n:]
	}
	dst = growTo(dst, start+total)
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		n := binary.BigEndian.Uint32(rest)
		var err error
		if dst, err = decodeSnappyBlock(dst, rest[4:4+n], limit-(len(dst)-start)); err != nil {
			return dst[:start], err
		}
		rest = rest[4+n:]
	}
	return dst, nil
}

// decodeSnappyBlock appends one raw snappy block; the decoded length is in
// the block's preamble, so the limit is checked before allocating.
func decodeSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return dst, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	if n > limit {
		return dst, ErrTooLarge
	}
	dst = growTo(dst, len(dst)+n)
	out, err := s2.Decode(dst[len(dst):len(dst)+n], block)
	if err != nil {
		return dst, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	if len(out) != n {
		return dst, fmt.Errorf("%w: snappy: decoded length mismatch", ErrCorrupt)
	}
	return dst[:len(dst)+n], nil
}
