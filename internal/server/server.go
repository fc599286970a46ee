// Package server owns the listeners and the connections: framing, size limits, request
// headers, and per-connection ordered responses. It knows nothing of topics or logs; every
// decoded request goes to the api package's handlers.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poste-io/poste/internal/api"
)

// Handler serves decoded requests; *api.Handlers implements it.
type Handler interface {
	Handle(ctx context.Context, req *api.Request) (api.Response, error)
}

// Config are the server's limits.
type Config struct {
	// MaxRequestBytes is socket.request.max.bytes: a larger frame is refused before its
	// body is read and the connection is closed.
	MaxRequestBytes int32
	// MaxInFlight bounds the responses queued per connection; a client pipelining more
	// requests than this is simply not read until responses drain (backpressure).
	MaxInFlight int
	Logger      *slog.Logger
}

// Server accepts connections on its listeners and serves them until Shutdown.
//
// Each connection has a reader goroutine that decodes requests and runs the synchronous part
// of their handler in arrival order, and a writer goroutine that awaits and writes responses
// in that same order. Server's methods may be called from any goroutine.
type Server struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	nextID  atomic.Uint64

	ctx    context.Context // cancelled when Shutdown starts: long polls answer at once
	cancel context.CancelFunc

	mu struct {
		sync.Mutex
		listeners []net.Listener
		conns     map[*conn]struct{}
		closing   bool
	}
	wg sync.WaitGroup // accept loops and connections
}

// New returns a server that dispatches to h.
func New(cfg Config, h Handler) *Server {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 128
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, handler: h, log: cfg.Logger}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[*conn]struct{})
	return s
}

// Serve accepts connections on l until Shutdown; it returns at once, serving in the background.
func (s *Server) Serve(name string, l net.Listener) {
	s.mu.Lock()
	if s.mu.closing {
		s.mu.Unlock()
		l.Close()
		return
	}
	s.mu.listeners = append(s.mu.listeners, l)
	s.wg.Add(1)
	s.mu.Unlock()
	go s.acceptLoop(name, l)
}

func (s *Server) acceptLoop(name string, l net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE and the like): back off instead of spinning.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			s.log.Warn("accept failed", "listener", name, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c := newConn(s, nc, name)
		s.mu.Lock()
		if s.mu.closing {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.mu.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// ConnObserver is implemented by a Handler that wants to know when a connection ends (the
// controller learns a broker's heartbeat connection dropped, see api.ConnClosed).
type ConnObserver interface {
	ConnClosed(info api.ConnInfo)
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
	if o, ok := s.handler.(ConnObserver); ok {
		o.ConnClosed(c.info)
	}
	s.wg.Done()
}

// Shutdown stops accepting, stops reading new requests, answers every request already read
// and closes the connections. If ctx expires first, connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	s.mu.closing = true
	for _, l := range s.mu.listeners {
		l.Close()
	}
	for c := range s.mu.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.mu.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
