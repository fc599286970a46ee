package txn

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// fireExpiry runs the expiry scan the shard scheduled, as the runtime's clock would at at,
// and returns its result without applying it.
func (h *harness) fireExpiry(at time.Time) coord.Result {
	h.t.Helper()
	fn, when := h.timers.fns[expiryKey], h.timers.at[expiryKey]
	if fn == nil {
		h.t.Fatal("no expiry scan scheduled")
	}
	if at.Before(when) {
		h.t.Fatalf("scan due at %v, fired at %v", when, at)
	}
	h.timers.Cancel(expiryKey)
	return fn(at)
}

func TestTransactionalIDExpiration(t *testing.T) {
	exp := DefaultIDExpiration
	tests := []struct {
		name    string
		setup   func(h *harness) // leaves transactional id "tx" in some state, at h.now
		idle    time.Duration    // time since then when the scan runs
		removed bool
	}{
		{"empty, idle past expiration", func(h *harness) { h.init("tx", -1, 0) }, exp + time.Hour, true},
		{"empty, idle within expiration", func(h *harness) { h.init("tx", -1, 0) }, exp - time.Hour, false},
		{"complete commit", func(h *harness) {
			h.init("tx", -1, 0)
			h.add("tx", 100, 0, "t")
			h.end("tx", 100, 0, true)
			h.completeMarkers("tx")
		}, exp + time.Hour, true},
		{"complete abort of version 2", func(h *harness) {
			h.init("tx", -1, 0)
			h.addV2("tx", 100, 0, "t")
			h.endV2("tx", 100, 0, false, -1)
			h.completeMarkers("tx")
		}, exp + time.Hour, true},
		{"ongoing is never expired", func(h *harness) {
			h.init("tx", -1, 0)
			h.add("tx", 100, 0, "t")
			h.timers.Cancel(timeoutKey("tx")) // a transaction the timeout has not reached yet
		}, exp + time.Hour, false},
		{"decided, markers not written", func(h *harness) {
			h.init("tx", -1, 0)
			h.add("tx", 100, 0, "t")
			h.end("tx", 100, 0, true)
		}, exp + time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			start := h.now
			h.now = start.Add(time.Minute)
			tc.setup(h)
			// Scans run every check interval; the one after the idle time decides.
			at := h.timers.at[expiryKey]
			for !at.After(h.now.Add(tc.idle)) {
				h.apply(h.fireExpiry(at))
				at = h.timers.at[expiryKey]
			}
			if at.Sub(h.now.Add(tc.idle)) > DefaultExpiryCheckInterval {
				t.Fatalf("next scan at %v, more than an interval after %v", at, h.now.Add(tc.idle))
			}
			_, present := h.s.txns["tx"]
			if present == tc.removed {
				t.Fatalf("present %v after %v idle, want removed %v", present, tc.idle, tc.removed)
			}
			d := h.s.Describe("tx")
			if tc.removed != errors.Is(d.Err, ErrTransactionalIDNotFound) {
				t.Fatalf("describe: %+v", d)
			}
			listed := false
			for _, l := range h.s.List() {
				listed = listed || l.TransactionalID == "tx"
			}
			if listed == tc.removed {
				t.Fatalf("listed %v, removed %v", listed, tc.removed)
			}
			// A restart replays the tombstone: the id stays removed.
			_, replayed := h.replayed().s.txns["tx"]
			if replayed == tc.removed {
				t.Fatalf("after replay present %v, want removed %v", replayed, tc.removed)
			}
			if !tc.removed {
				return
			}
			// The id starts afresh: a new producer id at epoch 0.
			var res InitResult
			h.apply(h.s.InitProducerID(h.now, InitRequest{TransactionalID: "tx", TimeoutMs: 10_000, ProducerID: -1, ProducerEpoch: -1},
				555, func(r InitResult) { res = r }))
			if res.Err != nil || res.ProducerID != 555 || res.ProducerEpoch != 0 {
				t.Fatalf("InitProducerId after expiry: %+v", res)
			}
		})
	}
}

// TestExpiringIDHidden: while the tombstone is being written the id is neither described nor
// listed and refuses transitions; if the write fails it is back as it was.
func TestExpiringIDHidden(t *testing.T) {
	h := newHarness(t)
	h.init("tx", -1, 0)
	res := h.fireExpiry(h.now.Add(DefaultIDExpiration + DefaultExpiryCheckInterval))
	if len(res.Records) != 2 || res.Records[0].Value != nil || res.Records[1].Value != nil {
		t.Fatalf("scan wrote %+v, want two tombstones", res.Records)
	}
	if d := h.s.Describe("tx"); !errors.Is(d.Err, ErrTransactionalIDNotFound) {
		t.Fatalf("describe while expiring: %+v", d)
	}
	if len(h.s.List()) != 0 {
		t.Fatalf("listed while expiring: %+v", h.s.List())
	}
	if r := h.init("tx", -1, 0); !errors.Is(r.Err, ErrConcurrentTransactions) {
		t.Fatalf("InitProducerId while expiring: %+v", r)
	}
	if err := h.add("tx", 100, 0, "t"); !errors.Is(err, ErrConcurrentTransactions) {
		t.Fatalf("add while expiring: %v", err)
	}
	res.Done(coord.ErrUnavailable)
	d := h.s.Describe("tx")
	if d.Err != nil || d.State != kmsg.TransactionStateEmpty || d.ProducerID != 100 {
		t.Fatalf("after a failed tombstone: %+v", d)
	}
	if h.timers.fns[expiryKey] == nil {
		t.Fatal("no next scan scheduled")
	}
}
