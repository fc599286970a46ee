package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Under exactly_once_v2 an instance has one transactional producer, shared by all its tasks
// (Kafka's EOS v2, KIP-447): a transaction is always open while the poll loop runs; every
// CommitInterval it commits the sink records, the changelog writes and the consumed offsets
// together. Zombies are fenced by the group generation the offsets are committed with.
// Whenever a transaction aborts, every task's stores hold uncommitted writes, so the tasks
// are rebuilt from their changelogs read with read_committed, and consumption rewinds to the
// committed offsets. A crashed instance's open transaction is aborted by the broker when its
// timeout expires (10 s by default; kgo.TransactionTimeout in ClientOpts changes it); until
// then read_committed readers of its partitions wait.

func (a *App) eos() bool { return a.cfg.ProcessingGuarantee == ExactlyOnceV2 }

// startSession creates the group's client as a transact session with a transactional id
// unique to this instance, and opens the first transaction.
func (a *App) startSession(groupOpts []kgo.Opt) error {
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	o := append(producerDefaults(), kgo.TransactionTimeout(10*time.Second))
	if len(a.cfg.Brokers) > 0 {
		o = append(o, kgo.SeedBrokers(a.cfg.Brokers...))
	}
	o = append(o, a.cfg.ClientOpts...)
	o = append(o, groupOpts...)
	o = append(o,
		kgo.TransactionalID(a.cfg.ApplicationID+"-"+hex.EncodeToString(suffix[:])),
		kgo.RequireStableFetchOffsets(),
	)
	s, err := kgo.NewGroupTransactSession(o...)
	if err != nil {
		return err
	}
	a.sess, a.cl = s, s.Client()
	return s.Begin()
}

// commitTxnLocked ends the open transaction with a commit (the session aborts instead if the
// group rebalanced or the offsets could not be committed) and opens the next one. After an
// abort the tasks are rebuilt from committed state.
func (a *App) commitTxnLocked(ctx context.Context) error {
	if a.mu.rebalanced {
		return a.restartTxnLocked(ctx)
	}
	if err := a.flushCachesLocked(); err != nil {
		return err // Run aborts the transaction
	}
	a.prod.drain() // every write of the transaction reaches the client before it ends
	a.prodMu.Lock()
	perr := a.prodErr
	a.prodMu.Unlock()
	if perr != nil {
		a.abortTxn(ctx)
		return fmt.Errorf("streams: producing output: %w", perr)
	}
	if a.prod.takeAdded() == 0 && len(a.mu.offsets) == 0 {
		// Nothing consumed or written since the last commit: as Kafka Streams, no commit.
		// The open transaction stays open (the broker knows nothing of it yet), and an idle
		// interval costs no EndTxn round trip.
		return nil
	}
	committed, err := a.sess.End(ctx, kgo.TryCommit)
	if err != nil {
		return fmt.Errorf("streams: ending transaction: %w", err)
	}
	a.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	if committed {
		for _, tk := range a.mu.tasks {
			tk.markCommitted()
		}
		if err := a.checkpointLocked(); err != nil {
			return err
		}
	}
	// The next owner of a task fetches its offsets with require_stable (KIP-447), so it
	// waits for this transaction's offsets to settle rather than reading older ones.
	if !committed {
		a.log.Warn("streams: transaction aborted; rebuilding tasks from their changelogs")
		if err := a.rebuildTasksLocked(ctx); err != nil {
			return err
		}
	}
	return a.sess.Begin()
}

// restartTxnLocked aborts the open transaction after a rebalance and opens a new one. The
// tasks assigned by the rebalance were restored from the committed changelogs while this
// transaction was still open (its writes lie past the last stable offset), so they match
// the committed offsets consumption rewinds to.
func (a *App) restartTxnLocked(ctx context.Context) error {
	a.mu.rebalanced = false
	a.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	for _, tk := range a.mu.tasks {
		tk.dropCaches() // writes of the aborted transaction, never flushed
	}
	a.prod.drain()
	a.prod.takeAdded()
	if _, err := a.sess.End(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("streams: aborting transaction: %w", err)
	}
	return a.sess.Begin()
}

// abortTxn ends the open transaction with an abort when the application stops on an error.
func (a *App) abortTxn(ctx context.Context) {
	a.prod.drain()
	if _, err := a.sess.End(ctx, kgo.TryAbort); err != nil {
		a.log.Warn("streams: aborting transaction", "err", err)
	}
}

// rebuildTasksLocked replaces every task by a fresh one restored from the committed
// changelogs, discarding state written by an aborted transaction: a persistent store that
// was written since the last commit closes without a checkpoint, so it is wiped and
// restored in full.
func (a *App) rebuildTasksLocked(ctx context.Context) error {
	ids := make([]TaskID, 0, len(a.mu.tasks))
	for id, old := range a.mu.tasks {
		ids = append(ids, id)
		a.retireTaskLocked(old)
	}
	fresh := make([]*task, 0, len(ids))
	for _, id := range ids {
		tk, err := a.newTask(id)
		if err != nil {
			return err
		}
		a.mu.tasks[id] = tk
		fresh = append(fresh, tk)
	}
	if err := a.restore(ctx, fresh); err != nil {
		return err
	}
	for _, tk := range fresh {
		if err := tk.init(); err != nil {
			return err
		}
	}
	a.register(fresh)
	return nil
}
