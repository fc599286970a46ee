package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// setupTopics learns the partition counts of the user topics read, checks co-partitioning,
// derives the counts of repartition and changelog topics, and creates those missing.
func (a *App) setupTopics(ctx context.Context) error {
	app := a.cfg.ApplicationID
	internal := map[string]bool{}
	writer := map[string]int{} // resolved repartition topic → sub-topology writing it
	for _, s := range a.subs {
		for _, n := range s.nodes {
			if n.kind == kindSink && n.internal {
				writer[resolveTopic(app, n.topic, true)] = s.id
			}
			if n.kind == kindSource && n.internal {
				for _, tp := range n.topics {
					internal[resolveTopic(app, tp, true)] = true
				}
			}
		}
	}
	var user []string
	for topic := range a.topicSub {
		if !internal[topic] {
			user = append(user, topic)
		}
	}
	a.parts = map[string]int32{}
	if len(user) > 0 {
		td, err := a.adm.ListTopics(ctx, user...)
		if err != nil {
			return err
		}
		for _, topic := range user {
			d, ok := td[topic]
			if !ok || d.Err != nil {
				return fmt.Errorf("%w: source topic %q does not exist", ErrConfig, topic)
			}
			a.parts[topic] = int32(len(d.Partitions))
		}
	}
	// Sub-topology partition counts: from their user topics (which must agree), else from the
	// repartition topics they read, each as wide as the sub-topology writing it.
	subN := make([]int32, len(a.subs))
	for i, ts := range a.subTopics {
		for _, t := range ts {
			if n, ok := a.parts[t]; ok {
				if subN[i] != 0 && subN[i] != n {
					return fmt.Errorf("%w: sub-topology %d reads %v with different partition counts", ErrNotCopartitioned, i, ts)
				}
				subN[i] = n
			}
		}
	}
	for range a.subs { // a chain of repartitions settles in at most len(subs) rounds
		for i, ts := range a.subTopics {
			if subN[i] != 0 {
				continue
			}
			for _, t := range ts {
				if w, ok := writer[t]; ok && subN[w] > subN[i] {
					subN[i] = subN[w]
				}
			}
		}
	}
	want := map[string]int32{}
	configs := map[string]map[string]*string{}
	compact, del := "compact", "delete"
	for t := range internal {
		n := subN[a.topicSub[t]]
		if n == 0 {
			return fmt.Errorf("%w: cannot derive the partition count of %q", ErrTopology, t)
		}
		want[t] = n
		configs[t] = map[string]*string{"cleanup.policy": &del}
	}
	for i, s := range a.subs {
		for _, st := range s.stores {
			if a.topo.stores[st].logging {
				t := changelogTopic(app, st)
				want[t] = subN[i]
				configs[t] = map[string]*string{"cleanup.policy": &compact}
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	names := sortedKeys(want)
	td, err := a.adm.ListTopics(ctx, names...)
	if err != nil {
		return err
	}
	for _, t := range names {
		if d, ok := td[t]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != want[t] {
				return fmt.Errorf("%w: internal topic %q has %d partitions, the topology needs %d", ErrNotCopartitioned, t, got, want[t])
			}
			a.parts[t] = want[t]
			continue
		}
		resp, err := a.adm.CreateTopic(ctx, want[t], a.cfg.ReplicationFactor, configs[t], t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("streams: create %q: %w", t, err)
		}
		a.parts[t] = want[t]
		a.log.Info("streams: created internal topic", "topic", t, "partitions", want[t])
	}
	return nil
}

// restore fills the logged stores of fresh tasks from their changelog partitions, reading
// committed records from the start to the last stable offset seen now, before the tasks
// process anything. Transaction markers are kept in the fetch so that a changelog ending
// with one is known to be fully read; an open transaction's writes lie past the last stable
// offset and are not restored.
func (a *App) restore(ctx context.Context, fresh []*task) error {
	stores := map[string]map[int32]*storeInst{}
	var topics []string
	for _, tk := range fresh {
		for topic, si := range tk.changelogs() {
			if stores[topic] == nil {
				stores[topic] = map[int32]*storeInst{}
				topics = append(topics, topic)
			}
			stores[topic][tk.id.Partition] = si
		}
	}
	if len(topics) == 0 {
		return nil
	}
	ends, err := a.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	starts, err := a.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	need := map[string]map[int32]int64{}
	assign := map[string]map[int32]kgo.Offset{}
	for topic, parts := range stores {
		for p := range parts {
			end, ok1 := ends.Lookup(topic, p)
			start, ok2 := starts.Lookup(topic, p)
			if !ok1 || !ok2 || end.Err != nil || start.Err != nil || end.Offset <= start.Offset {
				continue
			}
			if need[topic] == nil {
				need[topic] = map[int32]int64{}
				assign[topic] = map[int32]kgo.Offset{}
			}
			need[topic][p] = end.Offset
			assign[topic][p] = kgo.NewOffset().At(start.Offset)
		}
	}
	if len(need) == 0 {
		return nil
	}
	rc, err := kgo.NewClient(a.opts(kgo.ConsumePartitions(assign), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer rc.Close()
	began := time.Now()
	var records, bytes int64
	idle := 0
	lastLog := began
	for pending(need) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := rc.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("streams: restore: %w", ferr)
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			if !r.Attrs.IsControl() {
				records++
				bytes += int64(len(r.Key) + len(r.Value))
				stores[r.Topic][r.Partition].restore(r.Key, r.Value)
			}
			if end, ok := need[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(need[r.Topic], r.Partition)
			}
		})
		if n == 0 {
			// Safety net: a broker that hides markers from read_committed fetches would leave
			// the end offset unreached; an empty poll means nothing is left to read.
			if idle++; idle >= 3 {
				break
			}
		} else {
			idle = 0
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			a.log.Info("streams: restoring", "records", records, "bytes", bytes, "partitions_left", pending(need))
		}
	}
	a.log.Info("streams: restored state", "records", records, "bytes", bytes, "took", time.Since(began))
	return nil
}

func pending(m map[string]map[int32]int64) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}
