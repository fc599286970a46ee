package server

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/wire"
)

// Errors of the framing layer. Each one closes the connection that produced it.
var (
	errFrameSize    = wire.ErrFrameSize
	errShortHeader  = errors.New("request header truncated")
	errUnknownKey   = errors.New("unknown api key")
	errBadTaggedFld = wire.ErrTags
)

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
		n, err := wire.SkipTags(b[p:])
		if err != nil {
			return h, err
		}
		p += n
	}
	h.bodyOffset = p
	return h, nil
}
