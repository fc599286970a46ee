package testkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FaultConfig says which faults a FaultProxy injects.
type FaultConfig struct {
	// DropProduceResponses is the fraction, in [0, 1], of Produce responses the proxy
	// swallows; after a drop it closes that connection in both directions, which is what
	// a lost response looks like to a client.
	DropProduceResponses float64
	// Seed seeds the proxy's random choices, so a run can be replayed.
	Seed uint64
}

// FaultProxy is a TCP proxy in front of one Kafka broker that understands Kafka framing
// in both directions. Requests pass unchanged, and the proxy remembers each one's API key
// and version by correlation id so it can decode the answer. Metadata and FindCoordinator
// responses are rewritten so every broker address they carry is the proxy's own (clients
// then never bypass it); Produce responses are counted by error code and a fraction of
// them dropped.
//
// Because every advertised address becomes the proxy's, it fronts exactly one broker.
// Random choices come from one seeded generator; with several connections their order
// depends on scheduling, so a seed fixes the drop rate, not the exact requests dropped.
// All methods may be called from any goroutine.
type FaultProxy struct {
	// Addr is the proxy's listening address, host:port.
	Addr string

	target string
	cfg    FaultConfig
	ln     net.Listener
	host   string
	port   int32
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		rng       *rand.Rand
		conns     map[net.Conn]struct{}
		closed    bool
		produces  int           // Produce responses seen
		dropped   int           // Produce responses dropped
		inflight  int           // most Produce requests awaiting their answer on one connection
		errCounts map[int16]int // partition error codes in Produce responses, 0 excluded
	}
}

// Errors returned by the proxy's frame handling; they end one proxied connection.
var (
	errFrameTooLarge = errors.New("testkit: kafka frame too large")
	errShortFrame    = errors.New("testkit: kafka frame too short")
)

// maxFrame bounds a frame the proxy will buffer.
const maxFrame = 256 << 20

// StartFaultProxy listens on 127.0.0.1:0 and proxies to target. It is closed when the
// test ends.
func StartFaultProxy(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, target string, cfg FaultConfig) *FaultProxy {
	t.Helper()
	p, err := NewFaultProxy(target, cfg)
	if err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewFaultProxy listens on 127.0.0.1:0 and proxies to target until Close.
func NewFaultProxy(target string, cfg FaultConfig) (*FaultProxy, error) {
	if cfg.DropProduceResponses < 0 || cfg.DropProduceResponses > 1 {
		return nil, fmt.Errorf("testkit: DropProduceResponses %v not in [0, 1]", cfg.DropProduceResponses)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	pn, _ := strconv.Atoi(port)
	p := &FaultProxy{Addr: ln.Addr().String(), target: target, cfg: cfg, ln: ln, host: host, port: int32(pn)}
	p.mu.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	p.mu.conns = make(map[net.Conn]struct{})
	p.mu.errCounts = make(map[int16]int)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Close stops listening, closes every proxied connection and waits for their goroutines.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	for c := range p.mu.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// Stats returns how many Produce responses the proxy has seen and how many it dropped.
func (p *FaultProxy) Stats() (produces, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.produces, p.mu.dropped
}

// MaxInflightProduce returns the largest number of Produce requests seen awaiting their
// answers at once on one connection.
func (p *FaultProxy) MaxInflightProduce() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.inflight
}

// noteInflight records n Produce requests awaiting answers on one connection.
func (p *FaultProxy) noteInflight(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.inflight = max(p.mu.inflight, int(n))
}

// ProduceErrors returns how often each non-zero partition error code appeared in Produce
// responses from the broker, dropped ones included.
func (p *FaultProxy) ProduceErrors() map[int16]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int16]int, len(p.mu.errCounts))
	for k, v := range p.mu.errCounts {
		out[k] = v
	}
	return out
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers c so Close can end it; it reports false once the proxy is closed.
func (p *FaultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return false
	}
	p.mu.conns[c] = struct{}{}
	return true
}

func (p *FaultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.conns, c)
}

// apiReq is what the response direction needs to know about a request.
type apiReq struct {
	key, version int16
}

// serve proxies one client connection: one goroutine per direction, sharing the map of
// requests awaiting their response. Either direction failing, or a dropped response,
// closes both sockets, which ends the other direction.
func (p *FaultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	defer server.Close()

	var pending sync.Map             // correlation id (int32) -> apiReq
	var produceInflight atomic.Int64 // Produce requests forwarded and not yet answered
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close()
		defer server.Close()
		for {
			frame, err := readFrame(client)
			if err != nil {
				return
			}
			if len(frame) < 8 {
				return
			}
			key := int16(binary.BigEndian.Uint16(frame[0:]))
			ver := int16(binary.BigEndian.Uint16(frame[2:]))
			corr := int32(binary.BigEndian.Uint32(frame[4:]))
			pending.Store(corr, apiReq{key, ver})
			if key == kmsg.Produce.Int16() {
				p.noteInflight(produceInflight.Add(1))
			}
			if err := writeFrame(server, frame); err != nil {
				return
			}
		}
	}()
	for {
		frame, err := readFrame(server)
		if err != nil {
			break
		}
		if len(frame) < 4 {
			break
		}
		corr := int32(binary.BigEndian.Uint32(frame))
		v, ok := pending.LoadAndDelete(corr)
		if !ok {
			break // an answer to nothing: the stream is not what we think it is
		}
		if v.(apiReq).key == kmsg.Produce.Int16() {
			produceInflight.Add(-1)
		}
		out, drop, err := p.onResponse(v.(apiReq), frame)
		if err != nil || drop {
			break
		}
		if err := writeFrame(client, out); err != nil {
			break
		}
	}
	client.Close()
	server.Close()
	<-done
}

// onResponse inspects one response frame (header and body, without the size) and returns
// the frame to forward, or drop.
func (p *FaultProxy) onResponse(req apiReq, frame []byte) (out []byte, drop bool, err error) {
	switch req.key {
	case kmsg.Produce.Int16():
		return p.onProduce(req, frame)
	case kmsg.Metadata.Int16(), kmsg.FindCoordinator.Int16():
		out, err := p.rewriteAddrs(req, frame)
		return out, false, err
	}
	return frame, false, nil
}

func (p *FaultProxy) onProduce(req apiReq, frame []byte) ([]byte, bool, error) {
	resp := new(kmsg.ProduceResponse)
	_, body, err := splitResponse(req, frame)
	if err != nil {
		return nil, false, err
	}
	resp.SetVersion(req.version)
	if err := resp.ReadFrom(body); err != nil {
		return nil, false, fmt.Errorf("testkit: decode produce response v%d: %w", req.version, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.produces++
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			if pt.ErrorCode != 0 {
				p.mu.errCounts[pt.ErrorCode]++
			}
		}
	}
	if p.cfg.DropProduceResponses > 0 && p.mu.rng.Float64() < p.cfg.DropProduceResponses {
		p.mu.dropped++
		return nil, true, nil
	}
	return frame, false, nil
}

// rewriteAddrs points every broker address of a Metadata or FindCoordinator response at
// the proxy.
func (p *FaultProxy) rewriteAddrs(req apiReq, frame []byte) ([]byte, error) {
	hdr, body, err := splitResponse(req, frame)
	if err != nil {
		return nil, err
	}
	var resp kmsg.Response
	switch req.key {
	case kmsg.Metadata.Int16():
		m := new(kmsg.MetadataResponse)
		m.SetVersion(req.version)
		if err := m.ReadFrom(body); err != nil {
			return nil, fmt.Errorf("testkit: decode metadata response v%d: %w", req.version, err)
		}
		for i := range m.Brokers {
			m.Brokers[i].Host, m.Brokers[i].Port = p.host, p.port
		}
		resp = m
	default:
		f := new(kmsg.FindCoordinatorResponse)
		f.SetVersion(req.version)
		if err := f.ReadFrom(body); err != nil {
			return nil, fmt.Errorf("testkit: decode find coordinator response v%d: %w", req.version, err)
		}
		if f.Host != "" {
			f.Host, f.Port = p.host, p.port
		}
		for i := range f.Coordinators {
			if f.Coordinators[i].Host != "" {
				f.Coordinators[i].Host, f.Coordinators[i].Port = p.host, p.port
			}
		}
		resp = f
	}
	return resp.AppendTo(append([]byte(nil), hdr...)), nil
}

// splitResponse splits a response frame into its header (correlation id, plus the tag
// section for flexible versions; ApiVersions always uses the short header) and its body.
func splitResponse(req apiReq, frame []byte) (hdr, body []byte, err error) {
	n := 4
	r := kmsg.RequestForKey(req.key)
	if r == nil {
		return nil, nil, fmt.Errorf("testkit: unknown api key %d", req.key)
	}
	r.SetVersion(req.version)
	if r.IsFlexible() && req.key != kmsg.ApiVersions.Int16() {
		tags, m := binary.Uvarint(frame[n:])
		if m <= 0 {
			return nil, nil, errShortFrame
		}
		n += m
		for range tags {
			if _, m = binary.Uvarint(frame[n:]); m <= 0 {
				return nil, nil, errShortFrame
			}
			n += m
			size, m := binary.Uvarint(frame[n:])
			if m <= 0 || uint64(len(frame)-n-m) < size {
				return nil, nil, errShortFrame
			}
			n += m + int(size)
		}
	}
	return frame[:n], frame[n:], nil
}

// readFrame reads one size-prefixed Kafka frame and returns it without the size.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > maxFrame {
		return nil, errFrameTooLarge
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeFrame writes frame with its size prefix in one write.
func writeFrame(w io.Writer, frame []byte) error {
	buf := make([]byte, 4+len(frame))
	binary.BigEndian.PutUint32(buf, uint32(len(frame)))
	copy(buf[4:], frame)
	_, err := w.Write(buf)
	return err
}
