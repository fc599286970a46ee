package controller

import (
	"context"
	"errors"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

// The Controller's cluster APIs: broker lifecycle, elections, ISR changes
// and reassignments. Each runs one pure decision (brokers.go, isr.go,
// reassign.go) in its turn.

// RegisterBroker registers a broker, fenced, under a new incarnation id; the
// same incarnation id as the current registration is idempotent. It returns
// the broker epoch: the index of the entry holding the registration.
func (c *Controller) RegisterBroker(ctx context.Context, reg metadata.RegisterBrokerRecord) (int64, error) {
	var epoch int64
	next, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, cur, err := decideRegisterBroker(img, c.o, reg)
		epoch = cur
		return recs, err
	})
	if err != nil {
		return 0, err
	}
	if b := next.Broker(reg.BrokerID); b != nil {
		epoch = b.Epoch
	}
	c.mu.Lock()
	l := c.livenessLocked(reg.BrokerID)
	l.lastContact, l.shutdownIndex = c.o.Now(), 0
	c.mu.Unlock()
	return epoch, nil
}

// Heartbeat records a broker's liveness (in memory, on the active controller
// only) and applies the state change it implies: unfencing once the broker
// has applied the metadata up to its registration, controlled shutdown
// (leaderships and ISR memberships move away; ShouldShutDown once it leads
// nothing another broker could lead and has seen that change), or fencing
// on request. ErrStaleBrokerEpoch for another epoch, ErrBrokerNotRegistered
// for an unknown broker.
func (c *Controller) Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatResult, error) {
	var res HeartbeatResult
	var wrote bool
	next, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		c.mu.Lock()
		shutdownIndex := c.livenessLocked(hb.BrokerID).shutdownIndex
		c.mu.Unlock()
		recs, r, err := decideHeartbeat(img, c.o, hb, shutdownIndex)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		l := c.livenessLocked(hb.BrokerID)
		l.lastContact, l.lastHeartbeat, l.metadataOffset = now, now, hb.MetadataOffset
		l.conn, l.lostAt = hb.Conn, time.Time{}
		c.mu.Unlock()
		res, wrote = r, len(recs) > 0
		return recs, nil
	})
	if err != nil {
		return HeartbeatResult{}, err
	}
	if b := next.Broker(hb.BrokerID); wrote && b != nil && b.InControlledShutdown {
		c.mu.Lock()
		c.livenessLocked(hb.BrokerID).shutdownIndex = next.AppliedIndex()
		c.mu.Unlock()
	}
	return res, nil
}

// Tick does the controller's periodic work; the node hosting the controller
// calls it every ~250 ms. On the active controller it fences every unfenced
// broker not heard from within the session timeout, completes the
// reassignments whose new replicas have joined the ISR and, when automatic
// leader rebalance is enabled, runs the preferred-leader elections every
// check interval. On any other node it does nothing.
func (c *Controller) Tick(ctx context.Context) error {
	if _, leader := c.store.LeaderTerm(); !leader {
		c.noteLeader()
		return nil
	}
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		c.mu.Lock()
		contact := make(map[int32]time.Time, len(c.mu.live))
		for id, l := range c.mu.live {
			contact[id] = l.sessionContact(c.o)
		}
		termStart := c.mu.termStart
		rebalance := c.o.AutoLeaderRebalance && now.Sub(c.mu.lastRebalance) >= c.o.LeaderImbalanceCheckInterval
		if rebalance {
			c.mu.lastRebalance = now
		}
		c.mu.Unlock()
		lastContact := func(id int32) time.Time {
			if t, ok := contact[id]; ok {
				return t
			}
			return termStart
		}
		b := newBatch(img)
		recs, _, err := decideFenceExpired(img, c.o, lastContact, now)
		if err != nil {
			return nil, err
		}
		if err := b.add(recs...); err != nil {
			return nil, err
		}
		if err := b.add(decideCompleteReassignments(b.img, c.o)...); err != nil {
			return nil, err
		}
		if rebalance {
			if err := b.add(decideRebalance(b.img, c.o)...); err != nil {
				return nil, err
			}
		}
		return b.recs, nil
	})
	if errors.Is(err, ErrNotController) {
		return nil
	}
	return err
}

// AlterPartition applies the ISR changes a partition leader proposes
// (AlterPartition v0-3 semantics); one result per change, in order.
func (c *Controller) AlterPartition(ctx context.Context, brokerID int32, brokerEpoch int64, changes []ISRChange) []ISRResult {
	var results []ISRResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res, err := decideAlterPartition(img, c.o, brokerID, brokerEpoch, changes)
		results = res
		return recs, err
	})
	if err != nil {
		if results == nil {
			results = make([]ISRResult, len(changes))
		}
		for i := range results {
			if results[i].Err == nil {
				results[i].Err = err
			}
		}
	}
	return results
}

// ElectLeaders runs preferred (or, with unclean, unclean) leader elections
// for parts; nil parts means every partition.
func (c *Controller) ElectLeaders(ctx context.Context, unclean bool, parts []TopicPartition) []PartitionResult {
	var results []PartitionResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res := decideElectLeaders(img, c.o, unclean, parts)
		results = res
		return recs, nil
	})
	return failPartitions(results, parts, err)
}

// AlterReassignments starts, replaces or (nil replicas) cancels partition
// reassignments; one result per request, in order.
func (c *Controller) AlterReassignments(ctx context.Context, reqs []Reassignment) []PartitionResult {
	var results []PartitionResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res := decideAlterReassignments(img, c.o, reqs)
		results = res
		return recs, nil
	})
	if err != nil && results == nil {
		parts := make([]TopicPartition, len(reqs))
		for i, r := range reqs {
			parts[i] = TopicPartition{Topic: r.Topic, Partition: r.Partition}
		}
		return failPartitions(nil, parts, err)
	}
	return failPartitions(results, nil, err)
}

// failPartitions puts a run error on every result that has none (building
// the results from parts when the decision never ran).
func failPartitions(results []PartitionResult, parts []TopicPartition, err error) []PartitionResult {
	if err == nil {
		return results
	}
	if results == nil {
		for _, p := range parts {
			results = append(results, PartitionResult{Topic: p.Topic, Partition: p.Partition})
		}
	}
	for i := range results {
		if results[i].Err == nil {
			results[i].Err = err
		}
	}
	return results
}

// ListReassignments reports the ongoing reassignments of parts (nil: all)
// from the latest image; it needs no turn and works on any node.
func (c *Controller) ListReassignments(parts []TopicPartition) []OngoingReassignment {
	return listReassignments(c.store.Image(), parts)
}

// BrokerLiveness returns, per broker heard from in this controller's current
// term, its last heartbeat and the metadata offset it reported. Empty on a
// node that is not the active controller.
func (c *Controller) BrokerLiveness() map[int32]Liveness {
	out := map[int32]Liveness{}
	term, leader := c.store.LeaderTerm()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !leader || term != c.mu.term {
		return out
	}
	for id, l := range c.mu.live {
		if !l.lastHeartbeat.IsZero() {
			out[id] = Liveness{LastHeartbeat: l.lastHeartbeat, MetadataOffset: l.metadataOffset}
		}
	}
	return out
}
