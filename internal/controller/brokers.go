package controller

import (
	"slices"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

// Broker lifecycle decisions (KIP-631): registration, heartbeats, session
// expiry and the automatic preferred-leader rebalance. All pure.

// Heartbeat is one BrokerHeartbeat request.
type Heartbeat struct {
	BrokerID       int32
	BrokerEpoch    int64
	MetadataOffset uint64 // the broker's applied metadata index
	WantFence      bool
	WantShutDown   bool
	// Conn identifies the connection the heartbeat came on (0: none, a local call). When
	// that connection closes with no heartbeat since (ConnClosed), the broker is fenced
	// after Options.LostGrace instead of the whole session timeout: a killed process closes
	// its sockets at once.
	Conn uint64
}

// HeartbeatResult is the controller's answer to a Heartbeat.
type HeartbeatResult struct{ IsCaughtUp, IsFenced, ShouldShutDown bool }

// Liveness is what the active controller last heard from a broker.
type Liveness struct {
	LastHeartbeat  time.Time
	MetadataOffset uint64
}

// decideRegisterBroker registers reg, fenced. The same incarnation again is
// idempotent: no records and the current epoch. A new incarnation of a
// broker that was unfenced first loses what the old one held: the records
// fence it (ISRs, leaderships) in the same entry as the registration.
func decideRegisterBroker(img *metadata.Image, o Options, reg metadata.RegisterBrokerRecord) ([]metadata.Record, int64, error) {
	if reg.BrokerID < 0 {
		return nil, 0, errorf(ErrInvalidRequest, "Broker id %d is negative.", reg.BrokerID)
	}
	old := img.Broker(reg.BrokerID)
	if old != nil && old.IncarnationID == reg.IncarnationID {
		return nil, old.Epoch, nil
	}
	reg.Fenced, reg.Epoch = true, 0
	b := newBatch(img)
	if err := b.add(reg); err != nil {
		return nil, 0, err
	}
	if old != nil && !old.Fenced {
		if err := forPartitionsOf(b, o, reg.BrokerID, func(img *metadata.Image, p *metadata.Partition, pol policy) {
			fenced(img, p, reg.BrokerID, pol)
		}); err != nil {
			return nil, 0, err
		}
	}
	return b.recs, 0, nil
}

// fenceBroker fences x and moves what it held.
func fenceBroker(b *batch, o Options, x *metadata.Broker) error {
	if err := b.add(metadata.BrokerRegistrationChangeRecord{BrokerID: x.ID, BrokerEpoch: x.Epoch,
		Fenced: metadata.SetTrue, InControlledShutdown: metadata.Unchanged}); err != nil {
		return err
	}
	return forPartitionsOf(b, o, x.ID, func(img *metadata.Image, p *metadata.Partition, pol policy) {
		fenced(img, p, x.ID, pol)
	})
}

// unfenceBroker unfences x and gives it the leaderless partitions it can
// lead.
func unfenceBroker(b *batch, o Options, x *metadata.Broker) error {
	if err := b.add(metadata.BrokerRegistrationChangeRecord{BrokerID: x.ID, BrokerEpoch: x.Epoch,
		Fenced: metadata.SetFalse, InControlledShutdown: metadata.Unchanged}); err != nil {
		return err
	}
	return forPartitionsOf(b, o, x.ID, func(img *metadata.Image, p *metadata.Partition, pol policy) {
		if p.Leader == metadata.NoLeader {
			elect(img, p, pol, false)
		}
	})
}

// shutDownBroker puts x in controlled shutdown (once) and moves its
// leaderships and ISR memberships; run again on every heartbeat asking to
// shut down, since another broker may have become usable meanwhile.
func shutDownBroker(b *batch, o Options, x *metadata.Broker) error {
	if !x.InControlledShutdown {
		if err := b.add(metadata.BrokerRegistrationChangeRecord{BrokerID: x.ID, BrokerEpoch: x.Epoch,
			Fenced: metadata.Unchanged, InControlledShutdown: metadata.SetTrue}); err != nil {
			return err
		}
	}
	return forPartitionsOf(b, o, x.ID, func(img *metadata.Image, p *metadata.Partition, pol policy) {
		shuttingDown(img, p, x.ID, pol)
	})
}

// decideHeartbeat applies the state change a heartbeat implies:
//   - WantFence fences an unfenced broker;
//   - WantShutDown starts (or continues) controlled shutdown; a fenced broker
//     may shut down at once;
//   - otherwise a fenced broker whose MetadataOffset reached its epoch is
//     unfenced (not while in controlled shutdown).
//
// ShouldShutDown is true once the broker is in controlled shutdown, this
// heartbeat changed nothing, it leads no partition another broker could
// lead, and it has applied the entry that last moved its partitions
// (shutdownIndex, 0 if unknown).
func decideHeartbeat(img *metadata.Image, o Options, hb Heartbeat, shutdownIndex uint64) ([]metadata.Record, HeartbeatResult, error) {
	x := img.Broker(hb.BrokerID)
	if x == nil {
		return nil, HeartbeatResult{}, errorf(ErrBrokerNotRegistered, "Broker %d is not registered.", hb.BrokerID)
	}
	if x.Epoch != hb.BrokerEpoch {
		return nil, HeartbeatResult{}, errorf(ErrStaleBrokerEpoch, "Broker %d has epoch %d; the heartbeat carries %d.", hb.BrokerID, x.Epoch, hb.BrokerEpoch)
	}
	caughtUp := hb.MetadataOffset >= uint64(x.Epoch)
	b := newBatch(img)
	var err error
	switch {
	case hb.WantFence:
		if !x.Fenced {
			err = fenceBroker(b, o, x)
		}
	case hb.WantShutDown:
		if !x.Fenced {
			err = shutDownBroker(b, o, x)
		}
	case x.Fenced && caughtUp && !x.InControlledShutdown:
		err = unfenceBroker(b, o, x)
	}
	if err != nil {
		return nil, HeartbeatResult{}, err
	}
	after := b.img.Broker(x.ID)
	res := HeartbeatResult{IsCaughtUp: caughtUp, IsFenced: after.Fenced}
	if hb.WantShutDown {
		res.ShouldShutDown = after.Fenced ||
			after.InControlledShutdown && len(b.recs) == 0 && hb.MetadataOffset >= shutdownIndex && !leadsMovable(b.img, x.ID)
	}
	return b.recs, res, nil
}

// leadsMovable reports whether x leads a partition that another usable ISR
// member could lead.
func leadsMovable(img *metadata.Image, x int32) bool {
	for _, tp := range img.PartitionsOn(x) {
		p := img.Partition(tp.TopicID, tp.Partition)
		if p.Leader == x && hasOtherLeader(img, p, x) {
			return true
		}
	}
	return false
}

// decideFenceExpired fences every unfenced broker not heard from for more
// than the session timeout; lastContact gives, per broker, the later of its
// last heartbeat and the moment this controller started counting.
func decideFenceExpired(img *metadata.Image, o Options, lastContact func(id int32) time.Time, now time.Time) ([]metadata.Record, []int32, error) {
	b := newBatch(img)
	var expired []int32
	for _, x := range img.Brokers() {
		if x.Fenced || now.Sub(lastContact(x.ID)) <= o.SessionTimeout {
			continue
		}
		expired = append(expired, x.ID)
		if err := fenceBroker(b, o, b.img.Broker(x.ID)); err != nil {
			return nil, nil, err
		}
	}
	return b.recs, expired, nil
}

// decideRebalance is the automatic preferred-leader election: for every
// usable broker whose share of preferred partitions led by someone else
// exceeds the imbalance percentage, it takes back those it can (it is in
// their ISR).
func decideRebalance(img *metadata.Image, o Options) []metadata.Record {
	type count struct{ preferred, notLed int }
	counts := map[int32]*count{}
	for _, t := range img.Topics() {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			c := counts[p.Replicas[0]]
			if c == nil {
				c = &count{}
				counts[p.Replicas[0]] = c
			}
			c.preferred++
			if p.Leader != p.Replicas[0] {
				c.notLed++
			}
		}
	}
	var recs []metadata.Record
	for _, t := range img.Topics() {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			pref := p.Replicas[0]
			c := counts[pref]
			if p.Leader == pref || c.notLed*100 <= o.LeaderImbalancePercentage*c.preferred {
				continue
			}
			if !usable(img, pref) || !slices.Contains(p.ISR, pref) {
				continue
			}
			after := *p
			setLeader(&after, pref)
			if r, ok := changeRecord(t.ID, p, &after); ok {
				recs = append(recs, r)
			}
		}
	}
	return recs
}
