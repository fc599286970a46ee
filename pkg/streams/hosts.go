package streams

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Instances learn who owns which task through the group protocol, as Kafka Streams does:
// each member puts its application.server in its join metadata's user data, and the leader,
// after balancing, puts the map host → tasks into every member's assignment user data. Both
// are small versioned encodings of our own:
//
//	member:     version=1 | uvarint len | host
//	assignment: version=1 | uvarint hosts | { uvarint len | host | uvarint tasks | { uvarint sub | uvarint partition } }
//
// Members without an application.server are left out of the map.

const hostsVersion = 1

func encodeMemberInfo(server string) []byte {
	b := []byte{hostsVersion}
	b = binary.AppendUvarint(b, uint64(len(server)))
	return append(b, server...)
}

func decodeMemberInfo(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil // a member that sent no user data
	}
	d := userDataReader{b: b}
	if v := d.byte(); v != hostsVersion {
		return "", fmt.Errorf("%w: member user data version %d", ErrConfig, v)
	}
	s := d.string()
	return s, d.err
}

// encodeHosts writes the owners map deterministically (hosts and tasks sorted).
func encodeHosts(owners map[TaskID]string) []byte {
	byHost := map[string][]TaskID{}
	for id, h := range owners {
		if h != "" {
			byHost[h] = append(byHost[h], id)
		}
	}
	b := []byte{hostsVersion}
	b = binary.AppendUvarint(b, uint64(len(byHost)))
	for _, h := range sortedKeys(byHost) {
		ids := byHost[h]
		sort.Slice(ids, func(i, j int) bool {
			if ids[i].Subtopology != ids[j].Subtopology {
				return ids[i].Subtopology < ids[j].Subtopology
			}
			return ids[i].Partition < ids[j].Partition
		})
		b = binary.AppendUvarint(b, uint64(len(h)))
		b = append(b, h...)
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, uint64(id.Subtopology))
			b = binary.AppendUvarint(b, uint64(id.Partition))
		}
	}
	return b
}

func decodeHosts(b []byte) (map[TaskID]string, error) {
	owners := map[TaskID]string{}
	if len(b) == 0 {
		return owners, nil
	}
	d := userDataReader{b: b}
	if v := d.byte(); v != hostsVersion {
		return nil, fmt.Errorf("%w: assignment user data version %d", ErrConfig, v)
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		h := d.string()
		if h == "" {
			d.fail() // never written: members without a server are left out
		}
		for m := d.count(); m > 0 && d.err == nil; m-- {
			sub, p := d.uvarint(), d.uvarint()
			if sub > 1<<30 || p > 1<<31-1 {
				d.fail()
			}
			owners[TaskID{int(sub), int32(p)}] = h
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return owners, nil
}

// userDataReader reads the user-data encodings; the first short or malformed field sets err and
// every later read returns zero.
type userDataReader struct {
	b   []byte
	err error
}

func (d *userDataReader) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: malformed group user data", ErrConfig)
	}
	d.b = nil
}

func (d *userDataReader) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *userDataReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left (each element takes at least a byte).
func (d *userDataReader) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *userDataReader) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
