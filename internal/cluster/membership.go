package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/metadata"
)

// afterRetry is the pause between two attempts of a controller request; a variable so that
// tests can shorten it.
var afterRetry = func() <-chan time.Time { return time.After(100 * time.Millisecond) }

// MembershipConfig configures a broker's membership.
type MembershipConfig struct {
	// Registration is this broker's registration (id, endpoints, rack); IncarnationID is
	// filled with a new id at each Start.
	Registration metadata.RegisterBrokerRecord
	// Interval is broker.heartbeat.interval.ms.
	Interval time.Duration
	// Applied returns the index of the last metadata entry this broker has applied (to its
	// partitions, not only folded): the controller unfences the broker once it reaches the
	// broker's registration.
	Applied    func() uint64
	Controller Controller
	Logger     *slog.Logger
}

// Membership registers this broker with the active controller and keeps it registered with
// heartbeats, as Kafka's broker lifecycle manager does (KIP-631).
//
// Invariants: epoch is the epoch of the latest successful registration; fenced mirrors the
// controller's latest answer (true until the first heartbeat says otherwise); after
// ShutDown returned, no heartbeat is sent. The heartbeat loop is one goroutine; every method
// is safe for concurrent use.
type Membership struct {
	cfg  MembershipConfig
	lg   *slog.Logger
	stop context.CancelFunc
	done chan struct{}

	mu struct {
		sync.Mutex
		epoch        int64
		fenced       bool
		wantShutdown bool
		shouldStop   bool
		failures     int           // heartbeats failed in a row
		changed      chan struct{} // closed and replaced when fenced or shouldStop change
	}
}

// StartMembership registers the broker (retrying until ctx ends or it succeeds) and starts
// heartbeating. The broker is fenced until WaitUnfenced returns.
func StartMembership(ctx context.Context, cfg MembershipConfig) (*Membership, error) {
	m := &Membership{cfg: cfg, lg: cfg.Logger, done: make(chan struct{})}
	if m.lg == nil {
		m.lg = slog.Default()
	}
	m.mu.fenced = true
	m.mu.changed = make(chan struct{})
	m.cfg.Registration.IncarnationID = metadata.NewUUID()
	if err := m.register(ctx); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.loop(lctx)
	return m, nil
}

func (m *Membership) register(ctx context.Context) error {
	for {
		epoch, err := m.cfg.Controller.RegisterBroker(ctx, m.cfg.Registration)
		if err == nil {
			m.mu.Lock()
			m.mu.epoch = epoch
			m.mu.Unlock()
			m.lg.Info("broker registered", "broker.epoch", epoch)
			return nil
		}
		m.lg.Warn("broker registration failed; retrying", "err", err)
		if !wait(ctx) {
			return err
		}
	}
}

// Epoch returns the broker epoch of the current registration.
func (m *Membership) Epoch() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.epoch
}

// Fenced reports whether the controller last said this broker is fenced.
func (m *Membership) Fenced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.fenced
}

// WaitUnfenced waits until the controller has unfenced this broker.
func (m *Membership) WaitUnfenced(ctx context.Context) error {
	return m.waitFor(ctx, func() bool { return !m.mu.fenced })
}

func (m *Membership) waitFor(ctx context.Context, cond func() bool) error {
	for {
		m.mu.Lock()
		ok, ch := cond(), m.mu.changed
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-m.done:
			return errors.New("membership stopped")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *Membership) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat sends one heartbeat and records the answer; a stale epoch or a forgotten
// registration (a controller that lost it, or fenced and unregistered us) re-registers.
func (m *Membership) beat(ctx context.Context) {
	m.mu.Lock()
	hb := controller.Heartbeat{BrokerID: m.cfg.Registration.BrokerID, BrokerEpoch: m.mu.epoch,
		MetadataOffset: m.cfg.Applied(), WantShutDown: m.mu.wantShutdown}
	m.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, 2*m.cfg.Interval+time.Second)
	defer cancel()
	res, err := m.cfg.Controller.Heartbeat(hctx, hb)
	switch {
	case errors.Is(err, controller.ErrStaleBrokerEpoch), errors.Is(err, controller.ErrBrokerNotRegistered):
		m.lg.Warn("controller does not know this registration; registering again", "err", err)
		m.setState(true, false)
		_ = m.register(hctx)
		return
	case err != nil:
		if ctx.Err() == nil {
			m.lg.Debug("heartbeat failed", "err", err)
		}
		m.mu.Lock()
		m.mu.failures++
		if m.mu.wantShutdown && m.mu.failures == shutdownGiveUp {
			close(m.mu.changed) // wake ShutDown: no controller to move leaderships
			m.mu.changed = make(chan struct{})
		}
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	m.mu.failures = 0
	m.mu.Unlock()
	m.setState(res.IsFenced, res.ShouldShutDown)
}

func (m *Membership) setState(fenced, shouldStop bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fenced == m.mu.fenced && shouldStop == m.mu.shouldStop {
		return
	}
	if fenced != m.mu.fenced {
		if fenced {
			m.lg.Warn("broker fenced by the controller")
		} else {
			m.lg.Info("broker unfenced")
		}
	}
	m.mu.fenced, m.mu.shouldStop = fenced, shouldStop
	close(m.mu.changed)
	m.mu.changed = make(chan struct{})
}

// shutdownGiveUp is how many heartbeats in a row may fail before a controlled shutdown gives
// up (no controller is reachable to move the leaderships).
const shutdownGiveUp = 3

// ShutDown runs a controlled shutdown: heartbeats ask the controller to move this broker's
// leaderships away until it answers should_shut_down or ctx ends; then heartbeats stop.
func (m *Membership) ShutDown(ctx context.Context) error {
	m.mu.Lock()
	m.mu.wantShutdown = true
	m.mu.Unlock()
	err := m.waitFor(ctx, func() bool { return m.mu.shouldStop || m.mu.failures >= shutdownGiveUp })
	m.mu.Lock()
	if err == nil && !m.mu.shouldStop {
		err = ErrNoController
	}
	m.mu.Unlock()
	m.Close()
	return err
}

// Close stops heartbeating without a controlled shutdown (the controller fences the broker
// when its session times out).
func (m *Membership) Close() {
	m.stop()
	<-m.done
}
