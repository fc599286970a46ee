package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Processing guarantees (Kafka's processing.guarantee values).
const (
	AtLeastOnce   = "at_least_once"
	ExactlyOnceV2 = "exactly_once_v2"
)

// ErrorAction is what the error handler decides about a failed record.
type ErrorAction int

const (
	// Stop ends Run with the error; the failed record's offset is not committed (Kafka's
	// default, LogAndFail).
	Stop ErrorAction = iota
	// Continue logs and skips the record (Kafka's LogAndContinue).
	Continue
)

// Config configures a running application. Keys follow Kafka Streams' names.
type Config struct {
	// ApplicationID is the consumer group and the prefix of internal topics (required).
	ApplicationID string
	// Brokers to bootstrap from (required unless ClientOpts seeds them).
	Brokers []string
	// ProcessingGuarantee is AtLeastOnce (default) or ExactlyOnceV2: one transaction per
	// commit interval carries the output, the changelog writes and the consumed offsets.
	ProcessingGuarantee string
	// CommitInterval is commit.interval.ms: how often processed offsets are committed after
	// output and changelog writes are acknowledged, or how often the transaction commits
	// (default 30s for at_least_once, 100ms for exactly_once_v2, as Kafka Streams).
	CommitInterval time.Duration
	// StateDir is state.dir, where persistent stores live:
	// <state.dir>/<application.id>/<task id>/<store> (default: poste-streams in the system's
	// temporary directory, as Kafka Streams' ${java.io.tmpdir}/kafka-streams). Instances
	// sharing a machine need a directory each.
	StateDir string
	// DefaultStoreType is default.dsl.store: where stores declared without a type (DSL
	// stores, or StoreSpec.Type DefaultStore) live. Default InMemory.
	DefaultStoreType StoreType
	// ApplicationServer is application.server: the host:port this instance's own query
	// server answers on. Instances exchange it through the group assignment so that each
	// can tell which one owns a key (MetadataForKey). Empty: this instance is not queryable
	// remotely.
	ApplicationServer string
	// OnRestored, if set, is told about each changelog partition restored into a store,
	// once its restore ends (from the goroutine that restores; keep it short).
	OnRestored func(RestoreInfo)
	// NumStandbyReplicas is num.standby.replicas: how many standby copies of each task with
	// a changelog the group keeps on instances other than its owner (default 0). A standby
	// follows the changelog into local stores, so that if its instance takes the task over
	// it restores only the changelog's tail. The group leader's value decides.
	NumStandbyReplicas int
	// OnStandbyUpdate, if set, is told about each batch of changelog records applied to a
	// standby task's store (from the goroutine that keeps the standbys; keep it short).
	OnStandbyUpdate func(StandbyUpdate)
	// ReplicationFactor of the internal topics it creates (default -1: the broker's default).
	ReplicationFactor int16
	// CacheMaxBytes is statestore.cache.max.bytes: the record cache in front of the
	// stores of DSL aggregations and tables (default 10 MiB; negative: no cache). A cached
	// store keeps the latest value of each key in memory and writes it to the store, to
	// its changelog and downstream only when the cache is flushed — at every commit, when
	// the cache is full, when a window expires — so that several updates of one key between
	// commits become one. With no cache every update is written and forwarded at once.
	CacheMaxBytes int64
	// OnError decides about a record whose processing failed (deserialization, user code,
	// serialization); default: Stop.
	OnError func(err error) ErrorAction
	// Logger for lifecycle, restore progress and handled errors (default slog.Default()).
	Logger *slog.Logger
	// ClientOpts are extra kgo options for every client the application makes (TLS, SASL …).
	// The application recycles its records: a hook must not keep a *kgo.Record past its call.
	ClientOpts []kgo.Opt
}

// App runs a Topology against Kafka-compatible brokers: one task per input partition, tasks
// spread over all instances with the same ApplicationID, state restored from changelogs when
// a task arrives, offsets committed every CommitInterval once outputs are acknowledged.
//
// Run may be called once. Inside, one goroutine (Run's) processes records; the kgo group
// callbacks run between polls (the client blocks rebalances while a poll's records are being
// processed) and take mu too, so tasks are never touched concurrently.
// Global tables are read by one more goroutine, started by Run before the group is joined;
// it writes only the global stores, which lock themselves. Standby tasks are kept by
// another (see standbyTasks), under their own lock; onAssigned takes over those that become
// active. The tasks' writes reach the client through one more goroutine (produceQueue), fed
// and drained under mu. Interactive queries (Query*Store, MetadataForKey, AllMetadata) may come from any
// goroutine: they take iq (shared) or meta, never mu, and never see standby stores. Lock
// order: mu, then standby.mu; mu, then iq; meta and prodMu are leaves.
type App struct {
	topo      *Topology
	cfg       Config
	log       *slog.Logger
	subs      []*subtopology
	subTopics [][]string     // resolved source topics per sub-topology
	topicSub  map[string]int // resolved source topic → sub-topology
	parts     map[string]int32
	globals   *globalStores

	cl    *kgo.Client
	sess  *kgo.GroupTransactSession // exactly_once_v2 only; cl is its client
	prod  *produceQueue             // hands the tasks' writes to cl; set with cl
	out   *outRecords               // recycled records for the writes; set with cl
	in    recordSlices              // cl's pool of fetched records
	adm   *kadm.Client
	state *stateDir

	standby *standbyTasks // this instance's standby tasks; their own goroutine and lock

	// iq is the store lock for interactive queries (lock order: mu, then iq). The poll loop
	// holds it exclusively while its tasks process a batch and punctuate; queries hold it
	// shared. tasks lists the tasks whose stores are restored and open: a task joins after
	// its restore and leaves before it closes.
	iq struct {
		sync.RWMutex
		tasks map[TaskID]*task
	}

	// meta is what the last group assignment said about the other instances.
	meta struct {
		sync.Mutex
		subN     []int32             // tasks per sub-topology (its partition count); nil before start
		owners   map[TaskID]string   // task → application.server of its owner
		standbys map[TaskID][]string // task → application.servers of its standbys, sorted
		known    bool                // an assignment was received
	}

	dropped atomic.Int64 // late records dropped by windowed operators

	// cache is the record cache's budget, shared by the tasks' cached stores (nil: no
	// cache). Used by the processing goroutine only, under mu.
	cache *cacheBudget

	prodMu  sync.Mutex
	prodErr error // first failed produce; fatal

	mu struct {
		sync.Mutex
		tasks    map[TaskID]*task
		offsets  map[string]map[int32]kgo.EpochOffset // processed, not yet committed
		previous map[string][]int32                   // last assignment, for the sticky balancer
		fatal    error
		// rebalanced is set by a revocation under exactly_once_v2: the open transaction must
		// be aborted (and consumption rewound) before anything else is processed.
		rebalanced bool
	}
}

// New checks the topology and configuration; it does not contact the brokers.
func New(t *Topology, cfg Config) (*App, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if cfg.ApplicationID == "" {
		return nil, fmt.Errorf("%w: ApplicationID is required", ErrConfig)
	}
	switch cfg.ProcessingGuarantee {
	case "", AtLeastOnce:
		cfg.ProcessingGuarantee = AtLeastOnce
	case ExactlyOnceV2:
	default:
		return nil, fmt.Errorf("%w: unknown processing.guarantee %q", ErrConfig, cfg.ProcessingGuarantee)
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 30 * time.Second
		if cfg.ProcessingGuarantee == ExactlyOnceV2 {
			cfg.CommitInterval = 100 * time.Millisecond
		}
	}
	if cfg.NumStandbyReplicas < 0 {
		return nil, fmt.Errorf("%w: num.standby.replicas %d is negative", ErrConfig, cfg.NumStandbyReplicas)
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.CacheMaxBytes == 0 {
		cfg.CacheMaxBytes = 10 << 20
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) ErrorAction { return Stop }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(os.TempDir(), "poste-streams")
	}
	if cfg.DefaultStoreType == DefaultStore {
		cfg.DefaultStoreType = InMemory
	}
	if cfg.DefaultStoreType != InMemory && cfg.DefaultStoreType != Persistent {
		return nil, fmt.Errorf("%w: unknown DefaultStoreType %d", ErrConfig, cfg.DefaultStoreType)
	}
	if cfg.ApplicationServer != "" {
		if _, _, err := net.SplitHostPort(cfg.ApplicationServer); err != nil {
			return nil, fmt.Errorf("%w: application.server %q is not host:port", ErrConfig, cfg.ApplicationServer)
		}
	}
	a := &App{topo: t, cfg: cfg, log: cfg.Logger.With("application.id", cfg.ApplicationID),
		subs: t.subtopologies(), topicSub: map[string]int{}}
	for _, s := range a.subs {
		var ts []string
		for _, n := range s.nodes {
			if n.kind == kindSource {
				for _, tp := range n.topics {
					rt := resolveTopic(cfg.ApplicationID, tp, n.internal)
					if _, dup := a.topicSub[rt]; dup {
						return nil, fmt.Errorf("%w: topic %q is read by two sub-topologies", ErrTopology, rt)
					}
					a.topicSub[rt] = s.id
					ts = append(ts, rt)
				}
			}
		}
		a.subTopics = append(a.subTopics, ts)
	}
	a.globals = newGlobalStores(t)
	for topic := range a.globals.byTopic {
		if _, dup := a.topicSub[topic]; dup {
			return nil, fmt.Errorf("%w: topic %q is read both as a global table and by a sub-topology", ErrTopology, topic)
		}
	}
	a.state = newStateDir(cfg.StateDir, cfg.ApplicationID, a.eos(), cfg.DefaultStoreType, a.log)
	a.mu.tasks = map[TaskID]*task{}
	a.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	a.iq.tasks = map[TaskID]*task{}
	a.standby = newStandbyTasks(a)
	if cfg.CacheMaxBytes > 0 {
		a.cache = &cacheBudget{max: cfg.CacheMaxBytes}
	}
	return a, nil
}

// DroppedRecords counts records dropped so far by windowed operators because they arrived
// after their windows closed. Safe to call from any goroutine.
func (a *App) DroppedRecords() int64 { return a.dropped.Load() }

func (a *App) opts(extra ...kgo.Opt) []kgo.Opt {
	o := producerDefaults()
	if len(a.cfg.Brokers) > 0 {
		o = append(o, kgo.SeedBrokers(a.cfg.Brokers...))
	}
	o = append(o, a.cfg.ClientOpts...)
	return append(o, extra...)
}

// producerDefaults are the client options an application starts from (Config.ClientOpts
// come after them): the producer's buffer is bounded by bytes, 32 MiB as Kafka's
// buffer.memory, rather than by the client's default record count, which small records reach
// long before a commit interval's worth of output is in flight.
func producerDefaults() []kgo.Opt {
	return []kgo.Opt{kgo.MaxBufferedBytes(32 << 20), kgo.MaxBufferedRecords(math.MaxInt32)}
}

// Run creates missing internal topics, joins the group and processes until ctx is done,
// then commits what was processed, closes its tasks and leaves the group. It returns nil
// after a clean shutdown, or the error that stopped it.
func (a *App) Run(ctx context.Context) error {
	admCl, err := kgo.NewClient(a.opts()...)
	if err != nil {
		return err
	}
	defer admCl.Close()
	a.adm = kadm.NewClient(admCl)
	if err := a.setupTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: a clean shutdown
		}
		return err
	}
	stopGlobals, err := a.startGlobals(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while the global tables were being read: a clean shutdown
		}
		return err
	}
	defer stopGlobals()
	// Standby tasks are kept from before the group is joined to after it is left: the
	// assignment callbacks hand them over and the last standbys close after the tasks.
	sbCtx, stopStandbys := context.WithCancel(ctx)
	sbDone := make(chan struct{})
	go func() { defer close(sbDone); a.standby.run(sbCtx) }()
	defer func() { stopStandbys(); <-sbDone }()
	var topics []string
	for _, ts := range a.subTopics {
		topics = append(topics, ts...)
	}
	groupOpts := []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.ApplicationID),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(&taskBalancer{app: a}),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
		kgo.WithPools(&a.in),
	}
	if a.eos() {
		// read_committed only under exactly_once_v2, as Kafka Streams: at_least_once
		// reads what the brokers have, like any plain consumer.
		groupOpts = append(groupOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		err = a.startSession(groupOpts)
	} else {
		a.cl, err = kgo.NewClient(a.opts(groupOpts...)...)
	}
	if err != nil {
		return err
	}
	a.out = newOutRecords()
	a.prod = newProduceQueue(a.cl.Produce, a.producedErr)
	go a.prod.run()
	a.log.Info("streams: started", "topics", topics, "processing.guarantee", a.cfg.ProcessingGuarantee)
	runErr := a.loop(ctx)
	// Cancelling ctx is how a program stops the app: work interrupted by it is not an error.
	// What was processed is committed below (under exactly_once_v2 the open transaction);
	// only a stop that interrupted a rebalance's restart aborts it, and then its records are
	// processed again by the next owner.
	canceled := runErr != nil && ctx.Err() != nil && errors.Is(runErr, context.Canceled)
	if canceled && !a.eos() {
		runErr = nil
	}

	a.mu.Lock()
	if runErr == nil && a.mu.fatal == nil {
		runErr = a.commitLocked(context.Background())
	}
	if a.eos() && (runErr != nil || a.mu.fatal != nil) {
		a.abortTxn(context.Background())
	}
	a.closeTasksLocked(nil)
	a.mu.previous = nil
	a.prod.close()
	a.mu.Unlock()
	a.cl.AllowRebalance()
	a.cl.Close() // leaves the group; the revoke callback finds no tasks left
	if runErr != nil && !canceled {
		a.log.Error("streams: stopped", "err", runErr)
		return runErr
	}
	a.log.Info("streams: stopped cleanly")
	return nil
}

func (a *App) loop(ctx context.Context) error {
	lastCommit := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return nil
		}
		// Wait for records at most until the next commit is due, so that a commit (and
		// under exactly_once_v2 the output it releases) is not held back by an idle input.
		wait := min(200*time.Millisecond, max(time.Until(lastCommit.Add(a.cfg.CommitInterval)), time.Millisecond))
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := a.cl.PollRecords(pctx, 10000)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				a.log.Warn("streams: fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		a.mu.Lock()
		err := a.mu.fatal
		if err == nil && a.mu.rebalanced {
			// Tasks were revoked mid-transaction: abort it, which rewinds consumption to the
			// committed offsets; the tasks now assigned were restored from committed
			// changelogs, so this poll's records are fetched again under a new transaction.
			err = a.restartTxnLocked(ctx)
			fetches = nil
		}
		now := time.Now()
		if err == nil {
			err = a.processBatchLocked(fetches, now)
		}
		if err == nil {
			if now.Sub(lastCommit) >= a.cfg.CommitInterval {
				// A commit under way finishes even if the app is being stopped: cutting it
				// short would abort the transaction and throw away processed work.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				err = a.commitLocked(cctx)
				cancel()
				lastCommit = now
			}
		}
		a.mu.Unlock()
		a.cl.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// handle asks the error handler about err; a non-nil result stops the application.
func (a *App) handle(err error) error {
	if a.cfg.OnError(err) == Continue {
		a.log.Warn("streams: skipping record after error", "err", err)
		return nil
	}
	if errors.Is(err, ErrProcessing) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrProcessing, err)
}

// processBatchLocked processes one poll's records, runs the wall-clock punctuations due at
// now and hands the batch's writes to the producer.
func (a *App) processBatchLocked(fetches kgo.Fetches, now time.Time) error {
	a.iq.Lock() // queries wait for this batch, and see the state between batches
	err := a.processLocked(fetches)
	for _, tk := range a.mu.tasks {
		if err != nil {
			break
		}
		if perr := tk.punctuate(WallClockTime, now.UnixMilli()); perr != nil {
			err = a.handle(perr)
		}
	}
	a.iq.Unlock()
	a.prod.push() // this batch's writes go out without waiting for a full chunk
	return err
}

func (a *App) processLocked(fetches kgo.Fetches) error {
	var err error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		// Every fetched record goes back to the pool, processed or not (a revoked task's,
		// or after an error): the tasks keep none of the Record structs.
		defer recycle(p.Records)
		if err != nil || len(p.Records) == 0 {
			return
		}
		sub, ok := a.topicSub[p.Topic]
		tk := a.mu.tasks[TaskID{sub, p.Partition}]
		if !ok || tk == nil {
			return // revoked meanwhile; its next owner reprocesses from the committed offset
		}
		src := tk.byTopic[p.Topic]
		var done *kgo.Record // the last record processed (or skipped by the error handler)
		for _, r := range p.Records {
			if perr := tk.processFrom(src, r.Topic, r.Partition, r.Offset, r.Key, r.Value, r.Timestamp.UnixMilli(), r.Headers); perr != nil {
				if err = a.handle(perr); err != nil {
					break
				}
			}
			done = r
		}
		tk.endBatch()
		if done != nil {
			m := a.mu.offsets[p.Topic]
			if m == nil {
				m = map[int32]kgo.EpochOffset{}
				a.mu.offsets[p.Topic] = m
			}
			m[p.Partition] = kgo.EpochOffset{Epoch: done.LeaderEpoch, Offset: done.Offset + 1}
		}
	})
	return err
}

// commitLocked waits until every output and changelog write is acknowledged, then commits
// the offsets processed so far: at_least_once, nothing is committed before its effects.
// Under exactly_once_v2 it commits the transaction instead (see commitTxnLocked).
func (a *App) commitLocked(ctx context.Context) error {
	if a.eos() {
		return a.commitTxnLocked(ctx)
	}
	if err := a.flushCachesLocked(); err != nil {
		return err
	}
	a.prod.drain()
	if err := a.cl.Flush(ctx); err != nil {
		return err
	}
	a.prodMu.Lock()
	perr := a.prodErr
	a.prodMu.Unlock()
	if perr != nil {
		return fmt.Errorf("streams: producing output: %w", perr)
	}
	if len(a.mu.offsets) == 0 {
		return nil
	}
	var cerr error
	a.cl.CommitOffsetsSync(ctx, a.mu.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 && cerr == nil {
					cerr = fmt.Errorf("streams: commit %s/%d: error code %d", t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	a.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	return a.checkpointLocked()
}

// flushCachesLocked flushes the record caches of every task before a commit: their updates
// go to the stores, the changelogs and downstream (which may produce output), so that the
// commit covers them. Queries wait meanwhile. A failure downstream of a flushed update goes
// to the error handler like a record's.
func (a *App) flushCachesLocked() error {
	if a.cache == nil {
		return nil
	}
	a.iq.Lock()
	defer a.iq.Unlock()
	for _, tk := range a.mu.tasks {
		for {
			err := tk.flushCaches()
			if err == nil {
				break
			}
			if errors.Is(err, ErrTopology) {
				return err
			}
			if herr := a.handle(err); herr != nil {
				return herr
			}
		}
	}
	return nil
}

// checkpointLocked checks every store for a failure, then (at_least_once) writes the
// checkpoints of tasks whose persistent stores moved: the flush before it acknowledged their
// changelog writes.
func (a *App) checkpointLocked() error {
	for _, tk := range a.mu.tasks {
		for _, si := range tk.stores {
			if err := si.kv.err(); err != nil {
				return err
			}
		}
		if !a.eos() {
			if err := tk.checkpoint(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *App) previousAssignment() map[string][]int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.previous
}

func (a *App) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	active := map[TaskID]bool{}
	for id := range a.mu.tasks {
		active[id] = true
	}
	for topic, parts := range assigned {
		if sub, ok := a.topicSub[topic]; ok {
			for _, p := range parts {
				active[TaskID{sub, p}] = true
			}
		}
	}
	// Standby tasks that become active are taken over with their stores, so their restore
	// reads only the changelog past what the standby already applied.
	promoted := a.standby.apply(active)
	defer func() {
		for _, tk := range promoted { // none unless onAssigned stopped on an error
			_ = tk.closeStores(false)
		}
	}()
	var fresh []*task
	for _, id := range slices.SortedFunc(maps.Keys(active), compareTasks) {
		if _, ok := a.mu.tasks[id]; ok {
			continue
		}
		tk, ok := promoted[id]
		if ok {
			delete(promoted, id)
			if a.eos() { // from now on its stores may hold uncommitted writes
				if err := a.state.dropCheckpoint(id); err != nil {
					_ = tk.closeStores(false)
					a.mu.fatal = err
					return
				}
				tk.saved = nil
			}
			a.log.Info("streams: standby task becomes active", "task", id.String())
		} else {
			var err error
			if tk, err = a.newTask(id); err != nil {
				a.mu.fatal = err
				return
			}
		}
		a.mu.tasks[id] = tk
		fresh = append(fresh, tk)
	}
	prev := map[string][]int32{}
	for id := range a.mu.tasks {
		for _, topic := range a.subTopics[id.Subtopology] {
			if id.Partition < a.parts[topic] {
				prev[topic] = append(prev[topic], id.Partition)
			}
		}
	}
	a.mu.previous = prev
	err := a.restore(ctx, fresh)
	for _, tk := range fresh {
		if err != nil {
			break
		}
		err = tk.init()
	}
	if err != nil {
		a.mu.fatal = err
		return
	}
	a.register(fresh)
	ids := make([]string, 0, len(fresh))
	for _, tk := range fresh {
		ids = append(ids, tk.id.String())
	}
	a.log.Info("streams: tasks assigned", "tasks", strings.Join(ids, ","))
}

func (a *App) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.eos() {
		// The transaction session aborts the open transaction at its next end; the revoked
		// tasks' uncommitted work is redone by their next owner from committed state.
		a.mu.rebalanced = true
	} else if a.mu.fatal == nil && len(a.mu.tasks) > 0 {
		if err := a.commitLocked(ctx); err != nil {
			a.mu.fatal = err
		}
	}
	a.closeTasksLocked(revoked)
}

func (a *App) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Another member may own these already: drop uncommitted progress, the owner redoes it.
	a.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	if a.eos() {
		a.mu.rebalanced = true
	}
	a.closeTasksLocked(lost)
}

// closeTasksLocked closes the tasks owning any of parts (all tasks if parts is nil).
func (a *App) closeTasksLocked(parts map[string][]int32) {
	for id, tk := range a.mu.tasks {
		hit := parts == nil
		for _, topic := range a.subTopics[id.Subtopology] {
			for _, p := range parts[topic] {
				hit = hit || p == id.Partition
			}
		}
		if hit {
			a.retireTaskLocked(tk)
		}
	}
	for topic := range parts {
		delete(a.mu.offsets, topic)
	}
	if parts == nil {
		a.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	}
}

// newTask builds the task id with its stores opened (not restored yet).
func (a *App) newTask(id TaskID) (*task, error) {
	tk, err := newTask(a.topo, a.subs[id.Subtopology], a.cfg.ApplicationID, id.Partition, (*kgoCollector)(a), time.Now, a.state)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	tk.dropped = &a.dropped
	tk.globals = a.globals
	tk.enableCache(a.cache)
	return tk, nil
}

// retireTaskLocked takes a task out of queries and closes it: its processors, then its
// stores, checkpointing the persistent ones unless they hold uncommitted state.
func (a *App) retireTaskLocked(tk *task) {
	a.iq.Lock()
	delete(a.iq.tasks, tk.id)
	a.iq.Unlock()
	tk.close()
	if err := tk.closeStores(true); err != nil {
		a.log.Warn("streams: closing stores", "task", tk.id.String(), "err", err)
	}
	delete(a.mu.tasks, tk.id)
}

// register opens restored tasks to queries.
func (a *App) register(tasks []*task) {
	a.iq.Lock()
	defer a.iq.Unlock()
	for _, tk := range tasks {
		a.iq.tasks[tk.id] = tk
	}
}

// kgoCollector sends a task's writes through the application's client.
type kgoCollector App

func (c *kgoCollector) send(topic string, partition int32, key, value []byte, ts int64, headers []kgo.RecordHeader, acked *atomic.Int64) error {
	a := (*App)(c)
	r := a.out.get()
	r.Topic, r.Key, r.Value, r.Timestamp, r.Headers = topic, key, value, time.UnixMilli(ts), headers
	if partition >= 0 {
		r.Partition = partition
		r.Context = manualCtx
	}
	if acked == nil {
		a.prod.add(r, nil) // the queue's default promise, producedErr: one pointer less per record
		return nil
	}
	a.prod.add(r, func(r *kgo.Record, err error) {
		if err == nil {
			// An unknown position (-1: the store was not restored to a known offset)
			// stays unknown: a later write says nothing about what came before it.
			for next := r.Offset + 1; ; {
				cur := acked.Load()
				if cur < 0 || cur >= next || acked.CompareAndSwap(cur, next) {
					break
				}
			}
		}
		a.producedErr(r, err)
	})
	return nil
}

// producedErr is every write's promise: it recycles an acknowledged record and records the
// first failed write. Records failed by an abort are rolled back on purpose; their work is
// redone.
func (a *App) producedErr(r *kgo.Record, err error) {
	if err == nil {
		a.out.put(r)
		return
	}
	if !errors.Is(err, kgo.ErrAborting) {
		a.prodMu.Lock()
		if a.prodErr == nil {
			a.prodErr = err
		}
		a.prodMu.Unlock()
	}
}

func (c *kgoCollector) partitions(topic string) (int32, error) {
	a := (*App)(c)
	if n, ok := a.parts[topic]; ok {
		return n, nil
	}
	td, err := a.adm.ListTopics(context.Background(), topic)
	if err != nil {
		return 0, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("%w: sink topic %q: %v", ErrConfig, topic, d.Err)
	}
	n := int32(len(d.Partitions))
	a.parts[topic] = n // called with mu held, like every other use after start
	return n, nil
}
