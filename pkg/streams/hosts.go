package streams

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// Instances learn who owns which task through the group protocol, as Kafka Streams does:
// each member puts its application.server and the tasks whose state it holds locally in its
// join metadata's user data, and the leader, after balancing, puts the map host → active and
// standby tasks, plus the member's own standby tasks, into every member's assignment user
// data. Both are small versioned encodings of our own (tasks = uvarint n | { uvarint sub |
// uvarint partition }, sorted):
//
//	member v2:     version=2 | uvarint len | host | tasks with local state
//	assignment v2: version=2 | uvarint hosts | { uvarint len | host | active tasks | standby tasks } | own standby tasks
//
// Version 1 (host only; hosts with active tasks only, no trailer) is still read, so that a
// group may hold instances of both versions. Members without an application.server are left
// out of the host map.

const (
	userDataV1 = 1
	userDataV2 = 2
)

// memberInfo is what a member says about itself when it joins.
type memberInfo struct {
	host  string
	state []TaskID // tasks whose state it holds: standby tasks and checkpointed task directories
}

func encodeMemberInfo(m memberInfo) []byte {
	b := []byte{userDataV2}
	b = binary.AppendUvarint(b, uint64(len(m.host)))
	b = append(b, m.host...)
	return appendTasks(b, m.state)
}

func decodeMemberInfo(b []byte) (memberInfo, error) {
	if len(b) == 0 {
		return memberInfo{}, nil // a member that sent no user data
	}
	d := userDataReader{b: b}
	v := d.byte()
	if v != userDataV1 && v != userDataV2 {
		return memberInfo{}, fmt.Errorf("%w: member user data version %d", ErrConfig, v)
	}
	m := memberInfo{host: d.string()}
	if v == userDataV2 {
		m.state = d.tasks()
	}
	if err := d.end(); err != nil {
		return memberInfo{}, err
	}
	return m, nil
}

// assignmentInfo is what the leader tells a member besides its partitions.
type assignmentInfo struct {
	owners   map[TaskID]string   // active task → its owner's host
	standbys map[TaskID][]string // task → hosts of its standby copies, sorted
	mine     []TaskID            // this member's standby tasks, sorted
}

// encodeAssignment writes a member's assignment user data deterministically (hosts and
// tasks sorted).
func encodeAssignment(owners map[TaskID]string, standbys map[TaskID][]string, mine []TaskID) []byte {
	active := map[string][]TaskID{}
	standby := map[string][]TaskID{}
	for id, h := range owners {
		if h != "" {
			active[h] = append(active[h], id)
		}
	}
	for id, hs := range standbys {
		for _, h := range hs {
			if h != "" {
				standby[h] = append(standby[h], id)
			}
		}
	}
	hosts := map[string]bool{}
	for h := range active {
		hosts[h] = true
	}
	for h := range standby {
		hosts[h] = true
	}
	b := []byte{userDataV2}
	b = binary.AppendUvarint(b, uint64(len(hosts)))
	for _, h := range sortedKeys(hosts) {
		b = binary.AppendUvarint(b, uint64(len(h)))
		b = append(b, h...)
		b = appendTasks(b, active[h])
		b = appendTasks(b, standby[h])
	}
	return appendTasks(b, mine)
}

func decodeAssignment(b []byte) (assignmentInfo, error) {
	info := assignmentInfo{owners: map[TaskID]string{}, standbys: map[TaskID][]string{}}
	if len(b) == 0 {
		return info, nil
	}
	d := userDataReader{b: b}
	v := d.byte()
	if v != userDataV1 && v != userDataV2 {
		return assignmentInfo{}, fmt.Errorf("%w: assignment user data version %d", ErrConfig, v)
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		h := d.string()
		if h == "" {
			d.fail() // never written: members without a server are left out
		}
		for _, id := range d.tasks() {
			info.owners[id] = h
		}
		if v == userDataV2 {
			for _, id := range d.tasks() {
				info.standbys[id] = append(info.standbys[id], h)
			}
		}
	}
	if v == userDataV2 {
		info.mine = d.tasks()
	}
	if err := d.end(); err != nil {
		return assignmentInfo{}, err
	}
	for _, hs := range info.standbys {
		slices.Sort(hs)
	}
	sortTasks(info.mine)
	return info, nil
}

func compareTasks(a, b TaskID) int {
	if a.Subtopology != b.Subtopology {
		return cmp.Compare(a.Subtopology, b.Subtopology)
	}
	return cmp.Compare(a.Partition, b.Partition)
}

func sortTasks(ids []TaskID) { slices.SortFunc(ids, compareTasks) }

// appendTasks writes ids sorted (it sorts them in place).
func appendTasks(b []byte, ids []TaskID) []byte {
	sortTasks(ids)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(id.Subtopology))
		b = binary.AppendUvarint(b, uint64(id.Partition))
	}
	return b
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

// end is the reader's first error, or a failure if bytes are left over.
func (d *userDataReader) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail()
	}
	return d.err
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

// tasks reads a list of task ids.
func (d *userDataReader) tasks() []TaskID {
	var ids []TaskID
	for m := d.count(); m > 0 && d.err == nil; m-- {
		sub, p := d.uvarint(), d.uvarint()
		if sub > 1<<30 || p > 1<<31-1 {
			d.fail()
			return nil
		}
		ids = append(ids, TaskID{int(sub), int32(p)})
	}
	return ids
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
