package group

import (
	"bytes"
	"slices"
	"sort"
)

// TopicID is a topic's 16-byte id, as the consumer protocol names topics.
type TopicID = [16]byte

// TopicPartitions is a set of partitions of one topic, partitions ascending and unique.
type TopicPartitions struct {
	ID         TopicID
	Partitions []int32
}

// assignment is a set of partitions: topic id → partitions, ascending and unique. A topic
// with no partitions is absent. Values are never mutated in place: every operation below
// returns fresh slices, so assignments can be shared between members and snapshots.
type assignment map[TopicID][]int32

type idPart struct {
	id TopicID
	p  int32
}

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) has(id TopicID, p int32) bool {
	_, ok := slices.BinarySearch(a[id], p)
	return ok
}

// each calls fn for every partition, topics in id order.
func (a assignment) each(fn func(id TopicID, p int32)) {
	for _, id := range a.topics() {
		for _, p := range a[id] {
			fn(id, p)
		}
	}
}

func (a assignment) topics() []TopicID {
	ids := make([]TopicID, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	return ids
}

// filter returns the partitions of a for which keep is true.
func (a assignment) filter(keep func(id TopicID, p int32) bool) assignment {
	out := assignment{}
	for id, ps := range a {
		var kept []int32
		for _, p := range ps {
			if keep(id, p) {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out[id] = kept
		}
	}
	return out
}

func (a assignment) minus(b assignment) assignment {
	return a.filter(func(id TopicID, p int32) bool { return !b.has(id, p) })
}

func (a assignment) intersect(b assignment) assignment {
	return a.filter(func(id TopicID, p int32) bool { return b.has(id, p) })
}

func (a assignment) overlaps(b assignment) bool {
	for id, ps := range a {
		for _, p := range ps {
			if b.has(id, p) {
				return true
			}
		}
	}
	return false
}

func (a assignment) union(b assignment) assignment {
	out := assignment{}
	for id, ps := range a {
		out[id] = slices.Clone(ps)
	}
	for id, ps := range b {
		out[id] = append(out[id], ps...)
	}
	for id, ps := range out {
		slices.Sort(ps)
		out[id] = slices.Compact(ps)
	}
	return out
}

func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for id, ps := range a {
		if !slices.Equal(ps, b[id]) {
			return false
		}
	}
	return true
}

// list returns a as TopicPartitions in topic id order (never nil).
func (a assignment) list() []TopicPartitions {
	out := []TopicPartitions{}
	for _, id := range a.topics() {
		out = append(out, TopicPartitions{ID: id, Partitions: slices.Clone(a[id])})
	}
	return out
}

// fromList builds an assignment from what a client reports, sorting and deduplicating.
func fromList(tps []TopicPartitions) assignment {
	out := assignment{}
	for _, t := range tps {
		out[t.ID] = append(out[t.ID], t.Partitions...)
	}
	for id, ps := range out {
		slices.Sort(ps)
		ps = slices.Compact(ps)
		if len(ps) == 0 {
			delete(out, id)
			continue
		}
		out[id] = ps
	}
	return out
}

// The server-side assignors a member may ask for; the first is the default.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

var assignors = []string{AssignorUniform, AssignorRange}

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id     string
	topics []TopicID // the topics it subscribes to that exist, ascending
	prev   assignment
}

// assign runs the named assignor. partitions gives each topic's partition count; members
// are in member id order. Both assignors are pure functions of their input.
func assign(name string, members []assignMember, partitions map[TopicID]int32) map[string]assignment {
	if name == AssignorRange {
		return assignRange(members, partitions)
	}
	return assignUniform(members, partitions)
}

// assignRange gives each topic's partitions in contiguous ranges to the members subscribed
// to it, in member id order, the first members getting one more when the count does not
// divide: members with the same subscription get the same partition numbers of
// co-partitioned topics. It is not sticky.
func assignRange(members []assignMember, partitions map[TopicID]int32) map[string]assignment {
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		out[m.id] = assignment{}
	}
	bySub := map[TopicID][]string{}
	for _, m := range members {
		for _, id := range m.topics {
			bySub[id] = append(bySub[id], m.id)
		}
	}
	for id, ms := range bySub {
		n := partitions[id]
		per, extra := n/int32(len(ms)), n%int32(len(ms))
		next := int32(0)
		for i, mid := range ms {
			k := per
			if int32(i) < extra {
				k++
			}
			for p := next; p < next+k; p++ {
				out[mid][id] = append(out[mid][id], p)
			}
			next += k
		}
	}
	return out
}

// assignUniform spreads partitions so that member counts differ by at most one wherever
// subscriptions allow, moving as few partitions as it can: each member keeps the partitions
// it had that it still subscribes to, unowned partitions go to the least loaded subscribed
// member, then partitions move from the most to the least loaded members until no move
// narrows the spread.
func assignUniform(members []assignMember, partitions map[TopicID]int32) map[string]assignment {
	if len(members) == 0 {
		return map[string]assignment{}
	}
	subs := make(map[string]map[TopicID]bool, len(members))
	owned := make(map[string][]idPart, len(members))
	taken := map[idPart]bool{}
	for _, m := range members {
		subs[m.id] = map[TopicID]bool{}
		for _, id := range m.topics {
			subs[m.id][id] = true
		}
	}
	// Sticky: keep what is still valid; the balancing below takes the surplus away.
	for _, m := range members {
		m.prev.each(func(id TopicID, p int32) {
			ip := idPart{id, p}
			if subs[m.id][id] && p < partitions[id] && !taken[ip] {
				taken[ip] = true
				owned[m.id] = append(owned[m.id], ip)
			}
		})
	}
	load := func(id string) int { return len(owned[id]) }
	// Unowned partitions, in topic id then partition order, to the least loaded member.
	ids := make([]TopicID, 0, len(partitions))
	for id := range partitions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		for p := int32(0); p < partitions[id]; p++ {
			ip := idPart{id, p}
			if taken[ip] {
				continue
			}
			best := ""
			for _, m := range members {
				if subs[m.id][id] && (best == "" || load(m.id) < load(best)) {
					best = m.id
				}
			}
			if best != "" {
				taken[ip] = true
				owned[best] = append(owned[best], ip)
			}
		}
	}
	// Balance: each move lowers the sum of squared loads, so the loop ends.
	for moved := true; moved; {
		moved = false
		order := make([]string, 0, len(members))
		for _, m := range members {
			order = append(order, m.id)
		}
		sort.SliceStable(order, func(i, j int) bool { return load(order[i]) > load(order[j]) })
		for _, from := range order {
			for _, to := range slices.Backward(order) {
				if load(from)-load(to) <= 1 {
					break
				}
				// The last eligible partition of from: recently added ones move first.
				for k := len(owned[from]) - 1; k >= 0; k-- {
					ip := owned[from][k]
					if subs[to][ip.id] {
						owned[from] = slices.Delete(owned[from], k, k+1)
						owned[to] = append(owned[to], ip)
						moved = true
						break
					}
				}
				if moved {
					break
				}
			}
			if moved {
				break
			}
		}
	}
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		a := assignment{}
		for _, ip := range owned[m.id] {
			a[ip.id] = append(a[ip.id], ip.p)
		}
		for id, ps := range a {
			slices.Sort(ps)
			a[id] = ps
		}
		out[m.id] = a
	}
	return out
}
