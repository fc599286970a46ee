package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// NewUUID returns a random version-4 UUID usable as a topic, cluster or
// incarnation id. Like Kafka it never returns the zero UUID, the reserved
// UUID 1, or one whose string form starts with '-' (command-line tools would
// mistake it for a flag).
func NewUUID() [16]byte {
	for {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			panic(fmt.Sprintf("metadata: crypto/rand failed: %v", err)) // crypto/rand does not fail on supported platforms
		}
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		if UUIDString(id)[0] != '-' {
			return id
		}
	}
}

// UUIDString formats id the way Kafka prints UUIDs: URL-safe base64 without
// padding, 22 characters.
func UUIDString(id [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// ParseUUID parses the form produced by UUIDString.
func ParseUUID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 22 {
		return id, fmt.Errorf("%w: uuid %q is not 22 characters", ErrInvalidUUID, s)
	}
	n, err := base64.RawURLEncoding.Decode(id[:], []byte(s))
	if err != nil || n != 16 {
		return id, fmt.Errorf("%w: uuid %q", ErrInvalidUUID, s)
	}
	return id, nil
}
