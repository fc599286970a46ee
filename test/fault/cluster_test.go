package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

// TestClusterFaults runs a three-node cluster of poste processes (every node a broker and a
// controller voter) under a continuous workload — idempotent acks=all producers on a
// replicated topic (RF 3, min.insync.replicas 2) and two independent read_uncommitted
// consumers, all recorded in a History — while it injects, in turn:
//
//	a. SIGKILL of a partition leader every 10 s, each restarted;
//	b. SIGSTOP of a partition leader for a few seconds, then SIGCONT;
//	c. a partition leader cut off from clients and the other nodes by the proxies for
//	   ~10 s, during which a producer talking straight to its real port must get no
//	   acks=all acknowledgement;
//	d. SIGKILL of the active controller while topics are created and deleted;
//	e. SIGKILL of the whole cluster and restart.
//
// Then: no acknowledged record lost, none duplicated, every producer's order kept, all
// consumers agree on every offset; and, the cluster stopped cleanly with full ISRs, every
// replica holds the same batches up to the smallest log end offset, which covers the high
// watermark. Timings are logged, never asserted.
//
// By default one round of faults runs (about two minutes). POSTE_SOAK=<duration> repeats
// the rounds for that long; POSTE_FAULT_DIR keeps the nodes' data and logs there, and
// POSTE_FAULT_LOG_LEVEL sets their log level (default info).
func TestClusterFaults(t *testing.T) {
	soak := time.Duration(0)
	if s := os.Getenv("POSTE_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("POSTE_SOAK=%q: %v", s, err)
		}
		soak = d
	}
	dir := os.Getenv("POSTE_FAULT_DIR")
	if dir != "" {
		dir = fmtDir(t, dir)
	}
	c := testkit.StartProcCluster(t, testkit.ProcClusterConfig{Nodes: 3, Dir: dir, LogLevel: os.Getenv("POSTE_FAULT_LOG_LEVEL")})
	const (
		topic      = "faults"
		partitions = 4
	)
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(c.Addrs()...)))
	ctx := context.Background()
	if _, err := retryAdmin(ctx, func(ctx context.Context) error {
		r, err := adm.CreateTopic(ctx, partitions, 3, nil, topic)
		if err == nil {
			err = r.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	f := &faults{t: t, c: c, adm: adm, topic: topic}
	if err := f.waitFullISR(60*time.Second, topic); err != nil {
		t.Fatal(err)
	}
	w := newWorkload(t, c, topic, partitions, 2, 2)
	f.w = w
	start := time.Now()
	time.Sleep(3 * time.Second)

	steps := []struct {
		name string
		run  func() error
	}{
		{"leader SIGKILL every 10 s", func() error { return f.killLeaders(2) }},
		{"leader SIGSTOP", f.pauseLeader},
		{"leader isolated", f.isolateLeader},
		{"controller SIGKILL during topic churn", f.killControllerDuringChurn},
		{"whole cluster SIGKILL", f.killAll},
	}
	failed := false
	for round := 1; !failed; round++ {
		for _, s := range steps {
			t.Logf("round %d: %s (t=%v, %d records acked)", round, s.name, time.Since(start).Round(time.Second), w.h.Acked())
			if err := s.run(); err != nil {
				t.Errorf("round %d, %s: %v", round, s.name, err)
				failed = true
				break
			}
		}
		if time.Since(start) >= soak {
			break
		}
	}

	// Final checks: every record's outcome known, consumers at the high watermarks.
	fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := w.stop(fctx); err != nil {
		t.Errorf("stopping producers: %v", err)
	}
	hws, err := highWatermarks(fctx, adm, topic)
	if err != nil {
		t.Fatalf("high watermarks: %v", err)
	}
	hw := map[int32]int64{}
	for tp, o := range hws {
		hw[tp.Partition] = o
	}
	if err := w.drain(fctx, hw); err != nil {
		t.Errorf("%v", err)
	}
	rep := w.h.Check()
	t.Logf("after %v: %s; high watermarks %v; client errors seen:%s", time.Since(start).Round(time.Second), rep.String(), hw, w.errorSummary())
	if !rep.OK() {
		t.Errorf("history check failed: %s", rep.String())
	}
	for cn, n := range rep.Unseen {
		if n > 0 {
			t.Errorf("consumer %s did not read %d acknowledged records", cn, n)
		}
	}
	f.compareAll(fctx)
	t.Logf("measured: %s", f.summary())
}

// fmtDir makes a fresh directory for this run under base.
func fmtDir(t *testing.T, base string) string {
	d, err := os.MkdirTemp(base, "cluster-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node data and logs in %s", d)
	return d
}

// faults injects the faults and keeps what it measured.
type faults struct {
	t     *testing.T
	c     *testkit.ProcCluster
	adm   *kadm.Client
	w     *workload
	topic string

	mu struct {
		sync.Mutex
		notes []string
	}
}

func (f *faults) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	f.t.Log(s)
	f.mu.Lock()
	f.mu.notes = append(f.mu.notes, s)
	f.mu.Unlock()
}

func (f *faults) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "\n  " + strings.Join(f.mu.notes, "\n  ")
}

// waitFullISR waits until every partition of topics has a leader and a full ISR.
func (f *faults) waitFullISR(limit time.Duration, topics ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	why := ""
	for {
		ok, w := f.c.FullISR(ctx, topics...)
		if ok {
			if d := time.Since(start); d > time.Second {
				f.note("full ISR again after %v", d.Round(100*time.Millisecond))
			}
			return nil
		}
		why = w
		select {
		case <-ctx.Done():
			return fmt.Errorf("no full ISR within %v: %s", limit, why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaderOf returns the current leader of a partition of the workload topic.
func (f *faults) leaderOf(p int32) (int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		l, _, err := f.c.Leader(ctx, f.topic, p)
		if err == nil && l >= 0 {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no leader for %s/%d: %v", f.topic, p, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// failover waits until partition p has a leader other than old and a record to p has been
// acknowledged after that, and notes how long the move took and the longest time without
// acknowledgements on p since the fault.
func (f *faults) failover(what string, p int32, old int32, since time.Time) error {
	tp := testkit.TopicPartition{Topic: f.topic, Partition: p}
	deadline := time.Now().Add(60 * time.Second)
	var moved time.Time
	for time.Now().Before(deadline) {
		if moved.IsZero() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if l, _, err := f.c.Leader(ctx, f.topic, p); err == nil && l >= 0 && l != old {
				moved = time.Now()
			}
			cancel()
		} else if f.w.h.LastAck(tp).After(moved) {
			f.note("%s: leader of %s moved off node %d in %v; longest stretch without acks %v", what, tp, old,
				moved.Sub(since).Round(10*time.Millisecond), f.w.h.AckGap(tp, since, time.Now()).Round(10*time.Millisecond))
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if moved.IsZero() {
		return fmt.Errorf("%s: the leader of %s did not move off node %d within 60 s", what, tp, old)
	}
	return fmt.Errorf("%s: no record acknowledged on %s within 60 s of its leader moving", what, tp)
}

// killLeaders SIGKILLs the leader of a partition every 10 s, n times, restarting it each
// time after 2 s.
func (f *faults) killLeaders(n int) error {
	for i := range n {
		started := time.Now()
		p := int32(i) % f.w.partitions
		l, err := f.leaderOf(p)
		if err != nil {
			return err
		}
		nd := f.c.Node(l)
		killed := time.Now()
		nd.Kill()
		if err := f.failover(fmt.Sprintf("SIGKILL node %d", l), p, l, killed); err != nil {
			return err
		}
		time.Sleep(time.Until(killed.Add(2 * time.Second)))
		rs := time.Now()
		if err := nd.Start(); err != nil {
			return err
		}
		f.note("node %d restarted and serving in %v", l, time.Since(rs).Round(10*time.Millisecond))
		if err := f.waitFullISR(60*time.Second, f.topic); err != nil {
			return err
		}
		time.Sleep(time.Until(started.Add(10 * time.Second)))
	}
	return nil
}

// pauseLeader SIGSTOPs the leader of a partition for 4 s.
func (f *faults) pauseLeader() error {
	p := 1 % f.w.partitions
	l, err := f.leaderOf(p)
	if err != nil {
		return err
	}
	nd := f.c.Node(l)
	paused := time.Now()
	nd.Pause()
	resumed := make(chan struct{})
	time.AfterFunc(4*time.Second, func() {
		nd.Resume()
		close(resumed)
	})
	err = f.failover(fmt.Sprintf("SIGSTOP node %d", l), p, l, paused)
	<-resumed
	if err != nil {
		return err
	}
	if !nd.Running() {
		return fmt.Errorf("node %d exited after SIGCONT", l)
	}
	return f.waitFullISR(60*time.Second, f.topic)
}

// isolateLeader cuts the leader X of a partition off for about 10 s. Meanwhile a producer
// connected straight to X's real port sends acks=all records to that partition: X must not
// acknowledge any (it cannot replicate them), and whatever it appended is gone once X
// rejoins (the history would show an acknowledged record as lost).
func (f *faults) isolateLeader() error {
	p := 2 % f.w.partitions
	l, err := f.leaderOf(p)
	if err != nil {
		return err
	}
	nd := f.c.Node(l)
	cut := time.Now()
	f.c.Isolate(l)
	// Once the controller has fenced X (its session times out), a new leader serves the
	// partition while X, which hears nothing, still believes it leads. Records sent to X
	// one request at a time must not be acknowledged.
	const n = 3
	acked := 0
	outcomes := map[string]int{}
	directDone := make(chan struct{})
	go func() {
		defer close(directDone)
		time.Sleep(2 * time.Second)
		for i := range n {
			v := fmt.Appendf(nil, "direct-%d-%d-%d", l, cut.UnixNano(), i)
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			code, off, err := nd.ProduceDirect(ctx, f.topic, p, v, -1, 2*time.Second)
			cancel()
			s := testkit.Send{Producer: "direct", Topic: f.topic, Partition: p, Value: v, Seq: -1, Offset: off, Err: err}
			switch {
			case err != nil:
				outcomes["no answer: "+err.Error()]++
			case code != 0:
				s.Err = kerr.ErrorForCode(code)
				outcomes[s.Err.Error()]++
			default:
				acked++
				outcomes[fmt.Sprintf("acknowledged at offset %d", off)]++
			}
			f.w.h.Sent(s)
		}
	}()
	failErr := f.failover(fmt.Sprintf("isolate node %d", l), p, l, cut)
	<-directDone
	f.note("isolated node %d answered %d acks=all records sent to its real port: %v", l, n, outcomes)
	time.Sleep(time.Until(cut.Add(10 * time.Second)))
	f.c.Heal(l)
	healed := time.Now()
	if failErr != nil {
		return failErr
	}
	if acked > 0 {
		return fmt.Errorf("node %d, cut off from the cluster, acknowledged %d acks=all records", l, acked)
	}
	if err := f.waitFullISR(60*time.Second, f.topic); err != nil {
		return err
	}
	f.note("node %d back in every ISR %v after the cut ended", l, time.Since(healed).Round(100*time.Millisecond))
	return nil
}

// retriable reports whether an admin error may go away by itself.
func retriable(err error) bool {
	var ne net.Error
	return kerr.IsRetriable(err) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, kerr.NotController) || errors.Is(err, kerr.RequestTimedOut)
}

// killControllerDuringChurn creates and deletes topics through kadm while the active
// controller is SIGKILLed and restarted. Every operation must end in success or a clear
// error, and the topics left must be those the successful operations say.
func (f *faults) killControllerDuringChurn() error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stop := make(chan struct{})
	done := make(chan error, 1)
	var mu sync.Mutex
	exists := map[string]bool{} // what the successful operations say
	prefix := fmt.Sprintf("churn-%d-", time.Now().UnixNano()%1e6)
	ops, retries := 0, 0
	clearErrs := map[string]int{}    // operations that ended in a definite error
	history := map[string][]string{} // per topic, each operation's outcome
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			name := fmt.Sprintf("%s%03d", prefix, i)
			n, err := retryAdmin(ctx, func(ctx context.Context) error {
				r, err := f.adm.CreateTopic(ctx, 1, 3, nil, name)
				if err == nil {
					err = r.Err
				}
				return err
			})
			mu.Lock()
			ops++
			retries += n - 1
			history[name] = append(history[name], fmt.Sprintf("create after %d attempts: %v", n, err))
			switch {
			// Names are unique and only this loop creates them, so TOPIC_ALREADY_EXISTS means
			// an earlier attempt succeeded: ours, or one the client retried on its own after
			// a cut connection.
			case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
				exists[name] = true
			case retriable(err):
				mu.Unlock()
				done <- fmt.Errorf("create %s: no answer after %d attempts: %w", name, n, err)
				return
			default:
				clearErrs["create: "+err.Error()]++
			}
			created := exists[name]
			mu.Unlock()
			if !created || i%2 == 1 {
				continue // every other topic is kept
			}
			n, err = retryAdmin(ctx, func(ctx context.Context) error {
				_, err := f.adm.DeleteTopic(ctx, name)
				return err
			})
			mu.Lock()
			ops++
			retries += n - 1
			history[name] = append(history[name], fmt.Sprintf("delete after %d attempts: %v", n, err))
			switch {
			case err == nil, errors.Is(err, kerr.UnknownTopicOrPartition): // likewise
				exists[name] = false
			case retriable(err):
				mu.Unlock()
				done <- fmt.Errorf("delete %s: no answer after %d attempts: %w", name, n, err)
				return
			default:
				clearErrs["delete: "+err.Error()]++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(3 * time.Second)
	cid, err := f.c.ActiveController(ctx)
	if err != nil {
		close(stop)
		<-done
		return err
	}
	killed := time.Now()
	f.c.Node(cid).Kill()
	var took time.Duration
	for ctx.Err() == nil {
		if id, err := f.c.ActiveController(ctx); err == nil && id != cid {
			took = time.Since(killed)
			f.note("SIGKILL active controller %d: node %d took over in %v", cid, id, took.Round(10*time.Millisecond))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Until(killed.Add(3 * time.Second)))
	if err := f.c.Node(cid).Start(); err != nil {
		close(stop)
		<-done
		return err
	}
	time.Sleep(4 * time.Second)
	close(stop)
	if err := <-done; err != nil {
		return fmt.Errorf("topic churn: %w", err)
	}
	if took == 0 {
		return fmt.Errorf("no new controller after SIGKILL of %d", cid)
	}
	mu.Lock()
	defer mu.Unlock()
	var want []string
	for name, ok := range exists {
		if ok {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	var got []string
	for ctx.Err() == nil {
		md, err := f.c.Metadata(ctx)
		if err == nil {
			got = got[:0]
			for _, td := range md.Topics {
				if td.Topic != nil && strings.HasPrefix(*td.Topic, prefix) {
					got = append(got, *td.Topic)
				}
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				f.note("topic churn: %d operations (%d retries), %d topics left as expected; definite errors: %v", ops, retries, len(want), clearErrs)
				return f.waitFullISR(60*time.Second, f.topic)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var diff []string
	for _, name := range got {
		if !slices.Contains(want, name) {
			diff = append(diff, fmt.Sprintf("%s exists after %v", name, history[name]))
		}
	}
	for _, name := range want {
		if !slices.Contains(got, name) {
			diff = append(diff, fmt.Sprintf("%s is missing after %v", name, history[name]))
		}
	}
	return fmt.Errorf("the topics left differ from what the operations said: %s", strings.Join(diff, "; "))
}

// killAll SIGKILLs every node at once and starts them again.
func (f *faults) killAll() error {
	killed := time.Now()
	f.c.KillAll()
	time.Sleep(time.Second)
	if err := f.c.StartAll(); err != nil {
		return err
	}
	f.note("whole cluster SIGKILLed; all nodes serving again after %v", time.Since(killed).Round(10*time.Millisecond))
	deadline := time.Now().Add(60 * time.Second)
	for p := range f.w.partitions {
		tp := testkit.TopicPartition{Topic: f.topic, Partition: p}
		for !f.w.h.LastAck(tp).After(killed) {
			if time.Now().After(deadline) {
				return fmt.Errorf("no record acknowledged on %s within 60 s of the restart", tp)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var gaps []string
	for p := range f.w.partitions {
		tp := testkit.TopicPartition{Topic: f.topic, Partition: p}
		gaps = append(gaps, f.w.h.AckGap(tp, killed, time.Now()).Round(10*time.Millisecond).String())
	}
	f.note("whole cluster SIGKILLed: every partition acknowledging again after %v (per partition, longest stretch without acks %v)",
		time.Since(killed).Round(10*time.Millisecond), gaps)
	return f.waitFullISR(60*time.Second, f.topic)
}

// compareAll waits for full ISRs, notes the high watermarks, stops the cluster cleanly
// and compares the replicas of every partition of every non-internal topic.
func (f *faults) compareAll(ctx context.Context) {
	t := f.t
	if err := f.waitFullISR(60 * time.Second); err != nil {
		t.Errorf("before the final comparison: %v", err)
	}
	md, err := f.c.Metadata(ctx)
	if err != nil {
		t.Fatalf("final metadata: %v", err)
	}
	var topics []string
	parts := map[string][]kmsg.MetadataResponseTopicPartition{}
	for _, td := range md.Topics {
		if td.Topic != nil && !strings.HasPrefix(*td.Topic, "__") {
			topics = append(topics, *td.Topic)
			parts[*td.Topic] = td.Partitions
		}
	}
	slices.Sort(topics)
	hws, err := highWatermarks(ctx, f.adm, topics...)
	if err != nil {
		t.Fatalf("final high watermarks: %v", err)
	}
	stopped := time.Now()
	if err := f.c.StopAll(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
	f.note("clean stop of the cluster took %v", time.Since(stopped).Round(10*time.Millisecond))
	compared, batches := 0, 0
	for _, name := range topics {
		ps := parts[name]
		slices.SortFunc(ps, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
		for _, p := range ps {
			tp := testkit.TopicPartition{Topic: name, Partition: p.Partition}
			end, n, err := compareReplicas(f.c, tp, p.Replicas, hws[tp])
			if err != nil {
				t.Errorf("replicas %v: %v", p.Replicas, err)
				continue
			}
			compared++
			batches += n
			if name == f.topic {
				f.note("%s: replicas %v identical up to offset %d (high watermark %d, %d batches)", tp, p.Replicas, end, hws[tp], n)
			}
		}
	}
	f.note("%d partitions of %d topics compared, %d batches", compared, len(topics), batches)
}

// TestClusterIsolatedLeaderOfNewPartition: the leader of a partition that has just been
// created (replicas 3, min.insync.replicas 2, full ISR) is cut off from the other nodes and
// then sent an acks=all record straight to its real port. No follower can fetch it, so the
// leader must not acknowledge it (Kafka answers REQUEST_TIMED_OUT or NOT_ENOUGH_REPLICAS).
// A regression test: a freshly created partition's leader kept the single-node state it was
// opened with (ISR of itself, min ISR 1) until the first change of the partition, and so
// acknowledged acks=all writes that no follower had; losing that leader then lost them.
func TestClusterIsolatedLeaderOfNewPartition(t *testing.T) {
	c := testkit.StartProcCluster(t, testkit.ProcClusterConfig{Nodes: 3})
	const topic = "fresh"
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(c.Addrs()...)))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := retryAdmin(ctx, func(ctx context.Context) error {
		r, err := adm.CreateTopic(ctx, 1, 3, nil, topic)
		if err == nil {
			err = r.Err
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f := &faults{t: t, c: c, adm: adm, topic: topic}
	if err := f.waitFullISR(30*time.Second, topic); err != nil {
		t.Fatal(err)
	}
	leader, _, err := c.Leader(ctx, topic, 0)
	if err != nil || leader < 0 {
		t.Fatalf("leader %d: %v", leader, err)
	}
	nd := c.Node(leader)
	// A first record through the leader, replicated normally.
	for {
		code, _, err := nd.ProduceDirect(ctx, topic, 0, []byte("before"), -1, 5*time.Second)
		if err == nil && code == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("first write: code %d, %v", code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Isolate(leader)
	defer c.Heal(leader)
	time.Sleep(500 * time.Millisecond) // every connection to it is cut by now
	code, off, err := nd.ProduceDirect(ctx, topic, 0, []byte("isolated"), -1, 2*time.Second)
	switch {
	case err != nil:
		t.Logf("the isolated leader gave no answer: %v", err)
	case code != 0:
		t.Logf("the isolated leader answered %v", kerr.ErrorForCode(code))
	default:
		t.Errorf("node %d, cut off from every follower, acknowledged an acks=all write at offset %d", leader, off)
		// Evidence: what the leader believes about the partition.
		if md, err := nd.Metadata(ctx, topic); err == nil {
			if p := testkit.FindPartition(md, topic, 0); p != nil {
				t.Logf("node %d's view: leader %d epoch %d replicas %v isr %v", leader, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
			}
		}
	}
}
