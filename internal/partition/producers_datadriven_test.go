package partition

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/poste-io/poste/internal/vfs"
)

// TestProducerStateTranscripts runs testdata/producers*.txt: idempotent appends, retries,
// fencing and reopening, each step printing what the partition answered.
//
//	append pid=<id> epoch=<e> seq=<first> n=<records>   (pid=-1: not idempotent)
//	reopen                                               (close and open the same log)
//	end                                                  (print the log end offset)
func TestProducerStateTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		fs := vfs.NewMem()
		cfg := testConfig(fs)
		p, err := Open("/data/t-0", "t", [16]byte{1}, 0, 0, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { p.Close() }()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "append":
				var pid, epoch, seq, n int
				d.ScanArgs(t, "pid", &pid)
				d.ScanArgs(t, "n", &n)
				if d.HasArg("epoch") {
					d.ScanArgs(t, "epoch", &epoch)
				}
				if d.HasArg("seq") {
					d.ScanArgs(t, "seq", &seq)
				}
				res, err := p.Append(batch(t, n, int64(pid), int16(epoch), int32(seq)))
				if err != nil {
					return "error: " + errName(err) + "\n"
				}
				if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second)); err != nil {
					return "commit error: " + err.Error() + "\n"
				}
				dup := ""
				if res.Duplicate {
					dup = " (duplicate)"
				}
				return fmt.Sprintf("offsets %d-%d%s\n", res.BaseOffset, res.LastOffset, dup)
			case "reopen":
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				if p, err = Open("/data/t-0", "t", [16]byte{1}, 0, 0, cfg); err != nil {
					t.Fatal(err)
				}
				return "ok\n"
			case "end":
				return fmt.Sprintf("%d\n", p.LogEndOffset())
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func errName(err error) string {
	for _, e := range []error{ErrOutOfOrderSeq, ErrInvalidEpoch, ErrStorage, ErrTooManyBatches} {
		if errors.Is(err, e) {
			return strings.ReplaceAll(e.Error(), " ", "_")
		}
	}
	return err.Error()
}
