// Package testkit holds test-only helpers: an in-process broker on a free port in a temp dir.
package testkit

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/broker"
	"github.com/poste-io/poste/internal/config"
)

// Broker is an in-process broker for a test.
type Broker struct {
	t     testing.TB
	Dir   string
	Addr  string
	B     *broker.Broker
	extra map[string]string
}

// StartBroker starts a broker on 127.0.0.1:0 with its data in a fresh temp dir. extra are
// configuration overrides (Kafka keys).
func StartBroker(t testing.TB, extra map[string]string) *Broker {
	t.Helper()
	tb := &Broker{t: t, Dir: t.TempDir(), extra: extra}
	tb.start()
	t.Cleanup(func() { tb.Stop() })
	return tb
}

func (tb *Broker) start() {
	tb.t.Helper()
	ov := map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:0",
		"log.dirs":  tb.Dir,
	}
	for k, v := range tb.extra {
		ov[k] = v
	}
	cfg, _, err := config.Load("", nil, ov)
	if err != nil {
		tb.t.Fatalf("config: %v", err)
	}
	b, err := broker.Start(cfg, Logger())
	if err != nil {
		tb.t.Fatalf("start broker: %v", err)
	}
	tb.B = b
	tb.Addr = b.Addrs()[0].String()
}

// Stop shuts the broker down cleanly (idempotent).
func (tb *Broker) Stop() {
	if tb.B == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tb.B.Shutdown(ctx); err != nil {
		tb.t.Errorf("shutdown: %v", err)
	}
	tb.B = nil
}

// Restart stops the broker and starts a new one on the same data directory (on a new port).
func (tb *Broker) Restart() {
	tb.t.Helper()
	tb.Stop()
	tb.start()
}

// Logger returns a logger for brokers under test: quiet unless POSTE_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("POSTE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
