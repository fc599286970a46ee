// Command anomaly is an anomaly detector on Poste's streams library: for each key (a sensor)
// it keeps a sliding window of the key's recent values and flags every value more than --k
// standard deviations from the window's mean. Readings come from anomaly-input (key: the
// sensor id as a string; value: an 8-byte big-endian float64, as Kafka's DoubleSerializer
// writes it); anomalies go to anomaly-alerts as JSON keyed by sensor. It creates both topics
// if they are missing and stops cleanly on SIGINT/SIGTERM.
//
//	go run ./examples/anomaly --brokers localhost:9092 --simulate 2000
//	go run ./examples/anomaly --describe [--format mermaid|dot]   # print the topology and exit
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
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
	appID := flag.String("application-id", "anomaly", "application.id: consumer group and internal topic prefix")
	guarantee := flag.String("processing-guarantee", streams.AtLeastOnce, "at_least_once or exactly_once_v2")
	k := flag.Float64("k", 3, "flag values more than k standard deviations from the window's mean")
	window := flag.Duration("window", time.Minute, "sliding window of earlier values a value is compared with")
	minSamples := flag.Int("min-samples", 10, "judge a value only once its window holds this many earlier values")
	simulate := flag.Int("simulate", 0, "first produce this many random readings (about 1% of them spikes) to anomaly-input")
	sensors := flag.Int("sensors", 3, "--simulate: number of sensors")
	stateDir := flag.String("state-dir", os.TempDir()+"/poste-streams", "state.dir, where persistent stores live")
	persistent := flag.Bool("persistent", false, "keep the stores on disk (Pebble, under --state-dir) instead of in memory")
	describe := flag.Bool("describe", false, "print the topology and exit")
	format := flag.String("format", "text", "--describe format: text (Kafka's TopologyDescription), mermaid or dot")
	flag.Parse()

	if *k <= 0 || *window <= 0 || *minSamples < 2 || *sensors < 1 {
		fail(errors.New("need --k > 0, --window > 0, --min-samples >= 2 and --sensors >= 1"))
	}
	t := topology(params{k: *k, window: *window, minSamples: *minSamples})
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
	if *simulate > 0 {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
		if err := produce(ctx, seeds, simulateReadings(rng, *simulate, *sensors)); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "anomaly: produced %d readings to %s\n", *simulate, inputTopic)
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

// reading is one simulated sensor value.
type reading struct {
	sensor string
	value  float64
	spike  bool
}

// simulateReadings returns n readings spread over sensors: each sensor's values are normal
// around its own level (20, 30, 40 … with deviation 1), and about 1 % of them are spikes 8
// to 12 deviations away.
func simulateReadings(rng *rand.Rand, n, sensors int) []reading {
	out := make([]reading, 0, n)
	for range n {
		i := rng.IntN(sensors)
		r := reading{sensor: fmt.Sprintf("sensor-%d", i+1), value: float64(20+10*i) + rng.NormFloat64()}
		if rng.IntN(100) == 0 {
			d := 8 + 4*rng.Float64()
			if rng.IntN(2) == 0 {
				d = -d
			}
			r.value, r.spike = float64(20+10*i)+d, true
		}
		out = append(out, r)
	}
	return out
}

// produce writes the readings keyed by sensor, timestamped 100 ms apart ending now.
func produce(ctx context.Context, seeds []string, readings []reading) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now().Add(-time.Duration(len(readings)) * 100 * time.Millisecond)
	recs := make([]*kgo.Record, 0, len(readings))
	for i, r := range readings {
		v := binary.BigEndian.AppendUint64(nil, math.Float64bits(r.value))
		recs = append(recs, &kgo.Record{Topic: inputTopic, Key: []byte(r.sensor), Value: v, Timestamp: start.Add(time.Duration(i) * 100 * time.Millisecond)})
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
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, -1, -1, nil, inputTopic, alertsTopic)
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
	fmt.Fprintln(os.Stderr, "anomaly:", err)
	os.Exit(1)
}

func storeType(persistent bool) streams.StoreType {
	if persistent {
		return streams.Persistent
	}
	return streams.InMemory
}
