package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/api"

	"github.com/poste-io/poste/internal/wire"
)

// maxKeptReadBuffer bounds the read buffer a connection keeps between requests; a larger
// request's buffer is dropped after use so idle connections hold little memory.
const maxKeptReadBuffer = 16 << 20

// conn is one client connection.
//
// Invariants: requests are read, decoded and handed to the handler by the reader goroutine
// alone, in arrival order; responses are written by the writer goroutine alone, in the same
// order, because the reader enqueues them in that order and the writer awaits each before the
// next. The read buffer is reused only for produce requests, after the handler's synchronous
// part has returned; every other request's bytes stay valid for as long as anyone holds them.
type conn struct {
	s      *Server
	nc     net.Conn
	id     uint64
	info   api.ConnInfo
	log    *slog.Logger
	queue  chan queued
	readMu chan struct{} // closed by stopReading
}

// queued is a response waiting its turn on the connection.
type queued struct {
	key, version  int16
	correlationID int32
	flexible      bool
	resp          api.Response
}

func newConn(s *Server, nc net.Conn, listener string) *conn {
	id := s.nextID.Add(1)
	return &conn{
		s:      s,
		nc:     nc,
		id:     id,
		info:   api.ConnInfo{ID: id, RemoteAddr: nc.RemoteAddr(), Listener: listener},
		log:    s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		queue:  make(chan queued, s.cfg.MaxInFlight),
		readMu: make(chan struct{}),
	}
}

// stopReading makes the reader stop after the request it is reading; responses already
// queued are still written. Called with the server's lock held, at most once.
func (c *conn) stopReading() {
	close(c.readMu)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	defer c.s.removeConn(c)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.queue)
	<-writerDone
	c.nc.Close()
}

func (c *conn) stopping() bool {
	select {
	case <-c.readMu:
		return true
	default:
		return false
	}
}

func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var buf []byte
	for {
		frame, err := wire.ReadFrame(br, buf, c.s.cfg.MaxRequestBytes)
		if err != nil {
			switch {
			case c.stopping(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, errFrameSize):
				c.log.Warn("closing connection: refused frame", "err", err)
			default:
				c.log.Info("closing connection: read failed", "err", err)
			}
			return
		}
		if !c.handle(frame) {
			return
		}
		// Only a produce request's buffer is reused: its record bytes are consumed before its
		// handler returns. Any other request may keep slices of its bytes (group assignments,
		// member metadata) in state or in a deferred response, so its buffer is left to them.
		if isProduce(frame) && cap(frame) <= maxKeptReadBuffer {
			buf = frame[:0]
		} else {
			buf = nil
		}
	}
}

func isProduce(frame []byte) bool { return len(frame) >= 2 && frame[0] == 0 && frame[1] == 0 }

// handle decodes and dispatches one frame; false closes the connection. A panic in a handler
// is a bug: it is logged with its stack and closes this connection only, never the broker.
func (c *conn) handle(frame []byte) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("closing connection: handler panicked", "panic", r, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	h, err := parseHeader(frame)
	if err != nil {
		c.log.Warn("closing connection: bad request header", "err", err)
		return false
	}
	if !api.Supports(h.key, h.version) {
		if h.key == 18 { // ApiVersions: answer in v0 so newer clients can downgrade (KIP-511)
			c.queue <- queued{key: h.key, version: 0, correlationID: h.correlationID,
				resp: api.UnsupportedVersionResponse()}
			return true
		}
		c.log.Warn("closing connection: unsupported api version",
			"api", kmsg.NameForKey(h.key), "key", h.key, "version", h.version, "client", h.clientID)
		return false
	}
	body := kmsg.RequestForKey(h.key)
	body.SetVersion(h.version)
	if err := body.ReadFrom(frame[h.bodyOffset:]); err != nil {
		c.log.Warn("closing connection: undecodable request",
			"api", kmsg.NameForKey(h.key), "version", h.version, "client", h.clientID, "err", err)
		return false
	}
	req := &api.Request{Key: h.key, Version: h.version, CorrelationID: h.correlationID,
		ClientID: h.clientID, Body: body, Conn: c.info}
	resp, err := c.s.handler.Handle(c.s.ctx, req)
	if err != nil {
		c.log.Warn("closing connection: request refused",
			"api", kmsg.NameForKey(h.key), "version", h.version, "client", h.clientID, "err", err)
		return false
	}
	if resp == nil {
		return true
	}
	c.queue <- queued{key: h.key, version: h.version, correlationID: h.correlationID,
		flexible: h.flexible && h.key != 18, resp: resp}
	return true
}

func (c *conn) writeLoop() {
	var wbuf []byte
	failed := false
	for q := range c.queue {
		resp := c.await(q)
		if resp == nil {
			failed = true // await panicked and closed the connection
		}
		if failed {
			release(resp)
			continue // drain so the reader never blocks on a full queue
		}
		var err error
		wbuf, err = c.write(wbuf[:0], q, resp)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.log.Info("closing connection: write failed", "err", err)
			}
			failed = true
			c.nc.Close()
		}
		if cap(wbuf) > maxKeptReadBuffer {
			wbuf = nil
		}
	}
}

// await completes a deferred response. A panic while completing it is logged and answered by
// closing the connection.
func (c *conn) await(q queued) (resp api.Response) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("closing connection: deferred response panicked", "api", kmsg.NameForKey(q.key), "panic", r, "stack", string(debug.Stack()))
			c.nc.Close()
			resp = nil
		}
	}()
	resp = q.resp
	for {
		d, ok := resp.(api.Deferred)
		if !ok {
			return resp
		}
		resp = d.Await()
	}
}

func release(resp api.Response) {
	if r, ok := resp.(*api.Raw); ok && r.Release != nil {
		r.Release()
	}
}

// write encodes the response header and body and writes them.
func (c *conn) write(buf []byte, q queued, resp api.Response) ([]byte, error) {
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(q.correlationID))
	if q.flexible {
		buf = append(buf, 0) // no tagged fields in the response header
	}
	switch r := resp.(type) {
	case kmsg.Response:
		r.SetVersion(q.version)
		buf = r.AppendTo(buf)
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
		_, err := c.nc.Write(buf)
		return buf, err
	case *api.Raw:
		defer release(r)
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4+r.Size()))
		return buf, c.writeRaw(buf, r)
	default:
		c.log.Error("handler returned an unknown response type", "api", kmsg.NameForKey(q.key))
		return buf, errors.New("unknown response type")
	}
}

// writeRaw writes the header and a raw body's chunks: memory chunks are gathered into one
// writev, file ranges go out with sendfile.
func (c *conn) writeRaw(hdr []byte, r *api.Raw) error {
	bufs := net.Buffers{hdr}
	for _, ch := range r.Chunks {
		if ch.B != nil {
			bufs = append(bufs, ch.B)
			continue
		}
		if ch.File.N == 0 {
			continue
		}
		if sc, ok := ch.File.R.(interface {
			SyscallConn() (syscall.RawConn, error)
		}); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				if _, err := bufs.WriteTo(c.nc); err != nil {
					return err
				}
				bufs = bufs[:0]
				handled, err := sendFile(c.nc, rc, ch.File.Off, ch.File.N)
				if err != nil {
					return err
				}
				if handled {
					continue
				}
			}
		}
		b := make([]byte, ch.File.N)
		if _, err := ch.File.R.ReadAt(b, ch.File.Off); err != nil {
			return err
		}
		bufs = append(bufs, b)
	}
	_, err := bufs.WriteTo(c.nc)
	return err
}
