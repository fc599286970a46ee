// Package limits measures the machine's limits with `poste bench limits` and
// renders them as the table every benchmark report starts with, so that a
// result can be read against what the machine could do in the same session.
package limits

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Run is one `poste bench limits --json`: the fields the reports show, and
// when it was taken ("start", "end"). A plain value.
type Run struct {
	When     string  `json:"when"`
	Load1    float64 `json:"load1"`
	Loopback struct {
		MBPerS float64 `json:"mb_per_s"`
	} `json:"loopback_tcp"`
	Write struct {
		MBPerS float64 `json:"mb_per_s"`
	} `json:"write"`
	WriteFsync struct {
		MBPerS float64 `json:"mb_per_s"`
	} `json:"write_fsync"`
	Fsync struct {
		P50 float64 `json:"p50_us"`
		P99 float64 `json:"p99_us"`
	} `json:"fsync_4kib"`
}

// Measure runs `poste bench limits` (the binary poste) with its probe files
// in dir, each throughput probe moving size bytes.
func Measure(ctx context.Context, poste, dir, size, when string) (Run, error) {
	out, err := exec.CommandContext(ctx, poste, "bench", "limits", "--dir", dir, "--size", size, "--json").Output()
	if err != nil {
		return Run{}, fmt.Errorf("poste bench limits: %v", err)
	}
	var r Run
	if err := json.Unmarshal(out, &r); err != nil {
		return Run{}, fmt.Errorf("poste bench limits: %v: %s", err, out)
	}
	r.When = when
	return r, nil
}

// String is the run as one log line.
func (r Run) String() string {
	return fmt.Sprintf("limits (%s): loopback %.0f MB/s, write %.0f MB/s, write+fsync %.0f MB/s, fsync 4 KiB p50 %.0f µs p99 %.0f µs, load %.2f",
		r.When, r.Loopback.MBPerS, r.Write.MBPerS, r.WriteFsync.MBPerS, r.Fsync.P50, r.Fsync.P99, r.Load1)
}

// Table renders runs as a Markdown table, one row per run.
func Table(runs []Run) string {
	var b strings.Builder
	b.WriteString("| `poste bench limits` | loopback TCP | write to page cache | write + fsync every MiB | fsync after 4 KiB p50 / p99 | load (1 min) |\n|---|---|---|---|---|---|\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %s | %.0f MB/s | %.0f MB/s | %.0f MB/s | %.0f µs / %.0f µs | %.2f |\n",
			r.When, r.Loopback.MBPerS, r.Write.MBPerS, r.WriteFsync.MBPerS, r.Fsync.P50, r.Fsync.P99, r.Load1)
	}
	return b.String()
}
