package cli_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/cli"
	"github.com/poste-io/poste/internal/testkit"
)

// committed returns a group's committed offsets for topic's partitions 0..n-1, -1 where
// there is none.
func committed(t *testing.T, adm *kadm.Client, group, topic string, n int32) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := make([]int64, n)
	for p := range n {
		out[p] = -1
		if o, ok := os.Lookup(topic, p); ok && o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

// offsetRows returns describe's OFFSETS rows of topic, by partition: the columns after
// PARTITION (COMMITTED-OFFSET LOG-END-OFFSET LAG MEMBER-ID).
func offsetRows(t *testing.T, out, topic string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) >= 6 && f[0] == topic {
			rows[f[1]] = strings.Join(f[2:], " ")
		}
	}
	return rows
}

// planRows returns seek's plan rows of topic, by partition: "CURRENT NEW [STATUS]".
func planRows(t *testing.T, out, group, topic string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) >= 5 && f[0] == group && f[1] == topic {
			rows[f[2]] = strings.Join(f[3:], " ")
		}
	}
	return rows
}

func TestGroupCommands(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	poste(t, b, 0, "", "topic", "create", "orders", "-p", "3")
	poste(t, b, 0, "a\nb\nc\nd\ne\n", "produce", "orders", "-p", "0")
	poste(t, b, 0, "a\nb\nc\n", "produce", "orders", "-p", "1")
	poste(t, b, 0, "a\nb\n", "produce", "orders", "-p", "2")

	// A consumer joins "billing", reads all ten records and commits them.
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr),
		kgo.ClientID("billing-app"),
		kgo.ConsumerGroup("billing"),
		kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for n := 0; n < 10; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10 records: %v", n, err)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("poll: %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
		}
		n += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Two more records on partition 0, later than every record before: lag 2 there.
	time.Sleep(5 * time.Millisecond)
	boundary := time.Now()
	time.Sleep(5 * time.Millisecond)
	poste(t, b, 0, "f\ng\n", "produce", "orders", "-p", "0")

	admCl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	// describe: one member holding the three partitions, exact offsets and lag.
	r := poste(t, b, 0, "", "group", "describe", "billing")
	for key, want := range map[string]string{"STATE": "Stable", "PROTOCOL-TYPE": "consumer", "MEMBERS": "1", "TOTAL-LAG": "2", "COORDINATOR": "1"} {
		if got := row(t, r.stdout, key); len(got) != 2 || got[1] != want {
			t.Errorf("describe %s row %v, want %s", key, got, want)
		}
	}
	var member []string
	for _, l := range lines(r.stdout) {
		if f := strings.Fields(l); len(f) == 5 && f[2] == "billing-app" {
			member = f
		}
	}
	if member == nil || member[1] != "-" || !strings.Contains(member[3], "127.0.0.1") || member[4] != "orders[0,1,2]" {
		t.Errorf("member row %v, want MEMBER-ID - billing-app /127.0.0.1 orders[0,1,2]\n%s", member, r.stdout)
	}
	memberID := ""
	if member != nil {
		memberID = member[0]
	}
	wantRows := map[string]string{
		"0": "5 7 2 " + memberID,
		"1": "3 3 0 " + memberID,
		"2": "2 2 0 " + memberID,
	}
	if got := offsetRows(t, r.stdout, "orders"); !maps.Equal(got, wantRows) {
		t.Errorf("describe offsets %v, want %v\n%s", got, wantRows, r.stdout)
	}

	// describe --json carries the same facts.
	r = poste(t, b, 0, "", "group", "describe", "billing", "--json")
	var views []struct {
		Group        string
		State        string
		ProtocolType string `json:"protocol_type"`
		Members      []struct {
			MemberID   string `json:"member_id"`
			ClientID   string `json:"client_id"`
			ClientHost string `json:"client_host"`
			Assignment []struct {
				Topic      string
				Partitions []int32
			}
		}
		Offsets []struct {
			Topic        string
			Partition    int32
			Committed    *int64  `json:"committed_offset"`
			LogEndOffset *int64  `json:"log_end_offset"`
			Lag          *int64  `json:"lag"`
			MemberID     *string `json:"member_id"`
		}
		TotalLag int64 `json:"total_lag"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	if len(views) != 1 || views[0].Group != "billing" || views[0].State != "Stable" || views[0].TotalLag != 2 ||
		len(views[0].Members) != 1 || views[0].Members[0].ClientID != "billing-app" ||
		len(views[0].Members[0].Assignment) != 1 || len(views[0].Members[0].Assignment[0].Partitions) != 3 ||
		len(views[0].Offsets) != 3 {
		t.Fatalf("--json %s", r.stdout)
	}
	for i, want := range [][3]int64{{5, 7, 2}, {3, 3, 0}, {2, 2, 0}} {
		o := views[0].Offsets[i]
		if o.Partition != int32(i) || o.Committed == nil || o.LogEndOffset == nil || o.Lag == nil || o.MemberID == nil ||
			[3]int64{*o.Committed, *o.LogEndOffset, *o.Lag} != want || *o.MemberID != views[0].Members[0].MemberID {
			t.Errorf("--json offsets[%d] = %+v, want partition %d %v", i, o, i, want)
		}
	}

	// list, with and without a state filter.
	r = poste(t, b, 0, "", "group", "list")
	if got := row(t, r.stdout, "billing"); strings.Join(got, " ") != "billing Stable consumer 1" {
		t.Errorf("list row %v", got)
	}
	if r = poste(t, b, 0, "", "group", "list", "--state", "stable"); !strings.Contains(r.stdout, "billing") {
		t.Errorf("list --state stable:\n%s", r.stdout)
	}
	if r = poste(t, b, 0, "", "group", "list", "--state", "Empty,Dead"); strings.Contains(r.stdout, "billing") {
		t.Errorf("list --state Empty,Dead shows a Stable group:\n%s", r.stdout)
	}

	// An active group: the plan prints, --execute and delete are refused, nothing changes.
	r = poste(t, b, 0, "", "group", "seek", "billing", "--to-earliest")
	if !strings.Contains(r.stderr, "active member") || !strings.Contains(r.stderr, "dry run") {
		t.Errorf("seek of an active group, dry run: stderr %q", r.stderr)
	}
	r = poste(t, b, 1, "", "group", "seek", "billing", "--to-earliest", "--execute")
	if !strings.Contains(r.stderr, "1 active member(s) (state Stable)") || !strings.Contains(r.stderr, "stop its consumers") {
		t.Errorf("seek --execute of an active group: stderr %q", r.stderr)
	}
	r = poste(t, b, 1, "", "group", "delete", "billing")
	if !strings.Contains(r.stdout, "NON_EMPTY_GROUP") || !strings.Contains(r.stderr, "active members") {
		t.Errorf("delete of an active group: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := committed(t, adm, "billing", "orders", 3); !slices.Equal(got, []int64{5, 3, 2}) {
		t.Fatalf("committed offsets changed to %v while the group was active", got)
	}

	// The consumer leaves: the group is Empty.
	consumer.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = poste(t, b, 0, "", "group", "list", "--state", "Empty")
		if strings.Contains(r.stdout, "billing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("billing never became Empty after its consumer left:\n%s", poste(t, b, 0, "", "group", "describe", "billing").stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = poste(t, b, 0, "", "group", "describe", "billing")
	if got := row(t, r.stdout, "MEMBERS"); got[1] != "0" {
		t.Errorf("MEMBERS after leaving: %v", got)
	}
	wantRows = map[string]string{"0": "5 7 2 -", "1": "3 3 0 -", "2": "2 2 0 -"}
	if got := offsetRows(t, r.stdout, "orders"); !maps.Equal(got, wantRows) {
		t.Errorf("describe offsets of the empty group %v, want %v\n%s", got, wantRows, r.stdout)
	}

	// Every mode's plan, without --execute: the plan is exact and nothing is committed.
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string // partition → "CURRENT NEW"
	}{
		{"to-earliest", []string{"--to-earliest"}, map[string]string{"0": "5 0", "1": "3 0", "2": "2 0"}},
		{"to-latest", []string{"--to-latest"}, map[string]string{"0": "5 7", "1": "3 3", "2": "2 2"}},
		{"to-offset clamps", []string{"--to-offset", "4"}, map[string]string{"0": "5 4", "1": "3 3", "2": "2 2"}},
		{"shift-by back clamps", []string{"--shift-by", "-3"}, map[string]string{"0": "5 2", "1": "3 0", "2": "2 0"}},
		{"shift-by forward clamps", []string{"--shift-by", "1"}, map[string]string{"0": "5 6", "1": "3 3", "2": "2 2"}},
		{"to-timestamp ms", []string{"--to-timestamp", strconv.FormatInt(boundary.UnixMilli(), 10)}, map[string]string{"0": "5 5", "1": "3 3", "2": "2 2"}},
		{"to-timestamp RFC3339 of the past", []string{"--to-timestamp", "2001-01-01T00:00:00Z"}, map[string]string{"0": "5 0", "1": "3 0", "2": "2 0"}},
		{"one partition", []string{"--to-earliest", "--topic", "orders:1"}, map[string]string{"1": "3 0"}},
		{"explicit topic", []string{"--to-earliest", "-t", "orders"}, map[string]string{"0": "5 0", "1": "3 0", "2": "2 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := poste(t, b, 0, "", append([]string{"group", "seek", "billing"}, tc.args...)...)
			if got := planRows(t, r.stdout, "billing", "orders"); !maps.Equal(got, tc.want) {
				t.Errorf("plan %v, want %v\n%s", got, tc.want, r.stdout)
			}
			if !strings.Contains(r.stderr, "add --execute") || strings.Contains(r.stderr, "active") {
				t.Errorf("stderr %q", r.stderr)
			}
			if got := committed(t, adm, "billing", "orders", 3); !slices.Equal(got, []int64{5, 3, 2}) {
				t.Fatalf("a plan without --execute committed %v", got)
			}
		})
	}

	// --execute commits the plan; describe shows the new lag.
	r = poste(t, b, 0, "", "group", "seek", "billing", "--shift-by", "-3", "--execute")
	want := map[string]string{"0": "5 2 OK", "1": "3 0 OK", "2": "2 0 OK"}
	if got := planRows(t, r.stdout, "billing", "orders"); !maps.Equal(got, want) {
		t.Errorf("executed plan %v, want %v\n%s", got, want, r.stdout)
	}
	if got := committed(t, adm, "billing", "orders", 3); !slices.Equal(got, []int64{2, 0, 0}) {
		t.Fatalf("after --execute: committed %v, want [2 0 0]", got)
	}
	r = poste(t, b, 0, "", "group", "describe", "billing")
	if got := row(t, r.stdout, "TOTAL-LAG"); got[1] != "10" {
		t.Errorf("TOTAL-LAG after seek %v, want 10", got)
	}
	poste(t, b, 0, "", "group", "seek", "billing", "--to-latest", "--topic", "orders:2", "--execute")
	if got := committed(t, adm, "billing", "orders", 3); !slices.Equal(got, []int64{2, 0, 2}) {
		t.Fatalf("after --execute on one partition: committed %v, want [2 0 2]", got)
	}

	// A group that does not exist yet gets offsets with --topic, and only then.
	r = poste(t, b, 1, "", "group", "seek", "fresh", "--to-latest")
	if !strings.Contains(r.stderr, `unknown consumer group "fresh"`) || !strings.Contains(r.stderr, "--topic") {
		t.Errorf("seek of an unknown group without --topic: %q", r.stderr)
	}
	poste(t, b, 0, "", "group", "seek", "fresh", "--to-latest", "--topic", "orders", "--execute")
	if got := committed(t, adm, "fresh", "orders", 3); !slices.Equal(got, []int64{7, 3, 2}) {
		t.Fatalf("fresh group committed %v, want [7 3 2]", got)
	}
	r = poste(t, b, 0, "", "group", "describe", "fresh")
	if got := row(t, r.stdout, "TOTAL-LAG"); got[1] != "0" {
		t.Errorf("fresh TOTAL-LAG %v", got)
	}
	// shift-by needs a committed offset on every partition in scope.
	poste(t, b, 0, "", "topic", "create", "other", "-p", "1")
	r = poste(t, b, 1, "", "group", "seek", "fresh", "--shift-by", "1", "--topic", "other", "--execute")
	if !strings.Contains(r.stderr, "no committed offset to shift") {
		t.Errorf("shift-by without a commit: %q", r.stderr)
	}
	if got := committed(t, adm, "fresh", "other", 1); got[0] != -1 {
		t.Errorf("a failed plan committed %v", got)
	}
	// Unknown topics and partitions.
	r = poste(t, b, 4, "", "group", "seek", "fresh", "--to-latest", "--topic", "nope")
	if !strings.Contains(r.stderr, `unknown topic "nope"`) {
		t.Errorf("seek of an unknown topic: %q", r.stderr)
	}
	r = poste(t, b, 1, "", "group", "seek", "fresh", "--to-latest", "--topic", "orders:9")
	if !strings.Contains(r.stderr, "no partition 9") {
		t.Errorf("seek of an unknown partition: %q", r.stderr)
	}

	// Group names complete from the cluster.
	r = runCtx(ctx, "", "-b", b.Addr, cobra.ShellCompRequestCmd, "group", "describe", "bi")
	if got := lines(r.stdout); len(got) != 2 || got[0] != "billing" || got[1] != ":4" {
		t.Errorf("group completion: %q", got)
	}

	// delete removes the group; describe and delete then report it unknown.
	r = poste(t, b, 0, "", "group", "delete", "billing")
	if got := row(t, r.stdout, "billing"); got[1] != "OK" {
		t.Errorf("delete row %v", got)
	}
	r = poste(t, b, 0, "", "group", "list")
	if strings.Contains(r.stdout, "billing") || !strings.Contains(r.stdout, "fresh") {
		t.Errorf("list after delete:\n%s", r.stdout)
	}
	if got := committed(t, adm, "billing", "orders", 3); !slices.Equal(got, []int64{-1, -1, -1}) {
		t.Errorf("offsets of the deleted group: %v", got)
	}
	r = poste(t, b, 1, "", "group", "describe", "billing")
	if !strings.Contains(r.stderr, `unknown consumer group "billing"`) {
		t.Errorf("describe of a deleted group: %q", r.stderr)
	}
	r = poste(t, b, 1, "", "group", "describe", "fresh", "billing")
	if !strings.Contains(r.stdout, "GROUP") || !strings.Contains(r.stderr, `unknown consumer group "billing"`) {
		t.Errorf("describe of one known and one unknown group: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = poste(t, b, 1, "", "group", "delete", "billing")
	if !strings.Contains(r.stdout, "GROUP_ID_NOT_FOUND") {
		t.Errorf("delete twice: %q", r.stdout)
	}
}

func TestGroupUnreachableBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"group", "list"},
		{"group", "describe", "g"},
		{"group", "delete", "g"},
		{"group", "seek", "g", "--to-earliest"},
	} {
		r := runCtx(context.Background(), "", append([]string{"-b", addr}, args...)...)
		if r.code != cli.ExitUnreachable || r.stderr != "Error: cannot reach broker "+addr+": connection refused\n" {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestGroupUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"group", "lst"},
		{"group", "list", "extra"},
		{"group", "list", "--state", "Sleeping"},
		{"group", "describe"},
		{"group", "delete"},
		{"group", "seek", "g"},
		{"group", "seek", "g", "h", "--to-earliest"},
		{"group", "seek", "g", "--to-earliest", "--to-latest"},
		{"group", "seek", "g", "--to-offset", "1", "--shift-by", "1"},
		{"group", "seek", "g", "--to-offset", "-1"},
		{"group", "seek", "g", "--to-timestamp", "soon"},
		{"group", "seek", "g", "--to-earliest", "--topic", ":1"},
		{"group", "seek", "g", "--to-earliest", "--topic", "t:x"},
		{"group", "seek", "g", "--to-earliest", "--topic", "t:-1"},
	} {
		r := runCtx(context.Background(), "", append([]string{"-b", "127.0.0.1:1"}, args...)...)
		if r.code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, cli.ExitUsage, r.stderr)
		}
	}
}
