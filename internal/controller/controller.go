// Package controller takes Poste's cluster metadata decisions: topic
// creation and deletion, partition growth, config changes, producer-id
// blocks and broker registration. Each decision is a pure function of
// (image, request, now) returning records and results (decide.go); the
// Controller runs them one at a time against the metadata Store. Kafka wire
// types stay out: internal/api maps requests and error codes.
package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

// applyTimeout bounds one commit. The controller waits for the outcome even
// when the caller gives up, so the next decision never runs on an image that
// misses an entry still in flight.
const applyTimeout = 30 * time.Second

// Controller serialises decisions on this node, the metadata quorum leader.
//
// Invariant: at most one decision runs at a time, from reading the image to
// the commit of its records (or the failure to commit), so each decision sees
// the effects of all earlier ones; two concurrent CreateTopics of one name
// cannot both succeed. All methods are safe for concurrent use; a caller
// waits for its turn until its ctx ends.
type Controller struct {
	store *metadata.Store
	o     Options
	turn  chan struct{} // cap 1: holding the token means running a decision
}

// New returns a controller over store. Options are copied; zero fields take
// their documented defaults.
func New(store *metadata.Store, o Options) *Controller {
	return &Controller{store: store, o: o.withDefaults(), turn: make(chan struct{}, 1)}
}

// run takes the turn, lets decide compute records from the current image and
// commits them. It returns the commit error (nil when there was nothing to
// commit) and the image the decision produced.
func (c *Controller) run(ctx context.Context, decide func(img *metadata.Image, now time.Time) []metadata.Record) (*metadata.Image, error) {
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.turn }()
	if !c.store.IsLeader() {
		return nil, errorf(ErrNotController, "This node is not the active controller.")
	}
	img := c.store.Image()
	recs := decide(img, c.o.Now())
	if len(recs) == 0 {
		return img, nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	defer cancel()
	next, err := c.store.Apply(actx, recs...)
	if err != nil {
		if errors.Is(err, metadata.ErrNotLeader) {
			return nil, errorf(ErrNotController, "This node lost the controller role: %v", err)
		}
		return nil, fmt.Errorf("controller: commit: %w", err)
	}
	return next, nil
}

// CreateTopics creates the valid specs atomically (one metadata entry) and
// returns one result per spec, in order. With validateOnly nothing is
// written. A commit failure is reported on every spec that would have been
// created.
func (c *Controller) CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult {
	var results []TopicResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) []metadata.Record {
		recs, res := decideCreateTopics(img, c.o, specs, validateOnly, now)
		results = res
		return recs
	})
	if err != nil {
		if results == nil {
			results = make([]TopicResult, len(specs))
			for i, s := range specs {
				results[i] = TopicResult{Name: s.Name}
			}
		}
		for i := range results {
			if results[i].Err == nil {
				results[i] = TopicResult{Name: results[i].Name, NumPartitions: -1, ReplicationFactor: -1, Err: err}
			}
		}
	}
	return results
}

// DeleteTopics deletes topics by name and by id; results list the names
// first, then the ids, in request order.
func (c *Controller) DeleteTopics(ctx context.Context, names []string, ids [][16]byte) []DeleteResult {
	var results []DeleteResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) []metadata.Record {
		recs, res := decideDeleteTopics(img, names, ids, now)
		results = res
		return recs
	})
	if err != nil {
		if results == nil {
			for _, n := range names {
				results = append(results, DeleteResult{Name: n})
			}
			for _, id := range ids {
				results = append(results, DeleteResult{ID: id})
			}
		}
		for i := range results {
			if results[i].Err == nil {
				results[i].Err = err
			}
		}
	}
	return results
}

// CreatePartitions grows topics; one result per spec, in order.
func (c *Controller) CreatePartitions(ctx context.Context, specs []PartitionsSpec, validateOnly bool) []Result {
	var results []Result
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) []metadata.Record {
		recs, res := decideCreatePartitions(img, c.o, specs, validateOnly, now)
		results = res
		return recs
	})
	if err != nil {
		if results == nil {
			results = make([]Result, len(specs))
			for i, s := range specs {
				results[i].Name = s.Topic
			}
		}
		for i := range results {
			if results[i].Err == nil {
				results[i].Err = err
			}
		}
	}
	return results
}

// AlterConfigs applies config changes; one result per change, in order.
func (c *Controller) AlterConfigs(ctx context.Context, changes []ConfigChange, validateOnly bool) []ConfigResult {
	var results []ConfigResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) []metadata.Record {
		recs, res := decideAlterConfigs(img, c.o, changes, validateOnly, now)
		results = res
		return recs
	})
	if err != nil {
		if results == nil {
			results = make([]ConfigResult, len(changes))
			for i, ch := range changes {
				results[i] = ConfigResult{ResourceType: ch.ResourceType, ResourceName: ch.ResourceName}
			}
		}
		for i := range results {
			if results[i].Err == nil {
				results[i].Err = err
			}
		}
	}
	return results
}

// AllocateProducerIDs reserves count producer ids for brokerID and returns
// the first; the block [first, first+count) is unique cluster-wide.
func (c *Controller) AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (int64, error) {
	var first int64
	var derr error
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) []metadata.Record {
		var recs []metadata.Record
		recs, first, derr = decideAllocateProducerIDs(img, brokerID, count, now)
		return recs
	})
	if derr != nil {
		return 0, derr
	}
	if err != nil {
		return 0, err
	}
	return first, nil
}

// RegisterBroker records a broker's registration (its endpoints and rack),
// replacing an earlier one of the same id. Re-registering identically writes
// nothing.
func (c *Controller) RegisterBroker(ctx context.Context, reg metadata.RegisterBrokerRecord) error {
	if reg.BrokerID < 0 {
		return errorf(ErrInvalidRequest, "Broker id %d is negative.", reg.BrokerID)
	}
	_, err := c.run(ctx, func(img *metadata.Image, _ time.Time) []metadata.Record {
		if b := img.Broker(reg.BrokerID); b != nil && sameRegistration(b, reg) {
			return nil
		}
		return []metadata.Record{reg}
	})
	return err
}

func sameRegistration(b *metadata.Broker, r metadata.RegisterBrokerRecord) bool {
	if b.IncarnationID != r.IncarnationID || len(b.Endpoints) != len(r.Endpoints) || (b.Rack == nil) != (r.Rack == nil) {
		return false
	}
	if b.Rack != nil && *b.Rack != *r.Rack {
		return false
	}
	for i := range b.Endpoints {
		if b.Endpoints[i] != r.Endpoints[i] {
			return false
		}
	}
	return true
}
