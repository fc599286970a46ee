package api

import (
	"log/slog"

	"github.com/poste-io/poste/internal/cluster"
	"github.com/poste-io/poste/internal/config"
	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/metadata"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/replica"
	"github.com/poste-io/poste/internal/txn"
)

// Deps are the services the handlers use; the broker builds them.
type Deps struct {
	Config      *config.Broker
	Meta        *metadata.Store
	Controller  *controller.Controller
	Replicas    *replica.Manager
	ProducerIDs *txn.ProducerIDs
	Groups      *group.Coordinator
	Txns        *txn.Coordinator
	// Channel reaches the active controller when it is another node (nil on a single node):
	// admin requests are forwarded through it.
	Channel *cluster.Channel
	// Peers reaches other brokers (nil on a single node): transactional checks and offsets
	// for a transaction coordinated elsewhere.
	Peers  *cluster.Peers
	Logger *slog.Logger
}

// Handlers serves every registered API. It holds no mutable state of its own: each handler
// reads the current metadata image and calls into the owning package, so it is safe for
// concurrent use by every connection.
type Handlers struct {
	Deps
	log *slog.Logger
}

// NewHandlers returns the request handlers over deps.
func NewHandlers(d Deps) *Handlers {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Handlers{Deps: d, log: d.Logger}
}

// advertised returns the host and port clients should use for this broker, as seen from the
// listener the request arrived on.
func (h *Handlers) advertised(listener string) (string, int32) {
	ls := h.Config.AdvertisedListeners
	for _, l := range ls {
		if l.Name == listener {
			return l.Host, int32(l.Port)
		}
	}
	if len(ls) > 0 {
		return ls[0].Host, int32(ls[0].Port)
	}
	return "localhost", 9092
}

// leader returns the hosted partition if this broker leads it: requests that only a leader
// answers (ListOffsets, OffsetForLeaderEpoch, DescribeProducers) get NOT_LEADER_OR_FOLLOWER
// from a follower, and the client refreshes its metadata.
func (h *Handlers) leader(topic string, index int32) (*partition.Partition, error) {
	p, err := h.Replicas.Get(topic, index)
	if err != nil {
		return nil, err
	}
	if !p.IsLeader() {
		return nil, partition.ErrNotLeader
	}
	return p, nil
}

// ConnClosed is called by the server when a connection ends: a broker whose heartbeats came
// on it may have died (the controller fences it soon unless it heartbeats again).
func (h *Handlers) ConnClosed(info ConnInfo) {
	if h.Controller != nil {
		h.Controller.ConnClosed(info.ID)
	}
}
