// Package controller takes Poste's cluster metadata decisions: topic
// creation and deletion, partition growth, config changes, producer-id
// blocks, broker registration and fencing, leader elections, ISR changes and
// reassignments. Each decision is a pure function of (image, request, now)
// returning records and results; the Controller runs them one at a time
// against the metadata store and keeps the one piece of state that is not
// in the log: when each broker was last heard from. Kafka wire types stay
// out: internal/api maps requests and error codes.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

// applyTimeout bounds one commit. The controller waits for the outcome even
// when the caller gives up, so the next decision never runs on an image that
// misses an entry still in flight.
const applyTimeout = 30 * time.Second

// Store is what the controller needs of the metadata log; *metadata.Store
// implements it.
type Store interface {
	// Image is the latest folded image.
	Image() *metadata.Image
	// Apply commits recs as one entry and returns the image including it.
	Apply(ctx context.Context, recs ...metadata.Record) (*metadata.Image, error)
	// IsLeader reports whether this node leads the metadata quorum.
	IsLeader() bool
	// LeaderTerm is the raft term and whether this node leads in it.
	LeaderTerm() (term uint64, isLeader bool)
}

// Controller serialises decisions on this node, the metadata quorum leader.
//
// Invariants: at most one decision runs at a time, from reading the image to
// the commit of its records (or the failure to commit), so each decision sees
// the effects of all earlier ones; two concurrent CreateTopics of one name
// cannot both succeed. Broker liveness lives in memory on the active
// controller only (heartbeats are not logged); when this node starts a new
// leader term every broker's session clock restarts, so a new controller
// never fences brokers it has not had time to hear from. All methods are
// safe for concurrent use; a caller waits for its turn until its ctx ends.
type Controller struct {
	store Store
	o     Options
	turn  chan struct{} // cap 1: holding the token means running a decision

	mu struct {
		sync.Mutex
		term          uint64    // leader term the liveness below belongs to
		termStart     time.Time // when this node was first seen leading term
		live          map[int32]*brokerLiveness
		lastRebalance time.Time
		// otherLeader is the last other node seen leading the quorum (-1: none), so that a
		// new term can treat the previous controller as possibly gone.
		otherLeader int32
	}
}

// brokerLiveness is the controller's memory of one broker.
type brokerLiveness struct {
	lastContact    time.Time // session clock: last heartbeat, registration or term start
	lastHeartbeat  time.Time // zero until a heartbeat arrives in this term
	metadataOffset uint64
	shutdownIndex  uint64    // entry that last moved partitions for its controlled shutdown
	conn           uint64    // connection of the last heartbeat (0: unknown or local)
	lostAt         time.Time // when conn closed with no heartbeat since (zero: it did not)
}

// sessionContact is the session clock Tick fences by: the last contact, or earlier when the
// connection of the last heartbeat closed, so that the broker is fenced LostGrace after.
func (l *brokerLiveness) sessionContact(o Options) time.Time {
	if !l.lostAt.IsZero() && !l.lastContact.After(l.lostAt) {
		if early := l.lostAt.Add(o.LostGrace - o.SessionTimeout); early.Before(l.lastContact) {
			return early
		}
	}
	return l.lastContact
}

// New returns a controller over store. Options are copied; zero fields take
// their documented defaults.
func New(store Store, o Options) *Controller {
	c := &Controller{store: store, o: o.withDefaults(), turn: make(chan struct{}, 1)}
	c.mu.live = map[int32]*brokerLiveness{}
	c.mu.otherLeader = -1
	return c
}

// run takes the turn, lets decide compute records from the current image and
// commits them. It returns the image the decision produced (the current one
// when there was nothing to commit) and decide's error or the commit error.
func (c *Controller) run(ctx context.Context, decide func(img *metadata.Image, now time.Time) ([]metadata.Record, error)) (*metadata.Image, error) {
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.turn }()
	term, leader := c.store.LeaderTerm()
	if !leader {
		return nil, errorf(ErrNotController, "This node is not the active controller.")
	}
	now := c.o.Now()
	c.noteTerm(term, now)
	img := c.store.Image()
	recs, err := decide(img, now)
	if err != nil {
		return nil, err
	}
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

// noteTerm restarts every session clock when this node leads a new term.
func (c *Controller) noteTerm(term uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if term == c.mu.term && !c.mu.termStart.IsZero() {
		return
	}
	c.mu.term, c.mu.termStart, c.mu.lastRebalance = term, now, now
	for _, l := range c.mu.live {
		l.lastContact = now
		l.lastHeartbeat = time.Time{}
		l.shutdownIndex = 0
		l.conn, l.lostAt = 0, time.Time{}
	}
	// The previous controller most likely lost the role by dying: it gets LostGrace to show
	// it is alive (its heartbeats reach this node within one interval if it is).
	if prev := c.mu.otherLeader; prev >= 0 && prev != c.o.NodeID {
		c.livenessLocked(prev).lostAt = now
	}
}

// ConnClosed tells the controller that a connection ended; a broker whose last heartbeat
// came on it is fenced LostGrace later unless it heartbeats again.
func (c *Controller) ConnClosed(conn uint64) {
	if conn == 0 {
		return
	}
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.mu.live {
		if l.conn == conn {
			l.conn, l.lostAt = 0, now
		}
	}
}

// noteLeader remembers the node that leads the quorum when it is not this one.
func (c *Controller) noteLeader() {
	ls, ok := c.store.(interface{ LeaderID() (int32, bool) })
	if !ok {
		return
	}
	if id, known := ls.LeaderID(); known && id != c.o.NodeID {
		c.mu.Lock()
		c.mu.otherLeader = id
		c.mu.Unlock()
	}
}

// livenessLocked returns id's entry, creating it with the term start as its
// session clock.
func (c *Controller) livenessLocked(id int32) *brokerLiveness {
	l := c.mu.live[id]
	if l == nil {
		l = &brokerLiveness{lastContact: c.mu.termStart}
		c.mu.live[id] = l
	}
	return l
}

// CreateTopics creates the valid specs atomically (one metadata entry) and
// returns one result per spec, in order. With validateOnly nothing is
// written. A commit failure is reported on every spec that would have been
// created.
func (c *Controller) CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult {
	var results []TopicResult
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res := decideCreateTopics(img, c.o, specs, validateOnly, now)
		results = res
		return recs, nil
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
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res := decideDeleteTopics(img, names, ids, now)
		results = res
		return recs, nil
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
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res := decideCreatePartitions(img, c.o, specs, validateOnly, now)
		results = res
		return recs, nil
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
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		recs, res := decideAlterConfigs(img, c.o, changes, validateOnly, now)
		results = res
		return recs, nil
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
	_, err := c.run(ctx, func(img *metadata.Image, now time.Time) ([]metadata.Record, error) {
		var recs []metadata.Record
		var err error
		recs, first, err = decideAllocateProducerIDs(img, brokerID, count, now)
		return recs, err
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}
