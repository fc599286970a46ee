package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/metadata"
)

// fakeController answers like the active controller: registration gives epochs 10, 11, …;
// a heartbeat unfences once the metadata offset reached the epoch; a heartbeat with an old
// epoch is stale; shutdown is allowed after two heartbeats asking for it.
type fakeController struct {
	mu        sync.Mutex
	epoch     int64
	regs      int
	shutdowns int
	down      bool // every call fails as with no controller
	forget    bool // the next heartbeat is answered as from an unknown registration
}

func (f *fakeController) RegisterBroker(_ context.Context, reg metadata.RegisterBrokerRecord) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, ErrNoController
	}
	if reg.IncarnationID == ([16]byte{}) {
		return 0, errors.New("no incarnation id")
	}
	f.regs++
	f.epoch = int64(9 + f.regs)
	return f.epoch, nil
}

func (f *fakeController) Heartbeat(_ context.Context, hb controller.Heartbeat) (controller.HeartbeatResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.down:
		return controller.HeartbeatResult{}, ErrNoController
	case f.forget:
		f.forget = false
		return controller.HeartbeatResult{}, controller.ErrStaleBrokerEpoch
	case hb.BrokerEpoch != f.epoch:
		return controller.HeartbeatResult{}, controller.ErrStaleBrokerEpoch
	}
	res := controller.HeartbeatResult{IsCaughtUp: hb.MetadataOffset >= uint64(hb.BrokerEpoch)}
	res.IsFenced = !res.IsCaughtUp
	if hb.WantShutDown {
		f.shutdowns++
		res.ShouldShutDown = f.shutdowns >= 2
	}
	return res, nil
}

func (f *fakeController) AlterPartition(context.Context, int32, int64, []controller.ISRChange) []controller.ISRResult {
	return nil
}

func (f *fakeController) AllocateProducerIDs(context.Context, int32, int64) (int64, error) {
	return 0, nil
}

func (f *fakeController) set(fn func(f *fakeController)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func startMember(t *testing.T, f *fakeController, applied *atomicUint) *Membership {
	t.Helper()
	old := afterRetry
	afterRetry = func() <-chan time.Time { return time.After(time.Millisecond) }
	t.Cleanup(func() { afterRetry = old })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := StartMembership(ctx, MembershipConfig{Registration: metadata.RegisterBrokerRecord{BrokerID: 1},
		Interval: 5 * time.Millisecond, Applied: applied.load, Controller: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

type atomicUint struct {
	mu sync.Mutex
	v  uint64
}

func (a *atomicUint) load() uint64 { a.mu.Lock(); defer a.mu.Unlock(); return a.v }
func (a *atomicUint) store(v uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.v = v
}

func TestMembershipUnfencesOnceCaughtUp(t *testing.T) {
	f := &fakeController{}
	applied := &atomicUint{}
	m := startMember(t, f, applied)
	if m.Epoch() != 10 || !m.Fenced() {
		t.Fatalf("after registration: epoch %d fenced %v", m.Epoch(), m.Fenced())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := m.WaitUnfenced(ctx); err == nil {
		t.Fatal("unfenced before the broker applied its registration")
	}
	cancel()
	applied.store(10)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.WaitUnfenced(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMembershipRegistersAgainWhenForgotten(t *testing.T) {
	f := &fakeController{}
	applied := &atomicUint{v: 1 << 20}
	m := startMember(t, f, applied)
	f.set(func(f *fakeController) { f.forget = true })
	deadline := time.Now().Add(5 * time.Second)
	for m.Epoch() != 11 {
		if time.Now().After(deadline) {
			t.Fatalf("epoch %d, want a second registration (11)", m.Epoch())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMembershipControlledShutdown(t *testing.T) {
	f := &fakeController{}
	m := startMember(t, f, &atomicUint{v: 1 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.ShutDown(ctx); err != nil {
		t.Fatalf("controlled shutdown: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdowns < 2 {
		t.Fatalf("stopped after %d shutdown heartbeats, want the controller's go-ahead", f.shutdowns)
	}
}

func TestMembershipShutdownWithoutController(t *testing.T) {
	f := &fakeController{}
	m := startMember(t, f, &atomicUint{v: 1 << 20})
	f.set(func(f *fakeController) { f.down = true })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := m.ShutDown(ctx); !errors.Is(err, ErrNoController) {
		t.Fatalf("shutdown with no controller: %v, want %v", err, ErrNoController)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("shutdown waited for its deadline instead of giving up")
	}
}

// TestRouter: calls go to the local controller while this node leads, to the remote one
// otherwise, and a NOT_CONTROLLER answer is retried (on whichever leads then).
func TestRouter(t *testing.T) {
	old := afterRetry
	afterRetry = func() <-chan time.Time { return time.After(time.Millisecond) }
	defer func() { afterRetry = old }()
	local, remote := &countingController{}, &countingController{failFirst: true}
	leader := false
	r := &Router{Local: local, Remote: remote, IsLeader: func() bool { return leader }}
	ctx := context.Background()
	if _, err := r.AllocateProducerIDs(ctx, 1, 10); err != nil {
		t.Fatal(err)
	}
	if remote.calls != 2 || local.calls != 0 {
		t.Fatalf("remote %d local %d calls, want 2 (one NOT_CONTROLLER retried) and 0", remote.calls, local.calls)
	}
	leader = true
	if _, err := r.AllocateProducerIDs(ctx, 1, 10); err != nil {
		t.Fatal(err)
	}
	if local.calls != 1 {
		t.Fatalf("local %d calls, want 1", local.calls)
	}
}

type countingController struct {
	fakeController
	calls     int
	failFirst bool
}

func (c *countingController) AllocateProducerIDs(context.Context, int32, int64) (int64, error) {
	c.calls++
	if c.failFirst && c.calls == 1 {
		return 0, CodeError(41, nil) // NOT_CONTROLLER
	}
	return 1000, nil
}
