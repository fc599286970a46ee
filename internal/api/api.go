// Package api holds one handler per Kafka API: kmsg requests in, kmsg responses out,
// version gates and the mapping of internal errors to Kafka error codes. It owns no files
// and no domain locks; state lives in the packages below it.
package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request as the server hands it to a handler.
//
// The record batches of a produce request are slices of the connection's read buffer, valid
// only until the handler's synchronous part returns (the server reuses that buffer for the
// next produce request). Every other request's bytes remain valid for as long as they are
// referenced, so handlers may keep them (group assignments, member metadata).
type Request struct {
	Key, Version  int16
	CorrelationID int32
	ClientID      string
	Body          kmsg.Request
	Conn          ConnInfo
}

// ConnInfo describes the connection a request arrived on.
type ConnInfo struct {
	ID         uint64
	RemoteAddr net.Addr
	Listener   string
}

// Response is what a handler returns: a kmsg.Response, a *Raw body, or a Deferred whose Await
// yields one of those later. A nil Response means "send nothing" (produce with acks=0).
type Response any

// Deferred is a response completed after the handler returns (produce waiting for its fsync,
// fetch long polls). The server calls Await from the connection's writer goroutine, in request
// order, so a later request's response is never sent before an earlier one's.
type Deferred interface {
	Await() Response
}

// DeferFunc adapts a function to Deferred.
type DeferFunc func() Response

// Await implements Deferred.
func (f DeferFunc) Await() Response { return f() }

// Raw is a response body encoded by its handler rather than by kmsg: used by fetch so that
// record bytes go from the log files to the socket without passing through a response struct.
// Chunks are written in order.
type Raw struct {
	Chunks []Chunk
	// Release, if set, is called once the body has been written or abandoned.
	Release func()
}

// Chunk is either bytes in memory or a range of a file.
type Chunk struct {
	B    []byte
	File FileRange
}

// FileRange is a byte range of a file. The server sends it with sendfile when R also has a
// SyscallConn method (an OS file), and reads it otherwise.
type FileRange struct {
	R   io.ReaderAt
	Off int64
	N   int
}

// Size returns the number of body bytes.
func (r *Raw) Size() int {
	n := 0
	for _, c := range r.Chunks {
		if c.B != nil {
			n += len(c.B)
		} else {
			n += c.File.N
		}
	}
	return n
}

// handlerFunc serves one API key. A returned error closes the connection: Kafka errors
// travel inside responses, a Go error means the request could not be understood.
type handlerFunc func(ctx context.Context, h *Handlers, req *Request) (Response, error)

// registration is one API key's handler and the versions it serves.
type registration struct {
	key          int16
	min, max     int16
	advertiseMin int16 // the minimum ApiVersions reports; below min only for Produce (see produce.go)
	fn           handlerFunc
}

var registry = map[int16]registration{}

// register is called from each handler file's init so that ApiVersions is computed from
// what is implemented, never listed by hand.
func register(key, min, max int16, fn handlerFunc) {
	if _, dup := registry[key]; dup {
		panic(fmt.Sprintf("api key %d registered twice", key))
	}
	if max > kmsg.RequestForKey(key).MaxVersion() {
		panic(fmt.Sprintf("api key %d: version %d is beyond the codec", key, max))
	}
	registry[key] = registration{key: key, min: min, max: max, advertiseMin: min, fn: fn}
}

// advertiseFrom makes ApiVersions report key from version v although only the registered range
// is served. Kafka does exactly this for Produce (KAFKA-18659): librdkafka before 2.11.1
// compresses gzip, snappy and lz4 batches only if the broker lists Produce v0, and clients
// pick the highest common version, so nobody actually sends the versions below the served
// minimum; a request that does is refused like any unsupported version.
func advertiseFrom(key, v int16) {
	r := registry[key]
	r.advertiseMin = v
	registry[key] = r
}

// VersionRange is one served API key with its versions.
type VersionRange struct {
	Key, Min, Max int16
	AdvertisedMin int16 // what ApiVersions reports as the minimum (≤ Min)
}

// Supported lists the served API keys in key order.
func Supported() []VersionRange {
	out := make([]VersionRange, 0, len(registry))
	for _, r := range registry {
		out = append(out, VersionRange{r.key, r.min, r.max, r.advertiseMin})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Supports reports whether key at version is served.
func Supports(key, version int16) bool {
	r, ok := registry[key]
	return ok && version >= r.min && version <= r.max
}

// Handle dispatches a decoded request. The caller has checked Supports (ApiVersions is the
// exception: an unsupported ApiVersions version is answered, see apiversions.go).
func (h *Handlers) Handle(ctx context.Context, req *Request) (Response, error) {
	r, ok := registry[req.Key]
	if !ok {
		return nil, fmt.Errorf("unsupported api key %d", req.Key)
	}
	return r.fn(ctx, h, req)
}

// logger returns the handlers' logger with the request's identity attached.
func (h *Handlers) logReq(req *Request) *slog.Logger {
	return h.log.With("api", kmsg.NameForKey(req.Key), "version", req.Version, "client", req.ClientID, "conn", req.Conn.ID)
}
