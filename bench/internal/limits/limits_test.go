package limits

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRunDecodesAndRenders(t *testing.T) {
	var r Run
	in := `{"load1":0.5,"loopback_tcp":{"mb_per_s":4000},"write":{"mb_per_s":500},"write_fsync":{"mb_per_s":1200},"fsync_4kib":{"p50_us":180,"p99_us":300}}`
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	r.When = "start"
	table := Table([]Run{r})
	if want := "| start | 4000 MB/s | 500 MB/s | 1200 MB/s | 180 µs / 300 µs | 0.50 |\n"; !strings.HasSuffix(table, want) {
		t.Fatalf("table ends %q, want %q", table, want)
	}
	if s := r.String(); !strings.Contains(s, "loopback 4000 MB/s") || !strings.Contains(s, "p99 300 µs") {
		t.Fatalf("log line %q", s)
	}
}
