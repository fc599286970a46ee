package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Peers holds one client per other broker, for broker-to-broker requests (transaction
// markers to partition leaders).
//
// Invariants: a client is keyed by broker id and address; a broker that moved to another
// address gets a new client. Safe for concurrent use.
type Peers struct {
	mu struct {
		sync.Mutex
		clients map[int32]peer
		closed  bool
	}
}

type peer struct {
	addr string
	cl   *kgo.Client
}

// Request sends req to broker id at addr.
func (p *Peers) Request(ctx context.Context, id int32, addr string, req kmsg.Request) (kmsg.Response, error) {
	cl, err := p.client(id, addr)
	if err != nil {
		return nil, err
	}
	return cl.SeedBrokers()[0].Request(ctx, req)
}

func (p *Peers) client(id int32, addr string) (*kgo.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, context.Canceled
	}
	if c, ok := p.mu.clients[id]; ok {
		if c.addr == addr {
			return c.cl, nil
		}
		c.cl.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("poste-broker"), kgo.RequestRetries(0),
		kgo.DialTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	if p.mu.clients == nil {
		p.mu.clients = make(map[int32]peer)
	}
	p.mu.clients[id] = peer{addr: addr, cl: cl}
	return cl, nil
}

// Close closes every client.
func (p *Peers) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.closed = true
	for _, c := range p.mu.clients {
		c.cl.Close()
	}
	p.mu.clients = nil
}
