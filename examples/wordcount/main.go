// Command wordcount is Kafka Streams' quickstart demo on Poste's streams library: it reads
// lines from streams-plaintext-input, splits them into lower-cased words on non-word
// characters, and writes the running count of each word to streams-wordcount-output (key: the
// word as a string; value: the count as an 8-byte big-endian int64, as Kafka's LongSerializer
// writes it). It creates both topics if they are missing and stops cleanly on SIGINT/SIGTERM.
//
//	go run ./examples/wordcount --brokers localhost:9092
//	go run ./examples/wordcount --describe [--format mermaid|dot]   # print the topology and exit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/pkg/streams"
)

const (
	inputTopic  = "streams-plaintext-input"
	outputTopic = "streams-wordcount-output"
)

var nonWord = regexp.MustCompile(`\W+`)

// topology is the word count: lines → words → grouped by word → count → output.
func topology() *streams.Topology {
	t := streams.NewTopology()
	lines := streams.From(t, inputTopic, streams.String(), streams.String())
	words := streams.FlatMapValues(lines, func(_, line string) []string {
		var out []string
		for _, w := range nonWord.Split(strings.ToLower(line), -1) {
			if w != "" {
				out = append(out, w)
			}
		}
		return out
	})
	streams.GroupBy(words, func(_, w string) string { return w }, streams.String(), nil).
		Count("counts-store").ToStream().To(outputTopic)
	return t
}

func main() {
	def := os.Getenv("POSTE_BROKERS")
	if def == "" {
		def = "localhost:9092"
	}
	brokers := flag.String("brokers", def, "bootstrap brokers, comma-separated (default $POSTE_BROKERS or localhost:9092)")
	appID := flag.String("application-id", "streams-wordcount", "application.id: consumer group and internal topic prefix")
	guarantee := flag.String("processing-guarantee", streams.AtLeastOnce, "at_least_once or exactly_once_v2")
	stateDir := flag.String("state-dir", os.TempDir()+"/poste-streams", "state.dir, where persistent stores live")
	persistent := flag.Bool("persistent", false, "keep the stores on disk (Pebble, under --state-dir) instead of in memory")
	describe := flag.Bool("describe", false, "print the topology and exit")
	format := flag.String("format", "text", "--describe format: text (Kafka's TopologyDescription), mermaid or dot")
	flag.Parse()

	t := topology()
	switch {
	case !*describe:
	case *format == "text":
		fmt.Print(t.Describe().String())
		return
	case *format == "mermaid":
		fmt.Print(t.Describe().Mermaid())
		return
	case *format == "dot":
		fmt.Print(t.Describe().DOT())
		return
	default:
		fail(fmt.Errorf("--format: want text, mermaid or dot, got %q", *format))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seeds := strings.Split(*brokers, ",")
	if err := createTopics(ctx, seeds); err != nil {
		fail(err)
	}
	app, err := streams.New(t, streams.Config{
		ApplicationID:       *appID,
		Brokers:             seeds,
		ProcessingGuarantee: *guarantee,
		StateDir:            *stateDir,
		DefaultStoreType:    storeType(*persistent),
		CommitInterval:      time.Second,
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fail(err)
	}
	if err := app.Run(ctx); err != nil {
		fail(err)
	}
}

// createTopics creates the input and output topics with the broker's defaults if missing.
func createTopics(ctx context.Context, seeds []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resps, err := adm.CreateTopics(ctx, -1, -1, nil, inputTopic, outputTopic)
	if err != nil {
		return err
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wordcount:", err)
	os.Exit(1)
}

func storeType(persistent bool) streams.StoreType {
	if persistent {
		return streams.Persistent
	}
	return streams.InMemory
}
