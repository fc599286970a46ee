package api

import (
	"encoding/binary"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/partition"
)

// The fetch response is encoded here rather than by kmsg so that record bytes are never copied
// into a response struct: the encoder emits the fields around each partition's records into
// small buffers and the records themselves as file ranges, which the server sends with
// sendfile. Tests decode its output with kmsg.FetchResponse for every served version.

// fetchPart is one partition of a fetch response.
type fetchPart struct {
	partition     int32
	errCode       int16
	hw, lso, lso0 int64 // high watermark, last stable offset, log start offset
	committed     bool  // read_committed: aborted transactions is a list, not null
	aborted       []partition.AbortedTxn
	records       plog.Slice
	// preferred is the replica the consumer should fetch from instead (KIP-392), when
	// hasPreferred.
	hasPreferred bool
	preferred    int32
	// diverging, for a follower whose last fetched epoch ended earlier here (KIP-595's
	// diverging epoch, used by followers since Fetch v12): the epoch and where it ends.
	diverging *divergingEpoch
}

type divergingEpoch struct {
	epoch int32
	end   int64
}

// fetchTopic is one topic of a fetch response.
type fetchTopic struct {
	name  string
	id    [16]byte
	parts []fetchPart
}

// fetchEncoder appends the encoding of one fetch response version.
type fetchEncoder struct {
	version  int16
	flexible bool
	buf      []byte
	chunks   []Chunk
}

func (e *fetchEncoder) i16(v int16) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(v)) }
func (e *fetchEncoder) i32(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }
func (e *fetchEncoder) i64(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }

func (e *fetchEncoder) arrayLen(n int) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
	} else {
		e.i32(int32(n))
	}
}

func (e *fetchEncoder) nullArray() {
	if e.flexible {
		e.buf = append(e.buf, 0)
	} else {
		e.i32(-1)
	}
}

func (e *fetchEncoder) str(s string) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(s))+1)
	} else {
		e.i16(int16(len(s)))
	}
	e.buf = append(e.buf, s...)
}

func (e *fetchEncoder) noTags() {
	if e.flexible {
		e.buf = append(e.buf, 0)
	}
}

// records emits the length of the records field into the current buffer, then the records
// as a file range chunk.
func (e *fetchEncoder) records(s plog.Slice) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(s.Size)+1)
	} else {
		e.i32(int32(s.Size))
	}
	if s.Size == 0 {
		return
	}
	e.chunks = append(e.chunks, Chunk{B: e.buf})
	e.buf = e.buf[len(e.buf):] // continue in the same backing array, after what was emitted
	e.chunks = append(e.chunks, Chunk{File: FileRange{R: s.File, Off: s.Pos, N: s.Size}})
}

// encodeFetch encodes a fetch response body of the given version.
func encodeFetch(version int16, errCode int16, sessionID int32, topics []fetchTopic) *Raw {
	e := &fetchEncoder{version: version, flexible: version >= 12, buf: make([]byte, 0, 256+64*countParts(topics))}
	if version >= 1 {
		e.i32(0) // throttle
	}
	if version >= 7 {
		e.i16(errCode)
		e.i32(sessionID)
	}
	e.arrayLen(len(topics))
	for i := range topics {
		t := &topics[i]
		if version >= 13 {
			e.buf = append(e.buf, t.id[:]...)
		} else {
			e.str(t.name)
		}
		e.arrayLen(len(t.parts))
		for j := range t.parts {
			p := &t.parts[j]
			e.i32(p.partition)
			e.i16(p.errCode)
			e.i64(p.hw)
			if version >= 4 {
				e.i64(p.lso)
			}
			if version >= 5 {
				e.i64(p.lso0)
			}
			if version >= 4 {
				if p.committed {
					e.arrayLen(len(p.aborted))
					for _, a := range p.aborted {
						e.i64(a.ProducerID)
						e.i64(a.FirstOffset)
						e.noTags()
					}
				} else {
					e.nullArray()
				}
			}
			if version >= 11 {
				if p.hasPreferred {
					e.i32(p.preferred)
				} else {
					e.i32(-1) // preferred read replica: none
				}
			}
			e.records(p.records)
			if e.flexible && p.diverging != nil {
				// One tagged field: tag 0, size 13 (epoch, end offset, empty tags).
				e.buf = append(e.buf, 1, 0, 13)
				e.i32(p.diverging.epoch)
				e.i64(p.diverging.end)
				e.buf = append(e.buf, 0)
			} else {
				e.noTags()
			}
		}
		e.noTags()
	}
	e.noTags()
	e.chunks = append(e.chunks, Chunk{B: e.buf})
	return &Raw{Chunks: e.chunks}
}

func countParts(ts []fetchTopic) int {
	n := 0
	for i := range ts {
		n += len(ts[i].parts)
	}
	return n
}
