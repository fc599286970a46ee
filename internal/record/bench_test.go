package record

import (
	"testing"
)

// BenchmarkValidate validates a 1 MiB produce payload of 1 KiB records: the
// broker's per-byte cost on the produce path.
func BenchmarkValidate(b *testing.B) {
	for _, c := range []Compression{None, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			value := testPayload(1024)
			recs := make([]Record, 1000)
			for i := range recs {
				recs[i] = Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte("key"), Value: value}
			}
			data := mustBuild(b, testHeader(c), recs)
			cfg := testConfig()
			cfg.MaxBatchBytes = 2 << 20
			dst := make([]BatchInfo, 0, 1)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = Validate(dst[:0], data, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
