package streams

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Records are the application's largest garbage: every input record is a kgo.Record (a
// batch's worth decoded into one slice) and every write another. Both are recycled, so that
// steady processing allocates neither and the collector runs less often.

// recordSlices is the consumer's kgo.PoolRecords: the slice a fetched batch is decoded into
// comes back once every record of the batch was processed and recycled (Record.Recycle).
// Only the Record structs are reused, never the bytes their keys, values and headers point
// to, so whatever the topology keeps of those stays intact. Slices are kept by size class
// (a power of two of records), up to recordSlicesKept bytes in all; beyond that they are
// garbage. Invariant: kept is the bytes of the slices in free.
//
// Safe for concurrent use (the client's fetch goroutines get, the processing goroutine puts).
type recordSlices struct {
	mu   sync.Mutex
	kept int // bytes held in free
	free [recordSliceClasses][][]kgo.Record
}

const (
	recordSliceClasses = 17       // up to 65,536 records a batch
	recordSlicesKept   = 32 << 20 // bytes of free slices kept at most
	recordSize         = int(unsafe.Sizeof(kgo.Record{}))
)

// sliceClass is the size class holding slices of at least n records (n >= 1).
func sliceClass(n int) int { return bits.Len(uint(n - 1)) }

// GetRecords returns a slice with room for n records.
func (p *recordSlices) GetRecords(n int) []kgo.Record {
	c := sliceClass(max(n, 1))
	if c >= recordSliceClasses {
		return make([]kgo.Record, n)
	}
	p.mu.Lock()
	if l := len(p.free[c]); l > 0 {
		s := p.free[c][l-1]
		p.free[c][l-1] = nil
		p.free[c] = p.free[c][:l-1]
		p.kept -= cap(s) * recordSize
		p.mu.Unlock()
		return s[:n]
	}
	p.mu.Unlock()
	return make([]kgo.Record, n, 1<<c)
}

// PutRecords takes back a slice whose records were all recycled (zeroed).
func (p *recordSlices) PutRecords(s []kgo.Record) {
	c := sliceClass(max(cap(s), 1))
	if c >= recordSliceClasses || cap(s) != 1<<c {
		return // not one of ours
	}
	p.mu.Lock()
	if p.kept+cap(s)*recordSize <= recordSlicesKept {
		p.free[c] = append(p.free[c], s[:0])
		p.kept += cap(s) * recordSize
	}
	p.mu.Unlock()
}

// outRecords recycles the records the application writes: the processing goroutine takes
// them with get, and the producer's promise hands each back with put once it is
// acknowledged (kgo no longer touches a record after calling its promise). Records move
// between the two sides in chunks, so each side mostly works on a slice of its own.
//
// get is called only by the holder of the application's mu, put only from the client's
// promises, which kgo calls serially; the channels are the only shared state.
type outRecords struct {
	take  []*kgo.Record      // get's side
	give  []*kgo.Record      // put's side
	full  chan []*kgo.Record // chunks of recycled records, put → get
	empty chan []*kgo.Record // emptied chunks, get → put
}

// outChunk is how many records move between the sides at once; outChunks how many chunks
// may wait (records beyond that are left to the collector).
const (
	outChunk  = 256
	outChunks = 128
)

func newOutRecords() *outRecords {
	return &outRecords{full: make(chan []*kgo.Record, outChunks), empty: make(chan []*kgo.Record, outChunks)}
}

// get returns a zeroed record.
func (p *outRecords) get() *kgo.Record {
	if len(p.take) == 0 {
		select {
		case c := <-p.full:
			if p.take != nil {
				select {
				case p.empty <- p.take:
				default:
				}
			}
			p.take = c
		default:
			return new(kgo.Record)
		}
	}
	r := p.take[len(p.take)-1]
	p.take[len(p.take)-1] = nil
	p.take = p.take[:len(p.take)-1]
	return r
}

// put zeroes an acknowledged record and keeps it for a later get.
func (p *outRecords) put(r *kgo.Record) {
	*r = kgo.Record{}
	if p.give == nil {
		select {
		case p.give = <-p.empty:
		default:
			p.give = make([]*kgo.Record, 0, outChunk)
		}
	}
	p.give = append(p.give, r)
	if len(p.give) < outChunk {
		return
	}
	select {
	case p.full <- p.give:
		p.give = nil
	default: // enough are waiting: these go to the collector
		clear(p.give)
		p.give = p.give[:0]
	}
}

// recycle hands a processed batch's records back to their pool (nothing is kept of the
// Record structs themselves: the tasks copy out the fields they need).
func recycle(rs []*kgo.Record) {
	for _, r := range rs {
		r.Recycle()
	}
}
