// Command clusterbench measures a 3-node Poste cluster on one machine:
//
//	clusterbench throughput --poste BIN [--rounds 3] [--records 1000000]
//	clusterbench failover   --poste BIN [--kills 20]
//
// throughput alternates a single `poste serve` and a `poste dev cluster` of
// three nodes, each driven by the same `poste bench produce` (1 KiB records,
// 8 partitions, acks=all, idempotent; replication factor 1 on the single
// node, 3 on the cluster), measures the machine with `poste bench limits` at
// the start and the end, and reports medians and the cluster/single ratios.
//
// failover starts three `poste serve` nodes from their own configuration
// files (broker defaults untouched), produces acks=all to a 1-partition topic
// with replication factor 3 and min.insync.replicas=2 without pause, then
// repeatedly SIGKILLs the partition's leader and measures how long until
// the first record sent after the kill is acknowledged, restarting the node
// and waiting for a full ISR between kills.
//
// Both print a Markdown report on stdout and keep it, the raw results as
// JSON and every process's log in the work directory.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "throughput":
		err = throughputMain(ctx, os.Args[2:])
	case "failover":
		err = failoverMain(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: clusterbench throughput|failover [flags] (-h for the flags)")
	os.Exit(2)
}

// workdir returns dir, created, or a new temporary directory.
func workdir(dir, prefix string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", prefix)
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// writeReport prints md and saves it to path when path is set.
func writeReport(md, path string) error {
	fmt.Print(md)
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(md), 0o644)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond))
}

// commaInt formats n with thousands separators.
func commaInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
