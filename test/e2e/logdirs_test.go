package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

// TestOffsetForLeaderEpoch: the end offset of the current epoch is the log end offset, a
// newer epoch is unknown, current_leader_epoch fences as in Fetch, every served version
// answers, and the checkpoint is on disk across a restart.
func TestOffsetForLeaderEpoch(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "epochs", 2, nil)
	cl := client(t, b.Addr)
	produceN(t, cl, "epochs", 7) // all to one partition or spread; sum is what counts
	adm := kadm.NewClient(cl)

	ends, err := adm.ListEndOffsets(ctxT(t), "epochs")
	if err != nil {
		t.Fatal(err)
	}
	res, err := adm.OffsetForLeaderEpoch(ctxT(t), kadm.OffsetForLeaderEpochRequest{"epochs": {0: 0, 1: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		end, _ := ends.Lookup("epochs", p)
		r := res["epochs"][p]
		switch {
		case p == 0 && (r.Err != nil || r.LeaderEpoch != 0 || r.EndOffset != end.Offset):
			t.Errorf("partition 0 epoch 0: %+v, want epoch 0 end %d", r, end.Offset)
		case p == 1 && (r.Err != nil || r.LeaderEpoch != -1 || r.EndOffset != -1):
			t.Errorf("partition 1 epoch 3 (newer than known): %+v, want -1/-1", r)
		}
	}

	// Every version, with current_leader_epoch fencing from v2.
	for v := int16(0); v <= 4; v++ {
		for _, c := range []struct {
			cur  int32
			code int16
		}{{-1, 0}, {0, 0}, {1, kerr.UnknownLeaderEpoch.Code}} {
			if v < 2 && c.cur >= 0 {
				continue
			}
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.Version = v
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "epochs"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, 0, c.cur
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctxT(t), cl)
			if err != nil {
				t.Fatalf("v%d: %v", v, err)
			}
			sp := resp.Topics[0].Partitions[0]
			end, _ := ends.Lookup("epochs", 0)
			if sp.ErrorCode != c.code || c.code == 0 && sp.EndOffset != end.Offset {
				t.Errorf("v%d current epoch %d: code %d end %d, want code %d end %d", v, c.cur, sp.ErrorCode, sp.EndOffset, c.code, end.Offset)
			}
		}
	}

	// The epoch's start is checkpointed where a batch was written.
	var written int
	for p := 0; p < 2; p++ {
		data, err := os.ReadFile(filepath.Join(b.Dir, "epochs-"+string(rune('0'+p)), "leader-epoch-checkpoint"))
		switch {
		case err == nil && string(data) == "0\n1\n0 0\n":
			written++
		case err == nil:
			t.Errorf("partition %d checkpoint %q", p, data)
		}
	}
	if written == 0 {
		t.Error("no leader-epoch checkpoint written")
	}
	b.Restart()
	adm = kadm.NewClient(client(t, b.Addr))
	res, err = adm.OffsetForLeaderEpoch(ctxT(t), kadm.OffsetForLeaderEpochRequest{"epochs": {0: 0}})
	if end, _ := ends.Lookup("epochs", 0); err != nil || res["epochs"][0].EndOffset != end.Offset {
		t.Fatalf("after restart: %+v, %v", res["epochs"][0], err)
	}
}

// TestLogDirsDescribeAndMove: two log dirs share the partitions, DescribeLogDirs reports
// them with their sizes and the disks' space, AlterReplicaLogDirs moves one and every record
// is still there, also after a restart.
func TestLogDirsDescribeAndMove(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	b := testkit.StartBroker(t, map[string]string{"log.dirs": dirA + "," + dirB})
	createTopic(t, b.Addr, "spread", 2, nil)
	cl := client(t, b.Addr)
	produceKeyed(t, b.Addr, "spread", 20, "k")
	adm := kadm.NewClient(cl)
	node := b.B.Config().NodeID

	describe := func() kadm.DescribedLogDirs {
		t.Helper()
		ds, err := adm.DescribeBrokerLogDirs(ctxT(t), node, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ds.Error(); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	ds := describe()
	if len(ds) != 2 {
		t.Fatalf("%d dirs described", len(ds))
	}
	where := map[int32]string{}
	var total int64
	for _, d := range ds {
		if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("dir %s: total %d usable %d", d.Dir, d.TotalBytes, d.UsableBytes)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			where[p.Partition] = d.Dir
			total += p.Size
		})
	}
	if len(where) != 2 || where[0] == where[1] || total == 0 {
		t.Fatalf("partitions placed %v, total size %d; want one per dir", where, total)
	}

	// Move partition 0 into the other dir.
	dest := dirA
	if where[0] == dirA {
		dest = dirB
	}
	var req kadm.AlterReplicaLogDirsReq
	req.Add(dest, kadm.TopicsSet{"spread": {0: {}}})
	res, err := adm.AlterBrokerReplicaLogDirs(ctxT(t), node, req)
	if err != nil {
		t.Fatal(err)
	}
	res.Each(func(r kadm.AlterReplicaLogDirsResponse) {
		if r.Err != nil {
			t.Errorf("move %s-%d: %v", r.Topic, r.Partition, r.Err)
		}
	})
	var bad kadm.AlterReplicaLogDirsReq
	bad.Add("/not/a/log/dir", kadm.TopicsSet{"spread": {1: {}}})
	res, _ = adm.AlterBrokerReplicaLogDirs(ctxT(t), node, bad)
	res.Each(func(r kadm.AlterReplicaLogDirsResponse) {
		if !errors.Is(r.Err, kerr.LogDirNotFound) {
			t.Errorf("move to an unknown dir: %v", r.Err)
		}
	})

	ds = describe()
	if p, ok := ds.LookupPartition("spread", 0); !ok || p.Dir != dest || p.Size == 0 {
		t.Fatalf("after the move partition 0 is %+v (found %v), want in %s", p, ok, dest)
	}
	if _, err := os.Stat(filepath.Join(where[0], "spread-0")); !os.IsNotExist(err) {
		t.Errorf("old copy still there: %v", err)
	}
	produceKeyed(t, b.Addr, "spread", 10, "m")
	if got := consumeN(t, b.Addr, 30, "spread"); len(got) != 30 {
		t.Fatalf("consumed %d records", len(got))
	}
	b.Restart()
	if got := consumeN(t, b.Addr, 30, "spread"); len(got) != 30 {
		t.Fatalf("after restart consumed %d records", len(got))
	}
}
