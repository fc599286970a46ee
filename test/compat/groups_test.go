package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMember is what one member of a consumer group read, as its client reported it.
type groupMember struct {
	// Assignments lists the partitions of each assignment the member was given, in order.
	Assignments [][]int32   `json:"assignments"`
	Records     []gotRecord `json:"records"`
}

// groupConsumer is a client that consumes through the consumer-group protocol.
type groupConsumer interface {
	client
	// consumeGroup runs `members` consumers of group, subscribed to topic, that start where
	// the group committed (the earliest offset where it did not), read until together they
	// have read every partition up to ends (partitions absent from ends hold no record), then
	// commit what they read and leave the group.
	consumeGroup(t *testing.T, group, topic string, members int, ends map[int32]int64) ([]groupMember, error)
}

func (c *scriptClient) consumeGroup(t *testing.T, group, topic string, members int, ends map[int32]int64) ([]groupMember, error) {
	var resp struct {
		Members []groupMember `json:"members"`
	}
	e := map[string]int64{}
	for p, o := range ends {
		e[strconv.Itoa(int(p))] = o
	}
	req := map[string]any{"group": group, "topic": topic, "members": members, "ends": e}
	err := c.run(t, "group_consume", req, &resp)
	return resp.Members, err
}

// kcatAssigned is kcat's stderr line announcing a member's assignment.
var kcatAssigned = regexp.MustCompile(`^% Group \S+ rebalanced \(memberid \S+\): assigned: (.*)$`)

// kcatPartition is one "topic [p]" of an assignment line.
var kcatPartition = regexp.MustCompile(`(\S+) \[(\d+)\]`)

// consumeGroup starts one `kcat -G` process per member at once; with -e each exits when its
// assigned partitions reach their end, committing (librdkafka's auto-commit) as it closes.
// ends is implied: kcat reads to the end offsets it sees.
func (k kcatClient) consumeGroup(t *testing.T, group, topic string, members int, _ map[int32]int64) ([]groupMember, error) {
	out := make([]groupMember, members)
	errs := make([]error, members)
	var wg sync.WaitGroup
	for i := range members {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
			defer cancel()
			args := []string{"-b", k.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-J",
				"-X", "fetch.message.max.bytes=2097152", topic}
			cmd := exec.CommandContext(ctx, "kcat", args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("kcat %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 40))
				return
			}
			out[i], errs[i] = parseKcatGroupOutput(stdout.Bytes(), stderr.Bytes())
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseKcatGroupOutput reads the records of one `kcat -G -J` (stdout) and its assignments
// (stderr).
func parseKcatGroupOutput(stdout, stderr []byte) (groupMember, error) {
	var m groupMember
	for line := range strings.Lines(string(stderr)) {
		a := kcatAssigned.FindStringSubmatch(strings.TrimSpace(line))
		if a == nil {
			continue
		}
		var parts []int32
		for _, p := range kcatPartition.FindAllStringSubmatch(a[1], -1) {
			n, _ := strconv.Atoi(p[2])
			parts = append(parts, int32(n))
		}
		m.Assignments = append(m.Assignments, parts)
	}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var j kcatJSON
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			return m, fmt.Errorf("kcat -J line %q: %v", tail(sc.Bytes(), 1), err)
		}
		r := gotRecord{Topic: j.Topic, Partition: j.Partition, Offset: j.Offset, Key: j.Key, Value: j.Payload,
			Timestamp: j.TS, TimestampType: "log_append"}
		if j.TSType == "create" {
			r.TimestampType = "create"
		}
		for i := 0; i+1 < len(j.Headers); i += 2 {
			r.Headers = append(r.Headers, [2]string{j.Headers[i], j.Headers[i+1]})
		}
		m.Records = append(m.Records, r)
	}
	return m, sc.Err()
}

// consumerGroups runs, for each client, a group of two consumers on parties, then a third
// consumer of the same group once they have left. Groups are named after the seed's nerds.
func (s *suite) consumerGroups(t *testing.T) {
	for _, c := range s.clients {
		t.Run(c.name(), func(t *testing.T) {
			s.groupScenario(t, c.(groupConsumer), "nerds-"+c.name())
		})
	}
}

// groupScenario checks, for one client and a new group:
//  1. two members share parties: their first assignments split the 11 partitions between
//     them, and together they read every record, each exactly once;
//  2. after they leave, kadm sees the group's committed offsets at the partitions' ends;
//  3. a new member of the group reads only the records produced after that.
func (s *suite) groupScenario(t *testing.T, c groupConsumer, group string) {
	const topic, partitions = "parties", 11
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := s.b.admin(t)

	ref := s.b.readAll(t, topic)
	ends := endOffsets(ref)
	members, err := c.consumeGroup(t, group, topic, 2, ends)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Fatalf("%d members reported, want 2", len(members))
	}
	var first [][]int32
	for i, m := range members {
		if len(m.Assignments) == 0 {
			t.Errorf("member %d reported no assignment", i)
			continue
		}
		first = append(first, m.Assignments[0])
	}
	if msg := splitsPartitions(first, partitions); msg != "" {
		t.Errorf("first assignments %v: %s", first, msg)
	}
	var all []gotRecord
	for i, m := range members {
		owned := slices.Concat(m.Assignments...)
		for _, r := range m.Records {
			if !slices.Contains(owned, r.Partition) {
				t.Errorf("member %d read %s[%d]@%d, a partition it was never assigned (%v)", i, r.Topic, r.Partition, r.Offset, m.Assignments)
				break
			}
		}
		all = append(all, m.Records...)
	}
	compareRecords(t, c.name()+" group", ref, all)

	// The members committed as they left: the group's offsets are the ends they read to.
	committed := s.fetchCommitted(ctx, t, adm, group, topic)
	for p := range int32(partitions) {
		if want := ends[p]; want > 0 && committed[p] != want {
			t.Errorf("%s[%d]: group %s committed offset %d, want %d", topic, p, group, committed[p], want)
		}
	}

	// Two more records per partition; a new member resumes after the committed offsets.
	var more []*kgo.Record
	for p := range int32(partitions) {
		for i := range 2 {
			more = append(more, &kgo.Record{Topic: topic, Partition: p, Value: []byte(value(franzName, "after-"+group, int(p)*2+i))})
		}
	}
	pcl := s.b.franz(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pcl.ProduceSync(ctx, more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ref2 := s.b.readAll(t, topic)
	ends2 := endOffsets(ref2)
	var newer []*kgo.Record
	for _, r := range ref2 {
		if r.Offset >= ends[r.Partition] {
			newer = append(newer, r)
		}
	}
	resumed, err := c.consumeGroup(t, group, topic, 1, ends2)
	if err != nil {
		t.Fatal(err)
	}
	var got []gotRecord
	for _, m := range resumed {
		got = append(got, m.Records...)
	}
	compareRecords(t, c.name()+" resumed group", newer, got)
}

// endOffsets gives each partition's end offset from a complete read of a topic.
func endOffsets(recs []*kgo.Record) map[int32]int64 {
	ends := map[int32]int64{}
	for _, r := range recs {
		ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
	}
	return ends
}

// fetchCommitted returns a group's committed offsets of topic with kadm (OffsetFetch); a
// partition without a commit is absent.
func (s *suite) fetchCommitted(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// splitsPartitions says how the assignments fail to give each of partitions 0..n-1 to
// exactly one member, every member getting some; "" when they do.
func splitsPartitions(assignments [][]int32, n int) string {
	owner := map[int32]int{}
	var problems []string
	for i, a := range assignments {
		if len(a) == 0 {
			problems = append(problems, fmt.Sprintf("member %d was assigned nothing", i))
		}
		for _, p := range a {
			if j, dup := owner[p]; dup {
				problems = append(problems, fmt.Sprintf("partition %d assigned to members %d and %d", p, j, i))
			}
			owner[p] = i
		}
	}
	for p := range int32(n) {
		if _, ok := owner[p]; !ok {
			problems = append(problems, fmt.Sprintf("partition %d assigned to no member", p))
		}
	}
	if len(owner) > n {
		problems = append(problems, fmt.Sprintf("%d partitions assigned, the topic has %d", len(owner), n))
	}
	return strings.Join(problems, "; ")
}
