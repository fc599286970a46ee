package streams

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	a.meta.Lock()
	a.meta.subN = subN
	a.meta.Unlock()
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

// RestoreInfo reports one changelog partition restored into a store: the records applied
// from offset From up to End (the last stable offset when the restore began), whether the
// store was wiped first because it had no usable checkpoint, and whether it had been kept by
// a standby task on this instance (then From is where the standby stood).
type RestoreInfo struct {
	Store     string
	Task      TaskID
	Topic     string
	Partition int32
	From, End int64
	Records   int64
	Wiped     bool
	Standby   bool
	Took      time.Duration
}

// restoreJob is one changelog partition to restore into one store.
type restoreJob struct {
	si       *storeInst
	from     int64
	end      int64
	records  int64
	reached  int64 // next offset to read; from until records arrive
	wiped    bool
	standby  bool // the store was handed over by a standby task
	finished bool
}

// apply writes a run of fetched records of the job's partition (in offset order, from
// where the job stands) to its store, as one batch, and returns how many data records it
// applied. The job ends with the first record that reaches its end offset, listed when the
// restore began: the records after it are not applied, and the store's position becomes
// the end.
func (j *restoreJob) apply(recs []*kgo.Record) int64 {
	if j.finished || len(recs) == 0 {
		return 0
	}
	if cut := sort.Search(len(recs), func(i int) bool { return recs[i].Offset+1 >= j.end }); cut < len(recs) {
		recs = recs[:cut+1]
	}
	j.si.restoreRecords(recs)
	applied := dataRecords(recs)
	j.records += applied
	j.reached = recs[len(recs)-1].Offset + 1
	if j.reached >= j.end {
		j.finished = true
		j.si.pos.Store(j.end)
	}
	return applied
}

// restore brings the logged stores of fresh tasks up to their changelog partitions before
// the tasks process anything (see planRestore for where each starts). It reads committed
// records up to the last stable offset seen now. Transaction markers are kept in the fetch so
// that a changelog ending with one is known to be fully read; an open transaction's writes
// lie past the last stable offset and are not restored. Progress is logged at start, every
// five seconds and at the end.
func (a *App) restore(ctx context.Context, fresh []*task) error {
	jobs, err := a.planRestore(ctx, fresh)
	if err != nil || len(jobs) == 0 {
		return err
	}
	began := time.Now()
	assign := map[string]map[int32]kgo.Offset{}
	pending := 0
	for _, topic := range sortedKeys(jobs) {
		for p, j := range jobs[topic] {
			if j.finished {
				continue
			}
			a.log.Info("streams: restoring", "store", j.si.spec.name, "task", j.si.task.id.String(),
				"topic", topic, "partition", p, "from", j.from, "end", j.end, "wiped", j.wiped, "standby", j.standby)
			if assign[topic] == nil {
				assign[topic] = map[int32]kgo.Offset{}
			}
			assign[topic][p] = kgo.NewOffset().At(j.from)
			pending++
		}
	}
	var records int64
	if pending > 0 {
		if records, err = a.readChangelogs(ctx, jobs, assign, pending); err != nil {
			return err
		}
	}
	took := time.Since(began)
	for _, topic := range sortedKeys(jobs) {
		for p, j := range jobs[topic] {
			if err := j.si.kv.err(); err != nil {
				return err
			}
			if a.cfg.OnRestored != nil {
				a.cfg.OnRestored(RestoreInfo{Store: j.si.spec.name, Task: j.si.task.id, Topic: topic, Partition: p,
					From: j.from, End: j.end, Records: j.records, Wiped: j.wiped, Standby: j.standby, Took: took})
			}
		}
	}
	if pending > 0 {
		a.log.Info("streams: restored state", "records", records, "partitions", pending, "took", took)
	}
	return nil
}

// planRestore lists the changelog partitions of the tasks' logged stores and decides where
// each is read from: a store handed over by a standby task from where the standby stood;
// otherwise an in-memory store from the partition's start and a persistent store from its
// checkpoint. A position or checkpoint outside the partition's offsets (the topic was
// recreated, or its start moved past it) wipes the store, which is then read from the start.
// A job with nothing to read is finished, its store's position set to the end.
func (a *App) planRestore(ctx context.Context, tasks []*task) (map[string]map[int32]*restoreJob, error) {
	jobs := map[string]map[int32]*restoreJob{}
	var topics []string
	for _, tk := range tasks {
		for topic, si := range tk.changelogs() {
			if jobs[topic] == nil {
				jobs[topic] = map[int32]*restoreJob{}
				topics = append(topics, topic)
			}
			jobs[topic][tk.id.Partition] = &restoreJob{si: si}
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	starts, ends, err := a.changelogBounds(ctx, jobs, topics)
	if err != nil {
		return nil, err
	}
	for _, topic := range sortedKeys(jobs) {
		for p, j := range jobs[topic] {
			end, _ := ends.Lookup(topic, p)
			start, _ := starts.Lookup(topic, p)
			j.from, j.end = start.Offset, end.Offset
			held := j.si.disk != nil && j.si.disk.ckpt >= 0
			at := int64(-1)
			if held {
				at = j.si.disk.ckpt
			}
			if pos := j.si.pos.Load(); pos >= 0 { // kept up to date by a standby task
				j.standby, held, at = true, true, pos
			}
			switch {
			case held && at >= start.Offset && at <= end.Offset:
				j.from = at
			case held || j.si.disk != nil:
				if err := j.si.reset(a.log); err != nil {
					return nil, err
				}
				j.wiped = true
			}
			j.reached = j.from
			if j.from >= j.end {
				j.finished = true
				j.si.pos.Store(j.end)
			}
		}
	}
	return jobs, nil
}

// changelogBounds lists the start and last stable offsets of the changelog partitions of
// jobs, retrying while some are not answered yet: a changelog created a moment ago may have
// no leader yet, which shows either in a partition's answer or, when the client finds no
// leader to send the partition's request to, as a failed request (LEADER_NOT_AVAILABLE).
// It gives up after about ten seconds, or at once on an error that retrying cannot cure.
func (a *App) changelogBounds(ctx context.Context, jobs map[string]map[int32]*restoreJob, topics []string) (kadm.ListedOffsets, kadm.ListedOffsets, error) {
	for attempt := 0; ; attempt++ {
		ends, err := a.adm.ListCommittedOffsets(ctx, topics...)
		var starts kadm.ListedOffsets
		if err == nil {
			starts, err = a.adm.ListStartOffsets(ctx, topics...)
		}
		missing := err
		switch {
		case err != nil && (ctx.Err() != nil || !retriableListErr(err)):
			return nil, nil, err
		case err == nil:
			missing = unlisted(jobs, starts, ends)
		}
		if missing == nil {
			return starts, ends, nil
		}
		if attempt >= 50 {
			return nil, nil, fmt.Errorf("streams: restore: listing changelog offsets: %w", missing)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unlisted describes a partition of jobs whose start or end offset is not known yet; nil
// when every one is.
func unlisted(jobs map[string]map[int32]*restoreJob, starts, ends kadm.ListedOffsets) error {
	for topic, ps := range jobs {
		for p := range ps {
			end, ok1 := ends.Lookup(topic, p)
			start, ok2 := starts.Lookup(topic, p)
			switch {
			case !ok1 || !ok2:
				return fmt.Errorf("%s/%d: no offsets listed", topic, p)
			case end.Err != nil:
				return fmt.Errorf("%s/%d: %w", topic, p, end.Err)
			case start.Err != nil:
				return fmt.Errorf("%s/%d: %w", topic, p, start.Err)
			}
		}
	}
	return nil
}

// retriableListErr reports whether a failed offset listing may succeed when repeated: a
// partition without a leader yet or whose leader moved (a retriable Kafka error), or a
// broker that could not be reached. Authorization failures, other Kafka errors and a done
// context are final.
func retriableListErr(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := errors.AsType[*kadm.AuthError](err); ok {
		return false
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Retriable
	}
	return true
}

// readChangelogs applies the changelog partitions in assign to their jobs' stores until each
// reaches its end; it returns the number of records applied.
func (a *App) readChangelogs(ctx context.Context, jobs map[string]map[int32]*restoreJob, assign map[string]map[int32]kgo.Offset, pending int) (int64, error) {
	rc, err := kgo.NewClient(a.opts(kgo.ConsumePartitions(assign), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())...)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var records int64
	idle := 0
	lastLog := time.Now()
	for pending > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := rc.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return records, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return records, fmt.Errorf("streams: restore: %w", ferr)
		}
		n := 0
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			n += len(p.Records)
			if j := jobs[p.Topic][p.Partition]; j != nil && !j.finished {
				records += j.apply(p.Records)
				if j.finished {
					pending--
				}
			}
		})
		if n == 0 {
			// Safety net: a broker that hides markers from read_committed fetches would leave
			// the end offset unreached; an empty poll means nothing is left to read.
			if idle++; idle >= 3 {
				for _, ps := range jobs {
					for _, j := range ps {
						if !j.finished {
							j.finished = true
							j.si.pos.Store(j.reached)
						}
					}
				}
				break
			}
		} else {
			idle = 0
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			for _, topic := range sortedKeys(jobs) {
				for p, j := range jobs[topic] {
					if !j.finished {
						a.log.Info("streams: restoring", "store", j.si.spec.name, "partition", p,
							"records", j.records, "offset", j.reached, "end", j.end)
					}
				}
			}
			a.log.Info("streams: restore progress", "records", records, "partitions_left", pending)
		}
	}
	return records, nil
}
