// Package wire holds the pieces of Kafka's framing that both ends of a connection need: a
// size-prefixed frame read into a reused buffer, and the tagged-field sections of flexible
// headers. The broker's server reads requests with them; a follower's fetcher reads its
// leader's responses.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrFrameSize is a frame whose size prefix is negative or above the limit.
	ErrFrameSize = errors.New("frame size out of bounds")
	// ErrTags is a tagged-field section that runs past its bytes.
	ErrTags = errors.New("malformed tagged fields")
)

// ReadFrame reads one size-prefixed frame into buf, growing it only after the size has been
// checked against max, so a hostile length never allocates. It returns the frame's bytes.
func ReadFrame(r io.Reader, buf []byte, max int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return buf, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 0 || n > max {
		return buf, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameSize, n, max)
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

// SkipTags skips the tagged-field section at the start of b and returns its length in bytes.
func SkipTags(b []byte) (int, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return 0, ErrTags
	}
	p := n
	for i := uint64(0); i < count; i++ {
		_, n = binary.Uvarint(b[p:]) // tag
		if n <= 0 {
			return 0, ErrTags
		}
		p += n
		size, n := binary.Uvarint(b[p:])
		if n <= 0 || size > uint64(len(b)-p-n) {
			return 0, ErrTags
		}
		p += n + int(size)
	}
	return p, nil
}
