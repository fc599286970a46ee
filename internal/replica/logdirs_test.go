package replica

import (
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/config"
	"github.com/poste-io/poste/internal/metadata"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// testManager is a manager of node 1 over two log dirs /a and /b of fs.
func testManager(t *testing.T, fs vfs.FS) *Manager {
	t.Helper()
	cfg, _, err := config.Load("", nil, map[string]string{"log.dirs": "/a,/b", "node.id": "1"})
	if err != nil {
		t.Fatal(err)
	}
	m := New(1, cfg, fs, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { m.Close() })
	return m
}

// fold applies records to img and hands the result to m.
func fold(t *testing.T, m *Manager, img *metadata.Image, recs ...metadata.Record) *metadata.Image {
	t.Helper()
	next, err := img.Fold(img.AppliedIndex()+1, recs)
	if err != nil {
		t.Fatal(err)
	}
	m.Apply(img, next)
	return next
}

func topicRecs(name string, id byte, n int32, epoch int32) []metadata.Record {
	recs := []metadata.Record{metadata.TopicRecord{Name: name, ID: [16]byte{id}}}
	for p := range n {
		recs = append(recs, metadata.PartitionRecord{TopicID: [16]byte{id}, Partition: p,
			Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: epoch})
	}
	return recs
}

func appendTo(t *testing.T, p *partition.Partition, n int) error {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte("value")}
	}
	now := time.Now().UnixMilli()
	b, err := record.Build(nil, record.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		FirstTimestamp: now, MaxTimestamp: now}, recs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(b)
	if err != nil {
		return err
	}
	return p.AwaitCommitted(res.LastOffset+1, time.Now().Add(5*time.Second))
}

func mustGet(t *testing.T, m *Manager, topic string, i int32) *partition.Partition {
	t.Helper()
	p, err := m.Get(topic, i)
	if err != nil {
		t.Fatalf("get %s-%d: %v", topic, i, err)
	}
	return p
}

func dirOf(m *Manager, topic string, i int32) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.dirs[TP{topic, i}]
}

func TestLogDirsPlacementAndSizes(t *testing.T) {
	m := testManager(t, vfs.NewMem())
	fold(t, m, metadata.Empty(), topicRecs("t", 1, 4, 0)...)
	for i := range int32(4) {
		if err := appendTo(t, mustGet(t, m, "t", i), int(i)+1); err != nil {
			t.Fatal(err)
		}
	}
	dirs := m.LogDirs()
	if len(dirs) != 2 || dirs[0].Path != "/a" || dirs[1].Path != "/b" {
		t.Fatalf("dirs %+v", dirs)
	}
	total := 0
	for _, d := range dirs {
		if d.Err != nil || len(d.Partitions) != 2 {
			t.Fatalf("dir %s: %v, %d partitions; want 2 (least-loaded placement)", d.Path, d.Err, len(d.Partitions))
		}
		if d.TotalBytes != -1 {
			t.Errorf("in-memory fs reports %d total bytes", d.TotalBytes)
		}
		for _, p := range d.Partitions {
			if want := mustGet(t, m, p.Topic, p.Partition).LogSize(); p.Size != want || p.Size == 0 {
				t.Errorf("%s-%d size %d, want %d", p.Topic, p.Partition, p.Size, want)
			}
			total++
		}
	}
	if total != 4 {
		t.Fatalf("%d partitions listed", total)
	}
}

// A PartitionChangeRecord that moves leadership bumps the leader epoch of the hosted
// partition, and the next batch starts a checkpoint entry.
func TestApplyBumpsLeaderEpoch(t *testing.T) {
	m := testManager(t, vfs.NewMem())
	img := fold(t, m, metadata.Empty(), topicRecs("t", 1, 1, 0)...)
	p := mustGet(t, m, "t", 0)
	if err := appendTo(t, p, 3); err != nil {
		t.Fatal(err)
	}
	fold(t, m, img, metadata.PartitionRecord{TopicID: [16]byte{1}, Partition: 0,
		Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4})
	if p.LeaderEpoch() != 4 {
		t.Fatalf("leader epoch %d", p.LeaderEpoch())
	}
	if err := appendTo(t, p, 2); err != nil {
		t.Fatal(err)
	}
	if got, want := p.EpochEntries(), []partition.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 4, StartOffset: 3}}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
}

// failDir fails every operation under dir once armed.
type failDir struct {
	dir   string
	armed atomic.Bool
}

func (f *failDir) MaybeError(op vfs.Op) error {
	if f.armed.Load() && strings.HasPrefix(op.Path, f.dir+"/") {
		return syscall.EIO
	}
	return nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFailedLogDirGoesOffline(t *testing.T) {
	inj := &failDir{dir: "/b"}
	m := testManager(t, vfs.NewErrorFS(vfs.NewMem(), inj))
	img := fold(t, m, metadata.Empty(), topicRecs("t", 1, 4, 0)...)
	var inA, inB []int32
	for i := range int32(4) {
		if strings.HasPrefix(dirOf(m, "t", i), "/b/") {
			inB = append(inB, i)
		} else {
			inA = append(inA, i)
		}
	}
	inj.armed.Store(true)
	if err := appendTo(t, mustGet(t, m, "t", inB[0]), 1); !errors.Is(err, partition.ErrStorage) {
		t.Fatalf("append in the failing dir: %v", err)
	}
	waitUntil(t, "the dir to go offline", func() bool { return m.isOffline("/b") })
	for _, i := range inB {
		if _, err := m.Get("t", i); !errors.Is(err, partition.ErrStorage) {
			t.Errorf("partition %d of the offline dir: %v", i, err)
		}
	}
	for _, i := range inA {
		if err := appendTo(t, mustGet(t, m, "t", i), 1); err != nil {
			t.Errorf("partition %d of the healthy dir: %v", i, err)
		}
	}
	dirs := m.LogDirs()
	if !errors.Is(dirs[1].Err, partition.ErrStorage) || dirs[0].Err != nil || len(dirs[0].Partitions) != len(inA) {
		t.Fatalf("log dirs %+v", dirs)
	}

	// New partitions go to the online dir; the offline dir's partitions stay offline.
	img = fold(t, m, img, topicRecs("u", 2, 3, 0)...)
	for i := range int32(3) {
		if d := dirOf(m, "u", i); !strings.HasPrefix(d, "/a/") {
			t.Errorf("new partition u-%d placed in %s", i, d)
		}
	}
	for _, i := range inB {
		if _, err := m.Get("t", i); !errors.Is(err, partition.ErrStorage) {
			t.Errorf("partition %d reopened after Apply: %v", i, err)
		}
	}
	// A move into the offline dir is refused.
	if err := m.MoveReplica("t", inA[0], "/b"); !errors.Is(err, ErrLogDirOffline) {
		t.Errorf("move to offline dir: %v", err)
	}
}

func TestMoveReplica(t *testing.T) {
	mem := vfs.NewMem()
	inj := &failDir{dir: "/b"}
	m := testManager(t, vfs.NewErrorFS(mem, inj))
	fold(t, m, metadata.Empty(), topicRecs("t", 1, 1, 2)...)
	if d := dirOf(m, "t", 0); d != "/a/t-0" {
		t.Fatalf("placed in %s", d)
	}
	if err := appendTo(t, mustGet(t, m, "t", 0), 5); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		topic string
		dest  string
		want  error
	}{
		{"t", "/elsewhere", ErrLogDirNotFound},
		{"nope", "/b", ErrNotHosted},
		{"t", "/a/", nil}, // already there
	} {
		if err := m.MoveReplica(tc.topic, 0, tc.dest); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("move %s to %s: %v, want %v", tc.topic, tc.dest, err, tc.want)
		}
	}

	// A copy that fails leaves the partition serving where it was.
	inj.armed.Store(true)
	if err := m.MoveReplica("t", 0, "/b"); !errors.Is(err, partition.ErrStorage) {
		t.Fatalf("failing move: %v", err)
	}
	inj.armed.Store(false)
	if d := dirOf(m, "t", 0); d != "/a/t-0" {
		t.Fatalf("after a failed move the partition is in %s", d)
	}
	if err := appendTo(t, mustGet(t, m, "t", 0), 1); err != nil {
		t.Fatal(err)
	}

	if err := m.MoveReplica("t", 0, "/b"); err != nil {
		t.Fatal(err)
	}
	p := mustGet(t, m, "t", 0)
	if d := p.Dir(); d != "/b/t-0" {
		t.Fatalf("moved partition in %s", d)
	}
	if p.LogEndOffset() != 6 || p.HighWatermark() != 6 || p.LeaderEpoch() != 2 {
		t.Fatalf("after move: end %d hw %d epoch %d", p.LogEndOffset(), p.HighWatermark(), p.LeaderEpoch())
	}
	if got := p.EpochEntries(); !slices.Equal(got, []partition.EpochEntry{{Epoch: 2, StartOffset: 0}}) {
		t.Fatalf("epoch entries after move %v", got)
	}
	s, err := p.Read(0, math.MaxInt32, true)
	if err != nil || s.NextOffset != 6 {
		t.Fatalf("read after move: next %d, %v", s.NextOffset, err)
	}
	for _, gone := range []string{"/a/t-0", "/a/t-0.discard", "/b/t-0.move"} {
		if _, err := mem.Stat(gone); err == nil {
			t.Errorf("%s still exists", gone)
		}
	}
	if err := appendTo(t, p, 1); err != nil {
		t.Fatal(err)
	}
}
