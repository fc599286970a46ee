package controller

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/poste-io/poste/internal/metadata"
)

// Leader election and the partition state changes that follow a broker's
// change of state. The rules, applied everywhere (fencing, controlled
// shutdown, unfencing, creation, reassignment):
//
//  1. Only a usable broker (registered, unfenced, not in controlled shutdown)
//     may become leader. A current leader that is usable and in the ISR stays.
//  2. Otherwise the first usable ISR member in replica order leads.
//  3. If no ISR member is usable, the first usable ELR member leads (KIP-966
//     "last replica standing": it holds every committed record); the ISR
//     becomes that member alone.
//  4. Otherwise, if unclean.leader.election.enable holds for the topic, the
//     first usable replica leads and the ISR becomes it alone (data may be
//     lost); the ELR is cleared.
//  5. Otherwise the partition has no leader (-1).
//
// ISR and ELR (KIP-966), with the topic's effective min.insync.replicas:
// members that leave the ISR while the new ISR is smaller than min ISR join
// the ELR; members of the ISR are never in the ELR; an ISR of min ISR or
// more empties the ELR. The last ISR member is never removed by fencing or
// shutdown, so the ISR names who had the data last.

// Topic config keys the elections read.
const (
	configMinISR  = "min.insync.replicas"
	configUnclean = "unclean.leader.election.enable"
)

// policy is a topic's election settings: topic config, else the cluster-wide
// dynamic broker config, else Options.
type policy struct {
	minISR  int
	unclean bool
}

func policyFor(img *metadata.Image, o Options, topic string) policy {
	p := policy{minISR: o.DefaultMinISR, unclean: o.UncleanLeaderElection}
	if v, ok := img.DefaultBrokerConfig(configMinISR); ok {
		if n, err := strconv.Atoi(v); err == nil {
			p.minISR = n
		}
	}
	if v, ok := img.TopicConfig(topic, configMinISR); ok {
		if n, err := strconv.Atoi(v); err == nil {
			p.minISR = n
		}
	}
	if v, ok := img.DefaultBrokerConfig(configUnclean); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			p.unclean = b
		}
	}
	if v, ok := img.TopicConfig(topic, configUnclean); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			p.unclean = b
		}
	}
	return p
}

// usable: the broker may lead and join ISRs.
func usable(img *metadata.Image, id int32) bool { return img.Broker(id).Usable() }

// batch accumulates a decision's records and folds them into a working
// image, so later steps of the same decision see earlier ones (a broker
// fenced by the first record is ineligible for the elections that follow).
type batch struct {
	img  *metadata.Image
	recs []metadata.Record
}

func newBatch(img *metadata.Image) *batch {
	if img == nil {
		img = metadata.Empty()
	}
	return &batch{img: img}
}

// add folds recs into the working image. A failure means the decision
// produced records that contradict the image: a bug, reported as an error
// rather than committed.
func (b *batch) add(recs ...metadata.Record) error {
	if len(recs) == 0 {
		return nil
	}
	next, err := b.img.Fold(b.img.AppliedIndex()+1, recs)
	if err != nil {
		return fmt.Errorf("controller: decided records do not fold: %w", err)
	}
	b.img = next
	b.recs = append(b.recs, recs...)
	return nil
}

// without returns s minus x, as a new slice (never aliasing s).
func without(s []int32, x int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// intersect returns the members of s that are in keep, in s's order.
func intersect(s, keep []int32) []int32 {
	var out []int32
	for _, v := range s {
		if slices.Contains(keep, v) {
			out = append(out, v)
		}
	}
	return out
}

// minus returns the members of s not in drop, in s's order.
func minus(s, drop []int32) []int32 {
	var out []int32
	for _, v := range s {
		if !slices.Contains(drop, v) {
			out = append(out, v)
		}
	}
	return out
}

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func nilIfEmpty(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return s
}

// setISR replaces p's ISR and maintains the ELR as described above.
func setISR(p *metadata.Partition, isr []int32, minISR int) {
	removed := minus(p.ISR, isr)
	elr := minus(p.ELR, isr)
	if len(isr) < minISR {
		for _, r := range removed {
			if !slices.Contains(elr, r) {
				elr = append(elr, r)
			}
		}
	} else {
		elr = nil
	}
	p.ISR = isr
	p.ELR = nilIfEmpty(elr)
}

// setLeader changes p's leader; LastKnownELR remembers the ELR when the
// partition loses its leader and is cleared when it gets one.
func setLeader(p *metadata.Partition, leader int32) {
	if leader == metadata.NoLeader && p.Leader != metadata.NoLeader {
		p.LastKnownELR = slices.Clone(p.ELR)
	} else if leader != metadata.NoLeader {
		p.LastKnownELR = nil
	}
	p.Leader = leader
}

// firstUsable returns the first member of candidates, in replica order, that
// is usable and not except; -1 if none.
func firstUsable(img *metadata.Image, replicas, candidates []int32, except int32) int32 {
	for _, r := range replicas {
		if r != except && slices.Contains(candidates, r) && usable(img, r) {
			return r
		}
	}
	return metadata.NoLeader
}

// elect applies the election rules to p, a private copy that it may change.
// allowUnclean adds rule 4 even when the topic does not enable it (an
// explicit unclean ElectLeaders).
func elect(img *metadata.Image, p *metadata.Partition, pol policy, allowUnclean bool) {
	if p.Leader != metadata.NoLeader && slices.Contains(p.ISR, p.Leader) && usable(img, p.Leader) {
		return
	}
	if l := firstUsable(img, p.Replicas, p.ISR, -1); l != metadata.NoLeader {
		setLeader(p, l)
		return
	}
	if l := firstUsable(img, p.Replicas, p.ELR, -1); l != metadata.NoLeader {
		setISR(p, []int32{l}, pol.minISR)
		setLeader(p, l)
		return
	}
	if pol.unclean || allowUnclean {
		if l := firstUsable(img, p.Replicas, p.Replicas, -1); l != metadata.NoLeader {
			p.ISR = []int32{l}
			p.ELR = nil
			setLeader(p, l)
			p.LastKnownELR = nil
			return
		}
	}
	setLeader(p, metadata.NoLeader)
}

// fenced updates p after broker x was fenced (x is already fenced in img):
// x leaves the ISR unless it is the last member; if it led, or nobody did, a
// leader is elected.
func fenced(img *metadata.Image, p *metadata.Partition, x int32, pol policy) {
	if slices.Contains(p.ISR, x) && len(p.ISR) > 1 {
		setISR(p, without(p.ISR, x), pol.minISR)
	}
	if p.Leader == x || p.Leader == metadata.NoLeader {
		elect(img, p, pol, false)
	}
}

// shuttingDown updates p for broker x entering controlled shutdown: its
// leadership moves to another usable ISR member and it leaves the ISR; with
// no such member it keeps leading (and stays in the ISR) until it stops.
func shuttingDown(img *metadata.Image, p *metadata.Partition, x int32, pol policy) {
	if p.Leader == x {
		alt := firstUsable(img, p.Replicas, p.ISR, x)
		if alt == metadata.NoLeader {
			return
		}
		setLeader(p, alt)
	}
	if slices.Contains(p.ISR, x) && len(p.ISR) > 1 {
		setISR(p, without(p.ISR, x), pol.minISR)
	}
}

// hasOtherLeader reports whether a partition led by x has another usable ISR
// member that could lead it instead.
func hasOtherLeader(img *metadata.Image, p *metadata.Partition, x int32) bool {
	return firstUsable(img, p.Replicas, p.ISR, x) != metadata.NoLeader
}

// changeRecord is the PartitionChangeRecord turning before into after, and
// false when they are equal. Cleared sets are written as empty non-nil
// slices, which the record distinguishes from "unchanged".
func changeRecord(topicID [16]byte, before, after *metadata.Partition) (metadata.PartitionChangeRecord, bool) {
	r := metadata.PartitionChangeRecord{TopicID: topicID, Partition: before.ID, Leader: metadata.NoLeaderChange}
	changed := false
	set := func(dst *[]int32, b, a []int32) {
		if !slices.Equal(b, a) {
			*dst = slices.Clone(a)
			if *dst == nil {
				*dst = []int32{}
			}
			changed = true
		}
	}
	if after.Leader != before.Leader {
		r.Leader = after.Leader
		changed = true
	}
	set(&r.ISR, before.ISR, after.ISR)
	set(&r.Replicas, before.Replicas, after.Replicas)
	set(&r.ELR, before.ELR, after.ELR)
	set(&r.LastKnownELR, before.LastKnownELR, after.LastKnownELR)
	set(&r.AddingReplicas, before.AddingReplicas, after.AddingReplicas)
	set(&r.RemovingReplicas, before.RemovingReplicas, after.RemovingReplicas)
	return r, changed
}

// forPartitionsOf applies change to every partition listing broker x as a
// replica and adds the resulting change records to b in one fold.
func forPartitionsOf(b *batch, o Options, x int32, change func(img *metadata.Image, p *metadata.Partition, pol policy)) error {
	var recs []metadata.Record
	for _, tp := range b.img.PartitionsOn(x) {
		t := b.img.TopicByID(tp.TopicID)
		before := &t.Partitions[tp.Partition]
		after := *before
		change(b.img, &after, policyFor(b.img, o, t.Name))
		if r, ok := changeRecord(t.ID, before, &after); ok {
			recs = append(recs, r)
		}
	}
	return b.add(recs...)
}
