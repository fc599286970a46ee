package record

// rawRecord is one record's fields as slices of the records section; no
// copying. key and value are nil for null, non-nil (possibly empty)
// otherwise. headers holds numHeaders encoded headers, already bounds-checked.
type rawRecord struct {
	attributes     int8
	timestampDelta int64
	offsetDelta    int32
	key, value     []byte
	headers        []byte
	numHeaders     int32
}

// nextRecord decodes the record at the front of b into r and returns its
// encoded size, or 0 if the record is malformed: a bad varint, a length that
// leaves its bounds, a negative count, or a length prefix that does not match
// the fields it frames.
func nextRecord(b []byte, r *rawRecord) int {
	length, n := readVarint(b)
	if n <= 0 || length < 0 || int(length) > len(b)-n {
		return 0
	}
	body := b[n : n+int(length)]
	total := n + int(length)

	if len(body) < 1 {
		return 0
	}
	r.attributes = int8(body[0])
	p := 1
	if r.timestampDelta, n = readVarlong(body[p:]); n <= 0 {
		return 0
	}
	p += n
	if r.offsetDelta, n = readVarint(body[p:]); n <= 0 {
		return 0
	}
	p += n
	if r.key, n = readBytes(body[p:]); n <= 0 {
		return 0
	}
	p += n
	if r.value, n = readBytes(body[p:]); n <= 0 {
		return 0
	}
	p += n
	if r.numHeaders, n = readVarint(body[p:]); n <= 0 || r.numHeaders < 0 {
		return 0
	}
	p += n
	hstart := p
	for i := int32(0); i < r.numHeaders; i++ {
		// A header is a non-null key and a nullable value.
		k, n := readBytes(body[p:])
		if n <= 0 || k == nil {
			return 0
		}
		p += n
		if _, n = readBytes(body[p:]); n <= 0 {
			return 0
		}
		p += n
	}
	r.headers = body[hstart:p]
	if p != len(body) {
		return 0
	}
	return total
}

// readBytes decodes a varint-length-prefixed byte string (-1 = null).
func readBytes(b []byte) ([]byte, int) {
	l, n := readVarint(b)
	if n <= 0 || l < -1 {
		return nil, 0
	}
	if l == -1 {
		return nil, n
	}
	if int(l) > len(b)-n {
		return nil, 0
	}
	return b[n : n+int(l) : n+int(l)], n + int(l)
}
