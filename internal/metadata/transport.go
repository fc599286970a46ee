package metadata

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// RaftPreface is the first byte a node writes on every raft connection it
// dials. The controller listener also carries Kafka requests, whose first
// byte is the high byte of a big-endian frame length; Poste caps frames far
// below 0xF7<<24 bytes, so no Kafka connection starts with it.
const RaftPreface byte = 0xF7

// prefacePeekTimeout bounds how long a new connection may stay silent before
// SplitListener gives up on it.
const prefacePeekTimeout = 5 * time.Second

var (
	// ErrInvalidVoters: a controller.quorum.voters value or a quorum change is
	// malformed (bad entry, duplicate id or address, a voter made observer).
	ErrInvalidVoters = errors.New("metadata: invalid controller quorum")
	// ErrNoQuorum: no leader could be found or elected in time, typically
	// because too few voters are reachable.
	ErrNoQuorum = errors.New("metadata: no controller quorum")
)

// Voter is one member of the controller quorum: its node id and the host:port
// of its controller listener.
type Voter struct {
	ID   int32
	Addr string
}

func (v Voter) String() string { return strconv.FormatInt(int64(v.ID), 10) + "@" + v.Addr }

// ParseVoters parses controller.quorum.voters, "id@host:port" entries
// separated by commas (for example "1@a:9093,2@b:9093"). An empty or blank
// string yields no voters. Ids must be non-negative and distinct, as must the
// addresses.
func ParseVoters(s string) ([]Voter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var voters []Voter
	ids := map[int32]bool{}
	addrs := map[string]bool{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		idStr, addr, ok := strings.Cut(entry, "@")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not id@host:port", ErrInvalidVoters, entry)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%w: %q has no valid node id", ErrInvalidVoters, entry)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || strings.ContainsAny(addr, " \t") {
			return nil, fmt.Errorf("%w: %q has no valid host:port", ErrInvalidVoters, entry)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, fmt.Errorf("%w: %q has no valid port", ErrInvalidVoters, entry)
		}
		if ids[int32(id)] {
			return nil, fmt.Errorf("%w: node id %d listed twice", ErrInvalidVoters, id)
		}
		if addrs[addr] {
			return nil, fmt.Errorf("%w: address %s listed twice", ErrInvalidVoters, addr)
		}
		ids[int32(id)], addrs[addr] = true, true
		voters = append(voters, Voter{ID: int32(id), Addr: addr})
	}
	return voters, nil
}

// SplitListener divides the connections accepted from ln between raft (those
// that start with RaftPreface, which is consumed) and other (every other
// connection, whose first byte is handed back by its first Read).
//
// One goroutine accepts from ln; each new connection gets its own goroutine
// that reads the first byte under a deadline, so a client that sends nothing
// never delays other connections. A connection that is routed to a side
// waits until that side's Accept takes it. Closing either returned listener
// closes both and ln; connections already handed out stay open. Both
// listeners are safe for concurrent use.
func SplitListener(ln net.Listener) (raftLn, other net.Listener) {
	sp := &splitter{ln: ln, done: make(chan struct{})}
	sp.raft = &splitSide{sp: sp, conns: make(chan net.Conn)}
	sp.other = &splitSide{sp: sp, conns: make(chan net.Conn)}
	go sp.acceptLoop()
	return sp.raft, sp.other
}

type splitter struct {
	ln          net.Listener
	raft, other *splitSide
	done        chan struct{} // closed by close
	closeOnce   sync.Once
	err         error // why accepting stopped; written before done is closed
}

func (sp *splitter) close(err error) {
	sp.closeOnce.Do(func() {
		sp.err = err
		close(sp.done)
		_ = sp.ln.Close()
	})
}

func (sp *splitter) acceptLoop() {
	backoff := 5 * time.Millisecond
	for {
		c, err := sp.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				sp.close(net.ErrClosed)
				return
			}
			// Transient (out of file descriptors, aborted handshake): back
			// off rather than spin or give up on the listener.
			select {
			case <-time.After(backoff):
			case <-sp.done:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		go sp.route(c)
	}
}

// route reads the first byte of c and hands c to the side it belongs to.
func (sp *splitter) route(c net.Conn) {
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(prefacePeekTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	side, conn := sp.other, net.Conn(&prefixedConn{Conn: c, first: b[0], pending: true})
	if b[0] == RaftPreface {
		side, conn = sp.raft, c
	}
	select {
	case side.conns <- conn:
	case <-sp.done:
		_ = c.Close()
	}
}

// splitSide is one of the two listeners SplitListener returns.
type splitSide struct {
	sp    *splitter
	conns chan net.Conn
}

func (s *splitSide) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.sp.done:
		return nil, s.sp.err
	}
}

func (s *splitSide) Close() error {
	s.sp.close(net.ErrClosed)
	return nil
}

func (s *splitSide) Addr() net.Addr { return s.sp.ln.Addr() }

// prefixedConn gives back the byte SplitListener read to route it. Reads
// come from one goroutine at a time, as for any net.Conn.
type prefixedConn struct {
	net.Conn
	first   byte
	pending bool
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if c.pending && len(p) > 0 {
		// A short read is allowed and avoids touching the caller's deadlines.
		c.pending = false
		p[0] = c.first
		return 1, nil
	}
	return c.Conn.Read(p)
}

// ReadFrom keeps the underlying connection's zero-copy path (sendfile on a
// TCP connection) reachable through the wrapper.
func (c *prefixedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// NetConn returns the accepted connection under the wrapper.
func (c *prefixedConn) NetConn() net.Conn { return c.Conn }

// streamLayer is raft's view of the controller listener: it accepts the
// connections SplitListener routed to raft and dials peers with RaftPreface.
// It remembers the outcome of the last dial to each address (to name the
// unreachable voters when no quorum forms) and closes every connection it
// dialed when it is closed, so an RPC stuck on a silent peer cannot hold up
// raft's shutdown. Safe for concurrent use.
type streamLayer struct {
	net.Listener
	addr raftAddr // the address peers know this node by

	mu struct {
		sync.Mutex
		closed  bool
		conns   map[*trackedConn]struct{}
		lastErr map[string]error // address → error of the last dial, nil if it connected
	}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(ln net.Listener, addr string) *streamLayer {
	sl := &streamLayer{Listener: ln, addr: raftAddr(addr)}
	sl.mu.conns = map[*trackedConn]struct{}{}
	sl.mu.lastErr = map[string]error{}
	return sl
}

func (sl *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	sl.mu.Lock()
	closed := sl.mu.closed
	sl.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		if _, err = c.Write([]byte{RaftPreface}); err != nil {
			_ = c.Close()
		} else {
			_ = c.SetWriteDeadline(time.Time{})
		}
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.mu.lastErr[string(addr)] = err
	if err != nil {
		return nil, err
	}
	if sl.mu.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, sl: sl}
	sl.mu.conns[tc] = struct{}{}
	return tc, nil
}

// Addr is what raft announces as this node's address: the configured one,
// which may differ from the listener's bound address (0.0.0.0:9093).
func (sl *streamLayer) Addr() net.Addr { return sl.addr }

type raftAddr string

func (a raftAddr) Network() string { return "tcp" }
func (a raftAddr) String() string  { return string(a) }

// dialError returns the error of the last dial to addr; ok is false if addr
// was never dialed.
func (sl *streamLayer) dialError(addr string) (err error, ok bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	err, ok = sl.mu.lastErr[addr]
	return err, ok
}

// Close closes the listener (and with it the whole controller listener) and
// every dialed connection; later dials fail.
func (sl *streamLayer) Close() error {
	sl.mu.Lock()
	sl.mu.closed = true
	conns := sl.mu.conns
	sl.mu.conns = map[*trackedConn]struct{}{}
	sl.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return sl.Listener.Close()
}

type trackedConn struct {
	net.Conn
	sl   *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.sl.mu.Lock()
		delete(c.sl.mu.conns, c)
		c.sl.mu.Unlock()
	})
	return c.Conn.Close()
}

// commitTransport is raft's network transport with one addition: it reads
// the leader's commit index off every AppendEntries request on its way to
// raft. A follower caps its own commit index at the end of its log, so this
// is the only way for a node that is catching up to know how far it has to
// go. Raft is the only consumer of its RPC channel.
type commitTransport struct {
	*raft.NetworkTransport

	rpcs         chan raft.RPC
	leaderCommit atomic.Uint64 // highest LeaderCommitIndex seen
	stop         chan struct{}
	stopOnce     sync.Once
}

func newCommitTransport(nt *raft.NetworkTransport) *commitTransport {
	t := &commitTransport{NetworkTransport: nt, rpcs: make(chan raft.RPC), stop: make(chan struct{})}
	go t.forward()
	return t
}

func (t *commitTransport) forward() {
	in := t.NetworkTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				for {
					cur := t.leaderCommit.Load()
					if req.LeaderCommitIndex <= cur || t.leaderCommit.CompareAndSwap(cur, req.LeaderCommitIndex) {
						break
					}
				}
			}
			select {
			case t.rpcs <- rpc:
			case <-t.stop:
				return
			}
		case <-t.stop:
			return
		}
	}
}

func (t *commitTransport) Consumer() <-chan raft.RPC { return t.rpcs }

func (t *commitTransport) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	return t.NetworkTransport.Close()
}
