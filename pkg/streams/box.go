package streams

import "unsafe"

// Records flow between nodes with their key and value as interfaces (rec). Putting a []byte
// into an interface makes Go allocate a 24-byte slice header per record; for byte-slice
// keys and values, which most topologies read and write, that was the largest cost of
// pkg/streams per record. boxSlab hands out the headers from blocks instead: one allocation
// per boxBlock boxes. A block slot is written once and never reused, so an interface made
// from it is immutable like any other; a block lives as long as one of its boxes does.

const boxBlock = 256

// boxSlab is one goroutine's supply of slice-header slots (a task's: only its goroutine
// boxes through it).
type boxSlab struct {
	slots [][]byte
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
	if len(s.slots) == 0 {
		s.slots = make([][]byte, boxBlock)
	}
	p := &s.slots[0]
	s.slots = s.slots[1:]
	*p = b
	var x any
	*(*eface)(unsafe.Pointer(&x)) = eface{typ: bytesType, data: unsafe.Pointer(p)}
	return x
}

// boxer returns how to put a T into an interface: through the slab when T is []byte,
// otherwise as Go does.
func boxer[T any]() func(*boxSlab, T) any {
	if _, ok := any((*T)(nil)).(*[]byte); ok {
		return func(s *boxSlab, v T) any { return s.box(*(*[]byte)(unsafe.Pointer(&v))) }
	}
	return func(_ *boxSlab, v T) any { return v }
}
