package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

func replicaState(id int32, leo, fetchMs int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	s.ReplicaID, s.LogEndOffset, s.LastFetchTimestamp = id, leo, fetchMs
	return s
}

func TestPrintQuorum(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	ms := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = 2, 7, 120
	p.CurrentVoters = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{
		replicaState(1, 118, ms(250*time.Millisecond)),
		replicaState(2, 120, ms(0)),
		replicaState(3, -1, -1), // never heard of
		replicaState(5, 125, 0), // v0: no timestamps; ahead of the high watermark
		replicaState(6, 100, ms(3260*time.Millisecond)),
	}
	p.Observers = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replicaState(4, 90, ms(2*time.Second))}

	var b strings.Builder
	if err := printQuorum(&b, &p, nil, now); err != nil {
		t.Fatal(err)
	}
	want := `
QUORUM
LEADER          2
EPOCH           7
HIGH-WATERMARK  120

ID  ROLE      LOG-END-OFFSET  LAG  HEARTBEAT-AGE
1   follower  118             2    250ms
2   leader    120             0    0s
3   follower  -               -    -
5   follower  125             0    -
6   follower  100             20   3.3s
4   observer  90              30   2s
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintQuorumUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{kerr.NotLeaderForPartition, "quorum: unavailable (NOT_LEADER_OR_FOLLOWER: the broker asked is not the quorum leader)"},
		{fmt.Errorf("wrapped: %w", kerr.UnknownTopicOrPartition), "quorum: unavailable (UNKNOWN_TOPIC_OR_PARTITION)"},
		{errors.New("broker is too old; the broker has a max version of -1 for this request"),
			"quorum: unavailable (the broker does not serve DescribeQuorum)"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "quorum: unavailable (connection refused)"},
		{context.DeadlineExceeded, "quorum: unavailable (timed out)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			var b strings.Builder
			if err := printQuorum(&b, nil, tc.err, time.Now()); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(b.String()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// runInfo runs `poste cluster info` in-process against seeds and returns its stdout.
func runInfo(t *testing.T, seeds ...string) string {
	t.Helper()
	root := NewRoot()
	var out, errb strings.Builder
	root.SetArgs([]string{"-b", strings.Join(seeds, ","), "cluster", "info"})
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := Execute(ctx, root); code != ExitOK {
		t.Fatalf("poste cluster info: exit %d\n%s%s", code, out.String(), errb.String())
	}
	return out.String()
}

// quorumRows returns the ROLE column of each replica row of the QUORUM section, by id.
func quorumRows(t *testing.T, out string) (leader string, roles map[string]string) {
	t.Helper()
	_, section, ok := strings.Cut(out, "\nQUORUM\n")
	if !ok {
		t.Fatalf("no QUORUM section in:\n%s", out)
	}
	roles = map[string]string{}
	for _, l := range strings.Split(section, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "LEADER":
			leader = f[1]
		case len(f) == 5 && f[0] != "ID":
			roles[f[0]] = f[1]
			if f[3] == "-" || f[2] == "-" {
				t.Errorf("replica row without offsets: %q", l)
			}
		}
	}
	return leader, roles
}

func TestClusterInfoQuorum(t *testing.T) {
	t.Run("single node", func(t *testing.T) {
		b := testkit.StartBroker(t, nil)
		out := runInfo(t, b.Addr)
		if !strings.HasPrefix(out, "CLUSTER ") {
			t.Errorf("output does not start with the CLUSTER row:\n%s", out)
		}
		leader, roles := quorumRows(t, out)
		if leader != "1" || len(roles) != 1 || roles["1"] != "leader" {
			t.Errorf("leader %q, roles %v, want node 1 alone as leader:\n%s", leader, roles, out)
		}
	})
	t.Run("three nodes", func(t *testing.T) {
		c := testkit.StartCluster(t, 3, nil)
		out := runInfo(t, c.Addrs()...)
		leader, roles := quorumRows(t, out)
		followers := 0
		for _, r := range roles {
			if r == "follower" {
				followers++
			}
		}
		if len(roles) != 3 || roles[leader] != "leader" || followers != 2 {
			t.Errorf("leader %q, roles %v, want 3 voters, one leader:\n%s", leader, roles, out)
		}
		// The quorum leader is the controller the brokers name.
		if !strings.Contains(out, "CONTROLLER  "+leader+"\n") {
			t.Errorf("controller is not the quorum leader %s:\n%s", leader, out)
		}
	})
}
