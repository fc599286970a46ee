package streams

import "unsafe"

// Records flow between nodes with their key and value as interfaces (rec). Putting a []byte
// into an interface makes Go allocate a 24-byte slice header per record; for byte-slice
// keys and values, which most topologies read and write, that was the largest cost of
// pkg/streams per record. boxSlab hands out the headers from blocks instead: one allocation
// per boxBlock boxes.
//
// A slot is handed out once per block, so an interface made from it is immutable like any
// other, and a block lives as long as one of its boxes does; except after reset, which a
// task calls between records only when none of its nodes can keep a box (see
// node.transient): then the same few slots serve every record, with no allocation and no
// garbage.

const boxBlock = 256

// boxSlab is one goroutine's supply of slice-header slots (a task's: only its goroutine
// boxes through it). Invariant: slots[:next] are handed out; slots[:max(next, dirty)] may
// hold slices, the rest are zero.
type boxSlab struct {
	slots [][]byte // the current block
	next  int
	dirty int // slots written before the last reset and not cleared since
}

// eface is the layout of an empty interface: its dynamic type, then a pointer to its value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// bytesType is the type word of an interface holding a []byte.
var bytesType = func() unsafe.Pointer {
	var x any = []byte(nil)
	return (*eface)(unsafe.Pointer(&x)).typ
}()

// box returns b in an interface, as any(b) would, without an allocation per call.
func (s *boxSlab) box(b []byte) any {
	if s.next == len(s.slots) {
		s.slots, s.next, s.dirty = make([][]byte, boxBlock), 0, 0
	}
	p := &s.slots[s.next]
	s.next++
	*p = b
	var x any
	*(*eface)(unsafe.Pointer(&x)) = eface{typ: bytesType, data: unsafe.Pointer(p)}
	return x
}

// reset hands the current block's slots out again. Only for a caller that knows no
// interface boxed since the last reset is still referenced: reusing a slot changes such an
// interface. The slots keep their slices until overwritten or released.
func (s *boxSlab) reset() {
	s.dirty = max(s.dirty, s.next)
	s.next = 0
}

// release is reset, and forgets the slices the slots held, so that the slab keeps no
// record bytes alive (once per batch of records: clearing pointers costs write barriers).
func (s *boxSlab) release() {
	s.reset()
	clear(s.slots[:min(s.dirty, len(s.slots))])
	s.dirty = 0
}

// boxer returns how to put a T into an interface: through the slab when T is []byte,
// otherwise as Go does.
func boxer[T any]() func(*boxSlab, T) any {
	if _, ok := any((*T)(nil)).(*[]byte); ok {
		return func(s *boxSlab, v T) any { return s.box(*(*[]byte)(unsafe.Pointer(&v))) }
	}
	return func(_ *boxSlab, v T) any { return v }
}
