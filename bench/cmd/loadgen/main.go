// Command loadgen runs the benchmark workload once against a running broker:
// create the topic, produce, then consume everything back from the beginning.
// It prints one human-readable summary, or JSON with --json.
//
//	loadgen --brokers 127.0.0.1:9092 --records 1000000 --record-bytes 1024 --partitions 8
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/poste-io/poste/bench/internal/workload"
)

func main() {
	cfg := workload.DefaultConfig()
	cfg.RegisterFlags(flag.CommandLine)
	asJSON := flag.Bool("json", false, "print results as JSON")
	produceOnly := flag.Bool("produce-only", false, "skip the consume phase")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, *asJSON, *produceOnly); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg workload.Config, asJSON, produceOnly bool) error {
	if err := workload.EnsureTopic(ctx, cfg); err != nil {
		return err
	}
	pr, err := workload.Produce(ctx, cfg)
	if err != nil {
		return err
	}
	var cr workload.ConsumeResult
	if !produceOnly {
		if cr, err = workload.Consume(ctx, cfg, pr.EndOffsets); err != nil {
			return err
		}
	}
	if asJSON {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(map[string]any{
			"workload":      cfg.Describe(),
			"produce":       pr,
			"produce_mbps":  pr.MBps(),
			"consume":       cr,
			"consume_mbps":  cr.MBps(),
			"consume_phase": !produceOnly,
		})
	}
	fmt.Println("workload:", cfg.Describe())
	fmt.Printf("produce: %d records, %.1f MB in %v: %.1f MB/s, latency p50 %v p99 %v max %v\n",
		pr.Records, float64(pr.Bytes)/1e6, pr.Elapsed.Round(1e6), pr.MBps(), pr.P50, pr.P99, pr.Max)
	if !produceOnly {
		fmt.Printf("consume: %d records, %.1f MB in %v: %.1f MB/s\n",
			cr.Records, float64(cr.Bytes)/1e6, cr.Elapsed.Round(1e6), cr.MBps())
	}
	return nil
}
