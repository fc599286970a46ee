package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of the framing layer. Each one closes the connection that produced it.
var (
	errFrameSize    = errors.New("frame size out of bounds")
	errShortHeader  = errors.New("request header truncated")
	errUnknownKey   = errors.New("unknown api key")
	errBadTaggedFld = errors.New("malformed tagged fields in request header")
)

// readFrame reads one size-prefixed frame into buf, growing it only after the size has been
// checked against max, so a hostile length never allocates. It returns the frame's bytes.
func readFrame(r io.Reader, buf []byte, max int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return buf, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 0 || n > max {
		return buf, fmt.Errorf("%w: %d bytes (socket.request.max.bytes is %d)", errFrameSize, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// requestHeader is the decoded request header (v0–v2).
type requestHeader struct {
	key, version  int16
	correlationID int32
	clientID      string
	flexible      bool // request (and, except ApiVersions, response) use flexible headers
	bodyOffset    int
}

// parseHeader decodes the header of a request frame. The header version depends on the body's
// flexibility, which kmsg knows per key and version; an unknown key is an error. An unknown
// version of a known key still parses (the caller decides what to do with it).
func parseHeader(b []byte) (requestHeader, error) {
	var h requestHeader
	if len(b) < 10 {
		return h, errShortHeader
	}
	h.key = int16(binary.BigEndian.Uint16(b[0:]))
	h.version = int16(binary.BigEndian.Uint16(b[2:]))
	h.correlationID = int32(binary.BigEndian.Uint32(b[4:]))
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return h, fmt.Errorf("%w %d", errUnknownKey, h.key)
	}
	if h.version >= 0 && h.version <= req.MaxVersion() {
		req.SetVersion(h.version)
		h.flexible = req.IsFlexible()
	}
	// Client id: a nullable int16-length string in every header version.
	l := int16(binary.BigEndian.Uint16(b[8:]))
	p := 10
	if l > 0 {
		if len(b) < p+int(l) {
			return h, errShortHeader
		}
		h.clientID = string(b[p : p+int(l)])
		p += int(l)
	}
	if h.flexible {
		n, err := skipTaggedFields(b[p:])
		if err != nil {
			return h, err
		}
		p += n
	}
	h.bodyOffset = p
	return h, nil
}

// skipTaggedFields skips a tagged-field section and returns its length in bytes.
func skipTaggedFields(b []byte) (int, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return 0, errBadTaggedFld
	}
	p := n
	for i := uint64(0); i < count; i++ {
		_, n = binary.Uvarint(b[p:]) // tag
		if n <= 0 {
			return 0, errBadTaggedFld
		}
		p += n
		size, n := binary.Uvarint(b[p:])
		if n <= 0 || size > uint64(len(b)-p-n) {
			return 0, errBadTaggedFld
		}
		p += n + int(size)
	}
	return p, nil
}
