// Command kongo is the Kongo IoT example on Poste's streams library: trucks load and unload
// goods at warehouses, each movement an Event on kongo-events keyed by the truck's id. A
// windowed, per-truck running weight (tumbling windows of --window) detects overloaded
// trucks: every load that takes a truck above --limit-kg writes a Violation to kongo-alerts.
// Keys are strings, values JSON. It creates both topics if they are missing and stops
// cleanly on SIGINT/SIGTERM.
//
//	go run ./examples/kongo --brokers localhost:9092 --simulate 1000
//	go run ./examples/kongo --describe [--format mermaid|dot]   # print the topology and exit
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/pkg/streams"
)

func main() {
	def := os.Getenv("POSTE_BROKERS")
	if def == "" {
		def = "localhost:9092"
	}
	brokers := flag.String("brokers", def, "bootstrap brokers, comma-separated (default $POSTE_BROKERS or localhost:9092)")
	appID := flag.String("application-id", "kongo", "application.id: consumer group and internal topic prefix")
	guarantee := flag.String("processing-guarantee", streams.AtLeastOnce, "at_least_once or exactly_once_v2")
	limit := flag.Int64("limit-kg", 10000, "a truck above this many kg is overloaded")
	window := flag.Duration("window", time.Hour, "tumbling window of the running weight")
	grace := flag.Duration("grace", time.Minute, "grace period for late events")
	simulate := flag.Int("simulate", 0, "first produce this many random load/unload events to kongo-events")
	trucks := flag.Int("trucks", 5, "--simulate: number of trucks")
	stateDir := flag.String("state-dir", os.TempDir()+"/poste-streams", "state.dir, where persistent stores live")
	persistent := flag.Bool("persistent", false, "keep the stores on disk (Pebble, under --state-dir) instead of in memory")
	describe := flag.Bool("describe", false, "print the topology and exit")
	format := flag.String("format", "text", "--describe format: text (Kafka's TopologyDescription), mermaid or dot")
	flag.Parse()

	t := topology(params{limitKg: *limit, window: *window, grace: *grace})
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
	if *trucks < 1 {
		fail(errors.New("--trucks must be at least 1"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seeds := strings.Split(*brokers, ",")
	if err := createTopics(ctx, seeds); err != nil {
		fail(err)
	}
	if *simulate > 0 {
		if err := produce(ctx, seeds, simulateEvents(rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)), *simulate, *trucks, *limit)); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "kongo: produced %d events to %s\n", *simulate, eventsTopic)
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

var (
	warehouses = []string{"Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide", "Hobart", "Darwin", "Canberra"}
	goods      = []string{"fish", "bananas", "steel", "paint", "pianos", "books", "cement", "toys"}
)

// simulateEvents returns n random movements, spread over trucks, one second apart. Trucks
// load a little more often than they unload, and never unload more than they carry, so some
// of them creep above limitKg.
func simulateEvents(rng *rand.Rand, n, trucks int, limitKg int64) []Event {
	carried := make([]int64, trucks)
	out := make([]Event, 0, n)
	for range n {
		i := rng.IntN(trucks)
		e := Event{Truck: fmt.Sprintf("truck-%d", i+1), Warehouse: warehouses[rng.IntN(len(warehouses))],
			Goods: goods[rng.IntN(len(goods))], Op: "load", Kg: 1 + rng.Int64N(max(limitKg/4, 1))}
		if carried[i] > 0 && rng.IntN(5) < 2 {
			e.Op, e.Kg = "unload", 1+rng.Int64N(carried[i])
			carried[i] -= e.Kg
		} else {
			carried[i] += e.Kg
		}
		out = append(out, e)
	}
	return out
}

// produce writes the events keyed by truck, timestamped one second apart ending now.
func produce(ctx context.Context, seeds []string, events []Event) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now().Add(-time.Duration(len(events)) * time.Second)
	recs := make([]*kgo.Record, 0, len(events))
	for i, e := range events {
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: eventsTopic, Key: []byte(e.Truck), Value: v, Timestamp: start.Add(time.Duration(i) * time.Second)})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// createTopics creates the input and output topics with the broker's defaults if missing.
func createTopics(ctx context.Context, seeds []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, -1, -1, nil, eventsTopic, alertsTopic)
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
	fmt.Fprintln(os.Stderr, "kongo:", err)
	os.Exit(1)
}

func storeType(persistent bool) streams.StoreType {
	if persistent {
		return streams.Persistent
	}
	return streams.InMemory
}
