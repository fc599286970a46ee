package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/wire"
)

// leaderConn is a fetcher's connection to its leader. Requests are encoded with kmsg at the
// highest version both sides know (ApiVersions once per connection); every response is read
// into one buffer reused from request to request, so that replicating a GB costs no fresh
// memory for the responses that carry it. A response is valid until the next request: the
// fetcher applies each one (the log copies what it appends) before it sends the next.
//
// Not safe for concurrent use: the fetcher's goroutine alone sends requests. A failed
// request closes the connection; the next one dials again.
type leaderConn struct {
	addr   string
	dial   time.Duration // dial timeout
	extra  time.Duration // how long a response may take beyond the request's own wait
	format *kmsg.RequestFormatter

	conn     net.Conn
	r        *bufio.Reader
	versions map[int16]int16 // the leader's highest version of each API key
	corr     int32
	out      []byte // the encoded request, reused
	in       []byte // the response, reused
}

// maxResponse bounds what a leader's response may claim to be, far above a fetch's
// max_bytes: a larger size is a broken stream, not a response to read.
const maxResponse = 1 << 30

func newLeaderConn(addr string) *leaderConn {
	return &leaderConn{addr: addr, dial: 2 * time.Second, extra: 10 * time.Second,
		format: kmsg.NewRequestFormatter(kmsg.FormatterClientID("poste-replica-fetcher"))}
}

// request sends req and returns its response; wait is how long the leader may hold the
// request by design (a fetch's max wait). The response may refer to the connection's
// buffer until the next request.
func (c *leaderConn) request(ctx context.Context, req kmsg.Request, wait time.Duration) (kmsg.Response, error) {
	if c.conn == nil {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
	}
	v, ok := c.versions[req.Key()]
	if !ok {
		c.close()
		return nil, fmt.Errorf("leader %s does not serve API key %d", c.addr, req.Key())
	}
	req.SetVersion(min(v, req.MaxVersion()))
	resp, err := c.roundTrip(ctx, req, wait)
	if err != nil {
		c.close()
		return nil, err
	}
	return resp, nil
}

// connect dials the leader and learns its API versions (ApiVersions v0, which every
// version of the protocol answers).
func (c *leaderConn) connect(ctx context.Context) error {
	d := net.Dialer{Timeout: c.dial}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 64<<10)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(0)
	resp, err := c.roundTrip(ctx, av, 0)
	if err != nil {
		c.close()
		return fmt.Errorf("api versions from %s: %w", c.addr, err)
	}
	avr := resp.(*kmsg.ApiVersionsResponse)
	if avr.ErrorCode != 0 {
		c.close()
		return fmt.Errorf("api versions from %s: error code %d", c.addr, avr.ErrorCode)
	}
	c.versions = make(map[int16]int16, len(avr.ApiKeys))
	for _, k := range avr.ApiKeys {
		c.versions[k.ApiKey] = k.MaxVersion
	}
	return nil
}

func (c *leaderConn) roundTrip(ctx context.Context, req kmsg.Request, wait time.Duration) (kmsg.Response, error) {
	deadline := time.Now().Add(wait + c.extra)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A cancelled context ends a request held by the leader at once. The callback may run
	// after this request returned and close cleared c.conn: it holds its own reference.
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.corr++
	c.out = c.format.AppendRequest(c.out[:0], req, c.corr)
	if _, err := c.conn.Write(c.out); err != nil {
		return nil, ctxErr(ctx, err)
	}
	body, err := wire.ReadFrame(c.r, c.in, maxResponse)
	c.in = body[:0]
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if len(body) < 4 {
		return nil, fmt.Errorf("response of %d bytes from %s", len(body), c.addr)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return nil, fmt.Errorf("response for correlation id %d from %s, want %d", corr, c.addr, c.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		// The response header's tagged fields (ApiVersions keeps header v0).
		n, err := wire.SkipTags(body)
		if err != nil {
			return nil, fmt.Errorf("response header from %s: %w", c.addr, err)
		}
		body = body[n:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %T from %s: %w", resp, c.addr, err)
	}
	return resp, nil
}

// ctxErr prefers the context's error to the deadline error its cancellation caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return errors.Join(cerr, err)
	}
	return err
}

func (c *leaderConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.r, c.versions = nil, nil, nil
	}
	if cap(c.in) > 16<<20 {
		c.in = nil // an unusually large response is not kept for the next connection
	}
}
