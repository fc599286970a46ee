package streams

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// StandbyUpdate reports a batch of changelog records applied to a store of a standby task
// (Config.OnStandbyUpdate), as Kafka Streams' standby update listener does.
type StandbyUpdate struct {
	Store     string
	Task      TaskID
	Topic     string // the changelog
	Partition int32
	Records   int64 // applied in this batch (transaction markers are not counted)
	Offset    int64 // next changelog offset the store does not reflect yet
}

// standbyTasks keeps this instance's standby tasks (num.standby.replicas): for each, the
// task's stores, opened as the active task would open them (its processors are never
// initialized), kept up to date by reading their changelog partitions with read_committed
// from where the stores stand (a checkpoint, else the partition's start). A standby writes
// only its local stores: it produces nothing and commits nothing. Persistent stores are
// checkpointed every max(CommitInterval, 1 s) and when the standby closes; in-memory stores
// live as long as the standby. When a standby task becomes active here, onAssigned takes
// it over with its stores, so its restore reads only the changelog past their position.
// Standby stores are never answered by interactive queries.
//
// One goroutine (run) owns the changelog consumer, opens and closes standby tasks and
// applies records. The group goroutine hands it the assigned standby set
// (ParseSyncAssignment, then onAssigned) and takes tasks that become active (onAssigned).
// Both hold mu while they touch tasks, so a task is never open twice. Invariants: mu.want
// never holds a task that is active on this instance (onAssigned removes them in the same
// critical section as it takes them over); every task in mu.tasks has its changelog
// partitions consumed by the current client from its stores' positions, unless
// mu.changed. Lock order: App.mu, then mu.
type standbyTasks struct {
	app  *App
	wake chan struct{} // capacity 1: the wanted set changed
	mu   struct {
		sync.Mutex
		tasks    map[TaskID]*task // held now, stores open
		assigned []TaskID         // from the last sync, applied by the next onAssigned
		want     map[TaskID]bool  // standbys of the applied assignment, minus active tasks here
		changed  bool             // want or tasks changed since the client was built
	}
	subOf map[string]int // changelog topic → sub-topology of its store
}

func newStandbyTasks(a *App) *standbyTasks {
	sb := &standbyTasks{app: a, wake: make(chan struct{}, 1), subOf: map[string]int{}}
	sb.mu.tasks = map[TaskID]*task{}
	sb.mu.want = map[TaskID]bool{}
	for _, s := range a.subs {
		for _, name := range s.stores {
			if a.topo.stores[name].logging {
				sb.subOf[changelogTopic(a.cfg.ApplicationID, name)] = s.id
			}
		}
	}
	return sb
}

// logged reports whether sub-topology sub has a store with a changelog: only such tasks
// get standbys.
func (a *App) logged(sub int) bool {
	for _, name := range a.subs[sub].stores {
		if a.topo.stores[name].logging {
			return true
		}
	}
	return false
}

// localState lists the tasks whose state this instance holds, for its join metadata: its
// standby tasks and the task directories with a checkpoint.
func (a *App) localState() []TaskID {
	seen := map[TaskID]bool{}
	for _, id := range a.state.checkpointedTasks() {
		seen[id] = true
	}
	a.standby.mu.Lock()
	for id := range a.standby.mu.tasks {
		seen[id] = true
	}
	a.standby.mu.Unlock()
	ids := make([]TaskID, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sortTasks(ids)
	return ids
}

// setAssigned records the standby tasks of the assignment just received.
func (sb *standbyTasks) setAssigned(ids []TaskID) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.mu.assigned = ids
}

// apply makes the last received assignment the wanted standby set, leaving out the tasks
// active here, and hands back the standby tasks that become active (their stores open and
// up to date to their positions). Called by onAssigned with App.mu held.
func (sb *standbyTasks) apply(active map[TaskID]bool) map[TaskID]*task {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	want := map[TaskID]bool{}
	for _, id := range sb.mu.assigned {
		if !active[id] {
			want[id] = true
		}
	}
	taken := map[TaskID]*task{}
	for id, tk := range sb.mu.tasks {
		if active[id] {
			taken[id] = tk
			delete(sb.mu.tasks, id)
		}
	}
	same := len(want) == len(sb.mu.tasks)
	for id := range sb.mu.tasks {
		same = same && want[id]
	}
	sb.mu.want = want
	if !same || len(taken) > 0 {
		sb.mu.changed = true
		select {
		case sb.wake <- struct{}{}:
		default:
		}
	}
	return taken
}

// run keeps the standby tasks until ctx is done, then closes them (checkpointing persistent
// stores) and its client.
func (sb *standbyTasks) run(ctx context.Context) {
	var cl *kgo.Client
	defer func() {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		if cl != nil {
			cl.Close()
		}
		for id, tk := range sb.mu.tasks {
			sb.closeLocked(tk, true)
			delete(sb.mu.tasks, id)
		}
	}()
	every := max(sb.app.cfg.CommitInterval, time.Second)
	lastCkpt := time.Now()
	for ctx.Err() == nil {
		sb.mu.Lock()
		if sb.mu.changed {
			var err error
			if cl, err = sb.reconcileLocked(ctx, cl); err != nil {
				sb.mu.Unlock()
				if ctx.Err() == nil {
					sb.app.log.Warn("streams: standby tasks not updated; retrying", "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
		}
		sb.mu.Unlock()
		if cl == nil {
			select {
			case <-ctx.Done():
			case <-sb.wake:
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pctx)
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				sb.app.log.Warn("streams: standby fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		sb.mu.Lock()
		sb.applyLocked(fetches)
		if time.Since(lastCkpt) >= every {
			lastCkpt = time.Now()
			for id, tk := range sb.mu.tasks {
				if err := tk.checkpoint(); err != nil {
					sb.app.log.Warn("streams: standby checkpoint failed; dropping the standby", "task", id.String(), "err", err)
					sb.closeLocked(tk, false)
					delete(sb.mu.tasks, id)
					sb.mu.changed = true
				}
			}
		}
		sb.mu.Unlock()
	}
}

// reconcileLocked closes the standby tasks no longer wanted, opens the new ones from where
// their stores stand, and replaces the changelog consumer (nil when nothing is held).
func (sb *standbyTasks) reconcileLocked(ctx context.Context, old *kgo.Client) (*kgo.Client, error) {
	if old != nil {
		old.Close()
	}
	for id, tk := range sb.mu.tasks {
		if !sb.mu.want[id] {
			sb.closeLocked(tk, true)
			delete(sb.mu.tasks, id)
		}
	}
	var fresh []*task
	for id := range sb.mu.want {
		if _, ok := sb.mu.tasks[id]; ok {
			continue
		}
		tk, err := sb.app.newTask(id)
		if err != nil {
			for _, f := range fresh {
				sb.closeLocked(f, false)
			}
			return nil, err
		}
		fresh = append(fresh, tk)
	}
	jobs, err := sb.app.planRestore(ctx, fresh)
	if err != nil {
		for _, f := range fresh {
			sb.closeLocked(f, false)
		}
		return nil, err
	}
	for _, ps := range jobs {
		for _, j := range ps {
			j.si.pos.Store(j.from)
			sb.app.log.Info("streams: standby started", "store", j.si.spec.name, "task", j.si.task.id.String(),
				"partition", j.si.task.id.Partition, "from", j.from, "end", j.end, "wiped", j.wiped)
		}
	}
	for _, tk := range fresh {
		sb.mu.tasks[tk.id] = tk
	}
	sb.mu.changed = false
	assign := map[string]map[int32]kgo.Offset{}
	ids := make([]string, 0, len(sb.mu.tasks))
	for id, tk := range sb.mu.tasks {
		ids = append(ids, id.String())
		for topic, si := range tk.changelogs() {
			if assign[topic] == nil {
				assign[topic] = map[int32]kgo.Offset{}
			}
			assign[topic][id.Partition] = kgo.NewOffset().At(si.pos.Load())
		}
	}
	sb.app.log.Info("streams: standby tasks", "tasks", strings.Join(ids, ","))
	if len(assign) == 0 {
		return nil, nil
	}
	// Always read_committed: under exactly_once_v2 a standby must never hold an open or
	// aborted transaction's writes; without transactions it reads the same records.
	// Markers are kept so that a position moves past them and a handover finds nothing left.
	cl, err := kgo.NewClient(sb.app.opts(kgo.ConsumePartitions(assign),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		sb.mu.changed = true // tasks stay open; the client is built again on the next try
		return nil, err
	}
	return cl, nil
}

// applyLocked writes a fetch's records into the standby stores they belong to, each
// partition's run in one batch (restoreRecords). A record before a store's position was
// applied already (or belongs to a task since handed over and opened again); every other
// record follows the position contiguously, because the client consumes each partition
// from its store's position.
func (sb *standbyTasks) applyLocked(fetches kgo.Fetches) {
	type key struct {
		topic string
		part  int32
	}
	batches := map[key]int64{} // records applied; present once the position moved
	touched := map[key]*storeInst{}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		k := key{p.Topic, p.Partition}
		si, ok := touched[k]
		if !ok {
			sub, known := sb.subOf[p.Topic]
			if tk := sb.mu.tasks[TaskID{sub, p.Partition}]; known && tk != nil {
				si = tk.changelogs()[p.Topic]
			}
			touched[k] = si // nil: a partition of no standby held now
		}
		if si == nil {
			return
		}
		pos := si.pos.Load()
		recs := p.Records
		recs = recs[sort.Search(len(recs), func(i int) bool { return recs[i].Offset >= pos }):]
		if len(recs) == 0 {
			return
		}
		si.restoreRecords(recs)
		batches[k] += dataRecords(recs)
		si.pos.Store(recs[len(recs)-1].Offset + 1)
	})
	for k, si := range touched {
		if _, moved := batches[k]; !moved {
			continue
		}
		tk := si.task
		if sb.mu.tasks[tk.id] != tk {
			continue // dropped below for another store's failure
		}
		if err := si.kv.err(); err != nil {
			sb.app.log.Warn("streams: standby store failed; dropping the standby", "task", tk.id.String(), "err", err)
			sb.closeLocked(tk, false)
			delete(sb.mu.tasks, tk.id)
			sb.mu.changed = true
			continue
		}
		if sb.app.cfg.OnStandbyUpdate != nil {
			sb.app.cfg.OnStandbyUpdate(StandbyUpdate{Store: si.spec.name, Task: tk.id, Topic: k.topic,
				Partition: k.part, Records: batches[k], Offset: si.pos.Load()})
		}
	}
}

// closeLocked closes a standby task's stores, checkpointing the persistent ones if asked:
// they hold only committed changelog records, so a checkpoint is safe under every
// processing guarantee.
func (sb *standbyTasks) closeLocked(tk *task, checkpoint bool) {
	var err error
	if checkpoint {
		err = tk.checkpoint()
	}
	if cerr := tk.closeStores(false); err == nil {
		err = cerr
	}
	if err != nil {
		sb.app.log.Warn("streams: closing standby stores", "task", tk.id.String(), "err", err)
	}
}
