package controller

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/poste-io/poste/internal/metadata"
)

// Replica placement for new topics and partitions: only on usable brokers
// (unfenced, not in controlled shutdown), rack-aware, leaders round-robin.

// placed is a broker replicas may go to, with its rack key (a broker
// without broker.rack is a rack of its own).
type placed struct {
	id   int32
	rack string
}

// placementBrokers are the usable brokers sorted by id, or this node alone
// when no broker is registered at all (a single node before registration).
func placementBrokers(img *metadata.Image, o Options) []placed {
	bs := img.Brokers()
	if len(bs) == 0 {
		return []placed{{id: o.NodeID, rack: "\x00" + strconv.Itoa(int(o.NodeID))}}
	}
	var out []placed
	for _, b := range bs {
		if !b.Usable() {
			continue
		}
		rack := "\x00" + strconv.Itoa(int(b.ID)) // unique: no real rack starts with NUL
		if b.Rack != nil {
			rack = *b.Rack
		}
		out = append(out, placed{id: b.ID, rack: rack})
	}
	return out
}

func checkReplicationFactor(rf int, usable []placed) error {
	if len(usable) == 0 {
		return errorf(ErrInvalidReplicationFactor, "Unable to replicate the partition %d time(s): All brokers are currently fenced.", rf)
	}
	if rf > len(usable) {
		return errorf(ErrInvalidReplicationFactor, "Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, rf, len(usable))
	}
	return nil
}

// rackAlternated orders brokers so that consecutive ones are on different
// racks where possible: racks in order of their lowest broker id, then the
// first broker of each rack, the second of each, and so on. Without racks
// it is the brokers in id order.
func rackAlternated(brokers []placed) []placed {
	byRack := map[string][]placed{}
	var racks []string
	for _, b := range brokers { // sorted by id, so each rack's list is too
		if byRack[b.rack] == nil {
			racks = append(racks, b.rack)
		}
		byRack[b.rack] = append(byRack[b.rack], b)
	}
	slices.SortStableFunc(racks, func(a, b string) int { return cmp.Compare(byRack[a][0].id, byRack[b][0].id) })
	out := make([]placed, 0, len(brokers))
	for round := 0; len(out) < len(brokers); round++ {
		for _, r := range racks {
			if round < len(byRack[r]) {
				out = append(out, byRack[r][round])
			}
		}
	}
	return out
}

// place assigns rf replicas to each of count partitions numbered from first.
// Partition p's leader is the broker at (start+p) in the rack-alternated
// order, so leaders go round-robin; its followers are the next brokers in
// that order, skipping racks already used until every rack holds one.
// Requires 1 <= rf <= len(brokers).
func place(brokers []placed, start, first, count int, rf int) [][]int32 {
	order := rackAlternated(brokers)
	n := len(order)
	out := make([][]int32, count)
	racks := make(map[string]bool, rf)
	for i := range out {
		reps := make([]int32, 0, rf)
		clear(racks)
		at := start + first + i
		// First pass: distinct racks; second pass: whatever is left.
		for pass := 0; pass < 2 && len(reps) < rf; pass++ {
			for j := 0; j < n && len(reps) < rf; j++ {
				b := order[(at+j)%n]
				if slices.Contains(reps, b.id) || (pass == 0 && racks[b.rack]) {
					continue
				}
				reps = append(reps, b.id)
				racks[b.rack] = true
			}
		}
		out[i] = reps
	}
	return out
}
