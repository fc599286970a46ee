package metadata

import (
	"encoding/binary"
	"fmt"
)

// encoder appends the binary payload encoding described in the package doc.
type encoder struct{ b []byte }

func (e *encoder) int8(v int8)   { e.b = append(e.b, byte(v)) }
func (e *encoder) int16(v int16) { e.b = binary.BigEndian.AppendUint16(e.b, uint16(v)) }
func (e *encoder) int32(v int32) { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *encoder) int64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) uvarint(v uint64) {
	e.b = binary.AppendUvarint(e.b, v)
}
func (e *encoder) uuid(v [16]byte) { e.b = append(e.b, v[:]...) }

func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) nullableString(s *string) {
	if s == nil {
		e.b = binary.AppendVarint(e.b, -1)
		return
	}
	e.b = binary.AppendVarint(e.b, int64(len(*s)))
	e.b = append(e.b, *s...)
}

// int32s encodes nil as null so that "unchanged" (nil) and "empty" survive a
// round trip in records where the difference matters.
func (e *encoder) int32s(v []int32) {
	if v == nil {
		e.b = binary.AppendVarint(e.b, -1)
		return
	}
	e.b = binary.AppendVarint(e.b, int64(len(v)))
	for _, x := range v {
		e.int32(x)
	}
}

// decoder reads a payload; the first failure sticks and later reads return
// zero values, so record decoders check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) int8() int8 {
	if b := d.take(1, "int8"); b != nil {
		return int8(b[0])
	}
	return 0
}

// bool accepts only 0 and 1, so that every decoded record re-encodes to the
// same bytes.
func (d *decoder) bool() bool {
	switch d.int8() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bool")
	return false
}

func (d *decoder) int16() int16 {
	if b := d.take(2, "int16"); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (d *decoder) int32() int32 {
	if b := d.take(4, "int32"); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (d *decoder) int64() int64 {
	if b := d.take(8, "int64"); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uuid() (id [16]byte) {
	copy(id[:], d.take(16, "uuid"))
	return id
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	return string(d.take(int(n), "string"))
}

func (d *decoder) nullableString() *string {
	n := d.varint()
	if n == -1 {
		return nil
	}
	if n < 0 || n > int64(len(d.b)) {
		d.fail("nullable string")
		return nil
	}
	s := string(d.take(int(n), "nullable string"))
	return &s
}

func (d *decoder) int32s() []int32 {
	n := d.varint()
	if n == -1 {
		return nil
	}
	if n < 0 || n > int64(len(d.b)/4) {
		d.fail("int32 array")
		return nil
	}
	v := make([]int32, n)
	for i := range v {
		v[i] = d.int32()
	}
	return v
}

// count reads an array length and bounds it by the bytes left, given the
// minimum encoded size of one element, so corrupt input cannot allocate much.
func (d *decoder) count(minElem int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minElem) {
		d.fail("array length")
		return 0
	}
	return int(n)
}
