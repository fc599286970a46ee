package metadata

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func openStore(t *testing.T, dir string, cfg StoreConfig) *Store {
	t.Helper()
	cfg.Dir = dir
	cfg.NodeID = 1
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustApply(t *testing.T, s *Store, recs ...Record) *Image {
	t.Helper()
	img, err := s.Apply(testCtx(t), recs...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestStoreApplyAndRestart(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		name := "log replay"
		if snapshot {
			name = "snapshot restore"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, StoreConfig{})
			cid := s.Image().ClusterID()
			if _, err := ParseUUID(cid); err != nil {
				t.Fatalf("bootstrap wrote cluster id %q: %v", cid, err)
			}
			if !s.IsLeader() {
				t.Fatal("not leader after Open")
			}
			img := mustApply(t, s,
				TopicRecord{Name: "a", ID: tid(1)},
				PartitionRecord{TopicID: tid(1), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
				ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "retention.ms", Value: sp("10")})
			if img != s.Image() || img.Topic("a") == nil || img.AppliedIndex() == 0 {
				t.Fatalf("Apply returned %v, Image() is %v", dump(img), dump(s.Image()))
			}
			mustApply(t, s, ProducerIDsRecord{BrokerID: 1, NextProducerID: 1000})
			if snapshot {
				if err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			// An entry after the snapshot must be replayed from the log.
			mustApply(t, s, TopicRecord{Name: "b", ID: tid(2)})
			want := dump(s.Image())
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}

			s2 := openStore(t, dir, StoreConfig{ClusterID: cid})
			defer s2.Close()
			if got := dump(s2.Image()); got != want {
				t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
			}
			// The restarted store accepts writes: it re-elected itself rather than
			// bootstrapping a second configuration.
			if img := mustApply(t, s2, RemoveTopicRecord{TopicID: tid(2)}); img.Topic("b") != nil {
				t.Fatal("remove after restart did not apply")
			}
		})
	}
}

func TestStoreClusterIDMismatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, StoreConfig{ClusterID: testClusterID})
	if s.Image().ClusterID() != testClusterID {
		t.Fatalf("cluster id %q", s.Image().ClusterID())
	}
	s.Close()
	_, err := Open(StoreConfig{Dir: dir, NodeID: 1, ClusterID: "BBBBBBBBBBBBBBBBBBBBBB", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, ErrClusterIDMismatch) {
		t.Fatalf("err %v, want ErrClusterIDMismatch", err)
	}
	// The failed Open released the directory.
	openStore(t, dir, StoreConfig{}).Close()
}

func TestStoreRejectsInvalidBatch(t *testing.T) {
	s := openStore(t, t.TempDir(), StoreConfig{})
	defer s.Close()
	before := s.Image()
	_, err := s.Apply(testCtx(t), TopicRecord{Name: "a", ID: tid(1)}, RemoveTopicRecord{TopicID: tid(9)})
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("err %v", err)
	}
	if s.Image() != before {
		t.Fatal("a rejected batch published an image")
	}
	if _, err := s.Apply(testCtx(t)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("empty batch: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(ctx, TopicRecord{Name: "a", ID: tid(1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestStoreApplyAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir(), StoreConfig{})
	s.Close()
	if _, err := s.Apply(testCtx(t), TopicRecord{Name: "a", ID: tid(1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
	if err := s.WaitDelivered(testCtx(t), 1<<40); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitDelivered after close: %v", err)
	}
	s.Watch(func(prev, next *Image) { t.Error("watcher called on a closed store") })
}

type watchCall struct{ prev, next *Image }

func TestStoreWatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, StoreConfig{})
	mustApply(t, s, TopicRecord{Name: "a", ID: tid(1)})
	s.Close()

	s = openStore(t, dir, StoreConfig{})
	defer s.Close()
	replayed := s.Image()

	var mu sync.Mutex
	var calls [2][]watchCall
	for i := range calls {
		s.Watch(func(prev, next *Image) {
			mu.Lock()
			defer mu.Unlock()
			calls[i] = append(calls[i], watchCall{prev, next})
		})
	}
	// Concurrent proposers: the watchers must still see one chain.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				mustApply(t, s, TopicRecord{Name: string(rune('b'+w)) + string(rune('0'+i)), ID: tid(byte(10 + w*5 + i))})
			}
		})
	}
	wg.Wait()
	last := s.Image()
	if err := s.WaitDelivered(testCtx(t), last.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, cs := range calls {
		if len(cs) != 21 {
			t.Fatalf("watcher %d: %d calls, want 1 + 20", i, len(cs))
		}
		if cs[0].prev != nil || cs[0].next != replayed || cs[0].next.Topic("a") == nil {
			t.Fatalf("watcher %d: first call is not (nil, replayed state)", i)
		}
		for j := 1; j < len(cs); j++ {
			if cs[j].prev != cs[j-1].next || cs[j].next.AppliedIndex() <= cs[j].prev.AppliedIndex() {
				t.Fatalf("watcher %d: call %d breaks the chain", i, j)
			}
			if cs[j].next.NumTopics() != cs[j].prev.NumTopics()+1 {
				t.Fatalf("watcher %d: call %d skipped or repeated an image", i, j)
			}
		}
		if cs[len(cs)-1].next != last {
			t.Fatalf("watcher %d did not end at the latest image", i)
		}
	}
}

func TestStoreSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, StoreConfig{})
	defer s.Close()
	if s2, err := Open(StoreConfig{Dir: dir, NodeID: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil {
		s2.Close()
		t.Fatal("a second store opened a directory in use")
	}
}

// A healthy start and restart of a single node logs no warning.
func TestStoreQuietStart(t *testing.T) {
	dir := t.TempDir()
	var buf syncBuffer
	for range 2 {
		s, err := Open(StoreConfig{Dir: dir, NodeID: 1, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if out := buf.String(); out != "" {
		t.Fatalf("start logged:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
