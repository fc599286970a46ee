// Package cluster is membership as a broker sees it: the channel to the active controller,
// registration and heartbeats (fencing, unfencing, controlled shutdown), and the routing of
// controller requests to this node's own controller when it is the active one.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNoController means no active controller is known (no quorum, or an election is running).
var ErrNoController = errors.New("no active controller")

// Channel sends Kafka-protocol requests to the active controller's controller listener.
//
// Invariants: one kgo client per voter, created on first use and kept until Close; a
// request goes to the voter that leader() names at the time it is sent, and is resent (to
// the possibly new leader) after a transport error until ctx ends. Safe for concurrent use.
type Channel struct {
	addrs  map[int32]string
	ids    []int32 // the voters, sorted
	leader func() (int32, bool)
	lg     *slog.Logger
	next   atomic.Uint32 // the voter to try next when the leader is unknown

	mu struct {
		sync.Mutex
		clients map[int32]*kgo.Client
		closed  bool
	}
}

// NewChannel returns a channel to the voters (node id → host:port of the controller
// listener); leader names the current active controller.
func NewChannel(voters map[int32]string, leader func() (int32, bool), lg *slog.Logger) *Channel {
	c := &Channel{addrs: voters, leader: leader, lg: lg}
	for id := range voters {
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
	c.mu.clients = make(map[int32]*kgo.Client)
	return c
}

func (c *Channel) client(id int32) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, errors.New("controller channel closed")
	}
	if cl := c.mu.clients[id]; cl != nil {
		return cl, nil
	}
	addr, ok := c.addrs[id]
	if !ok {
		return nil, fmt.Errorf("controller %d is not a voter", id)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("poste-controller-channel"),
		kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	c.mu.clients[id] = cl
	return cl, nil
}

// Request sends req to the active controller and returns its response. When this node does
// not know the leader (a broker that is not yet an observer of the quorum), the voters are
// tried in turn; one that is not the leader answers NOT_CONTROLLER and the caller retries.
// Transport errors are retried every 50 ms until ctx ends; errors inside the response are the
// caller's to read.
func (c *Channel) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var last error = ErrNoController
	for {
		id, ok := c.leader()
		if !ok && len(c.ids) > 0 {
			id, ok = c.ids[int(c.next.Add(1))%len(c.ids)], true
		}
		if ok {
			cl, err := c.client(id)
			if err != nil {
				return nil, err
			}
			resp, err := cl.SeedBrokers()[0].Request(ctx, req)
			if err == nil {
				return resp, nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close closes every client.
func (c *Channel) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.closed = true
	for _, cl := range c.mu.clients {
		cl.Close()
	}
	c.mu.clients = nil
}
