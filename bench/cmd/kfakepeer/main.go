// Command kfakepeer runs franz-go's kfake as the benchmark's peer broker: one
// broker on 127.0.0.1:PORT that persists to a data directory and fsyncs every
// produced batch before acknowledging it (kfake.DataDir + kfake.SyncWrites),
// with the benchmark topic created up front. It runs until SIGINT or SIGTERM.
//
//	kfakepeer --port 9092 --data-dir /tmp/kfake --topic bench --partitions 8
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "TCP port on 127.0.0.1 (0 picks a free one)")
	dataDir := flag.String("data-dir", "", "directory kfake persists to (required)")
	topic := flag.String("topic", "bench", "topic created at start")
	partitions := flag.Int("partitions", 8, "partitions of the topic, and of auto-created topics")
	noSync := flag.Bool("no-sync", false, "do not fsync each batch (kfake without SyncWrites)")
	cpuProfile := flag.String("cpuprofile", "", "write a Go CPU profile of the whole run to this file")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "kfakepeer: --data-dir is required")
		os.Exit(2)
	}
	if err := run(*port, *dataDir, *topic, int32(*partitions), !*noSync, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "kfakepeer:", err)
		os.Exit(1)
	}
}

func run(port int, dataDir, topic string, partitions int32, sync bool, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dataDir),
		kfake.SeedTopics(partitions, topic),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.AllowAutoTopicCreation(),
	}
	if sync {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	fmt.Printf("kfake listening on %v, data dir %s, sync writes %v\n", c.ListenAddrs(), dataDir, sync)
	<-sig
	c.Close()
	fmt.Println("kfake stopped")
	return nil
}
