package cli

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// seekMode is where `poste group seek` moves a group's offsets.
type seekMode int

const (
	seekEarliest  seekMode = iota + 1 // the log start offset
	seekLatest                        // the log end offset (high watermark)
	seekTimestamp                     // the first offset at or after a time, else the end
	seekOffset                        // an absolute offset, clamped into the log
	seekShiftBy                       // the committed offset plus n, clamped into the log
)

// seekTarget is a parsed seek request: the mode and its argument (an offset, a shift or a
// time in Unix milliseconds).
type seekTarget struct {
	mode seekMode
	n    int64
}

// seekFlags are the flags of `poste group seek`.
type seekFlags struct {
	toEarliest  bool
	toLatest    bool
	toTimestamp string
	toOffset    int64
	shiftBy     int64
	topics      []string
	execute     bool
}

func newGroupSeekCommand(g *globals) *cobra.Command {
	var sf seekFlags
	cmd := &cobra.Command{
		Use:     "seek GROUP (--to-earliest | --to-latest | --to-timestamp T | --to-offset N | --shift-by N) [--topic T[:P,P...]]... [--execute]",
		Aliases: []string{"reset-offsets"},
		Short:   "Reset a consumer group's committed offsets (prints the plan; --execute applies it)",
		Long: `Compute new committed offsets for a consumer group and print the plan: per partition
the current committed offset and the new one. Nothing changes unless --execute is given.

Where to move (exactly one):
  --to-earliest      the log start offset
  --to-latest        the log end offset (the group skips everything not yet consumed)
  --to-timestamp T   the first record at or after T (Unix milliseconds or RFC3339);
                     the log end offset where no record is that recent
  --to-offset N      offset N, clamped into [log start, log end]
  --shift-by N       the committed offset plus N (negative: back), clamped into the log;
                     every partition in scope needs a committed offset

Which partitions (--topic, repeatable): T for every partition of topic T, or T:0,2 for
some. Without --topic: every partition the group has a committed offset for.

Offsets can only be committed from outside a group while it has no active members, as in
Kafka: stop the group's consumers before --execute (describe shows its state). The group
need not exist yet: --execute with --topic creates its offsets.`,
		Example: `  poste group seek billing --to-earliest
  poste group seek billing --to-timestamp 2024-06-01T00:00:00Z --topic orders --execute
  poste group seek billing --shift-by -10 --topic orders:0,1 --execute
  poste group seek billing --to-offset 0 --topic orders --topic refunds`,
		Args:              exactArgs(1),
		ValidArgsFunction: g.completeGroups,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGroupSeek(cmd, g, &sf, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&sf.toEarliest, "to-earliest", false, "move to the log start offset")
	f.BoolVar(&sf.toLatest, "to-latest", false, "move to the log end offset")
	f.StringVar(&sf.toTimestamp, "to-timestamp", "", "move to the first record at or after this time (Unix ms or RFC3339)")
	f.Int64Var(&sf.toOffset, "to-offset", 0, "move to this offset, clamped into the log")
	f.Int64Var(&sf.shiftBy, "shift-by", 0, "move the committed offset by this many records (negative: back)")
	// StringArray, not StringSlice: T:0,1 contains commas.
	f.StringArrayVarP(&sf.topics, "topic", "t", nil, "topic T or T:P,P... to reset (repeatable; default: the partitions with committed offsets)")
	f.BoolVar(&sf.execute, "execute", false, "commit the new offsets (without it the plan is only printed)")
	_ = cmd.RegisterFlagCompletionFunc("topic", g.completeTopics)
	return cmd
}

// target validates the mode flags: exactly one must be given.
func (sf *seekFlags) target(cmd *cobra.Command) (seekTarget, error) {
	modes := []string{"to-earliest", "to-latest", "to-timestamp", "to-offset", "shift-by"}
	if err := exclusive(cmd, modes...); err != nil {
		return seekTarget{}, err
	}
	f := cmd.Flags()
	switch {
	case f.Changed("to-earliest") && sf.toEarliest:
		return seekTarget{mode: seekEarliest}, nil
	case f.Changed("to-latest") && sf.toLatest:
		return seekTarget{mode: seekLatest}, nil
	case f.Changed("to-timestamp"):
		ms, err := parseTimestamp(sf.toTimestamp)
		if err != nil {
			return seekTarget{}, usagef("--to-timestamp %q: want Unix milliseconds or RFC3339 (2006-01-02T15:04:05Z)", sf.toTimestamp)
		}
		if ms < 0 {
			return seekTarget{}, usagef("--to-timestamp %q: must not be before 1970", sf.toTimestamp)
		}
		return seekTarget{mode: seekTimestamp, n: ms}, nil
	case f.Changed("to-offset"):
		if sf.toOffset < 0 {
			return seekTarget{}, usagef("--to-offset must not be negative")
		}
		return seekTarget{mode: seekOffset, n: sf.toOffset}, nil
	case f.Changed("shift-by"):
		return seekTarget{mode: seekShiftBy, n: sf.shiftBy}, nil
	}
	return seekTarget{}, usagef("say where to move: one of --%s", strings.Join(modes, ", --"))
}

// parseTopicScopes parses --topic values, T or T:P,P..., into topic → partitions, where
// a nil list means every partition. A topic named twice gets the union.
func parseTopicScopes(in []string) (map[string][]int32, error) {
	out := make(map[string][]int32)
	for _, s := range in {
		t, list, hasParts := strings.Cut(s, ":")
		if t == "" {
			return nil, usagef("--topic %q: want TOPIC or TOPIC:PARTITION,PARTITION...", s)
		}
		if !hasParts {
			out[t] = nil
			continue
		}
		var ps []int32
		for _, p := range strings.Split(list, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return nil, usagef("--topic %q: %q is not a partition number", s, p)
			}
			ps = append(ps, int32(n))
		}
		if prev, seen := out[t]; seen {
			if prev == nil {
				continue // already every partition
			}
			ps = append(prev, ps...)
		}
		out[t] = ps
	}
	for t, ps := range out {
		if ps == nil {
			continue
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[t] = compactInt32(ps)
	}
	return out, nil
}

// compactInt32 removes adjacent duplicates from a sorted slice.
func compactInt32(ps []int32) []int32 {
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}

// seekRow is one partition of a seek plan. err says why no new offset could be computed;
// status is the outcome of the commit, once executed.
type seekRow struct {
	topic     string
	partition int32
	current   int64 // committed offset, -1 if none
	target    int64
	err       string
	status    string
}

// planSeek computes the new offset of every partition in scope from its committed offset
// (-1: none), its log start and end offsets and, for a timestamp, the listed offset at that
// time. Every target lies within [log start, log end]. Rows are sorted by topic and
// partition.
func planSeek(to seekTarget, scope map[string][]int32, commits kadm.OffsetResponses, starts, ends, atTime kadm.ListedOffsets) []seekRow {
	var rows []seekRow
	for t, ps := range scope {
		for _, p := range ps {
			r := seekRow{topic: t, partition: p, current: -1}
			if c, ok := commits.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				r.current = c.At
			}
			r.target, r.err = seekTargetFor(to, r.current, t, p, starts, ends, atTime)
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].topic != rows[j].topic {
			return rows[i].topic < rows[j].topic
		}
		return rows[i].partition < rows[j].partition
	})
	return rows
}

// seekTargetFor is planSeek for one partition.
func seekTargetFor(to seekTarget, current int64, t string, p int32, starts, ends, atTime kadm.ListedOffsets) (int64, string) {
	start, err := listedOffset(starts, t, p)
	if err != "" {
		return -1, "log start offset: " + err
	}
	end, err := listedOffset(ends, t, p)
	if err != "" {
		return -1, "log end offset: " + err
	}
	clamp := func(o int64) int64 { return min(max(o, start), end) }
	switch to.mode {
	case seekEarliest:
		return start, ""
	case seekLatest:
		return end, ""
	case seekTimestamp:
		o, err := listedOffset(atTime, t, p)
		if err != "" {
			return -1, "offset for time: " + err
		}
		if o < 0 { // no record that recent
			return end, ""
		}
		return clamp(o), ""
	case seekOffset:
		return clamp(to.n), ""
	case seekShiftBy:
		if current < 0 {
			return -1, "no committed offset to shift"
		}
		return clamp(current + to.n), ""
	}
	return -1, "unknown seek mode"
}

func runGroupSeek(cmd *cobra.Command, g *globals, sf *seekFlags, group string) error {
	to, err := sf.target(cmd)
	if err != nil {
		return err
	}
	scope, err := parseTopicScopes(sf.topics)
	if err != nil {
		return err
	}
	adm, err := g.newAdmin(cmd)
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := g.ctx(cmd)
	defer cancel()

	d, err := g.describeGroup(ctx, cmd, adm, group)
	if err != nil {
		return err
	}
	active := isActive(d)
	if active && sf.execute {
		return activeGroupError(group, d)
	}
	commits, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return g.explainGroup(cmd, err, "fetch offsets of group "+group, group)
	}

	if len(scope) == 0 {
		// Kafka's default: the partitions that have a committed offset.
		for t, ps := range commits {
			for p, c := range ps {
				if c.Err == nil && c.At >= 0 {
					scope[t] = append(scope[t], p)
				}
			}
		}
		if len(scope) == 0 {
			if d.State == "Dead" {
				return fmt.Errorf("%w %q: name the topics to create its offsets for with --topic", ErrUnknownGroup, group)
			}
			return fmt.Errorf("group %s has no committed offsets: name the topics with --topic", group)
		}
	} else if err := g.resolveScope(cmd, adm, scope); err != nil {
		return err
	}
	topics := make([]string, 0, len(scope))
	for t := range scope {
		topics = append(topics, t)
	}
	sort.Strings(topics)

	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return g.explain(cmd, err, "list start offsets", "")
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return g.explain(cmd, err, "list end offsets", "")
	}
	var atTime kadm.ListedOffsets
	if to.mode == seekTimestamp {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, to.n, topics...); err != nil {
			return g.explain(cmd, err, "list offsets by time", "")
		}
	}
	rows := planSeek(to, scope, commits, starts, ends, atTime)

	var unplanned int
	var firstErr string
	for _, r := range rows {
		if r.err != "" {
			if unplanned == 0 {
				firstErr = fmt.Sprintf("%s[%d]: %s", r.topic, r.partition, r.err)
			}
			unplanned++
		}
	}
	if unplanned > 0 {
		printSeekPlan(cmd, group, rows, false)
		return fmt.Errorf("seek group %s: no new offset for %d partition(s), nothing committed; first: %s", group, unplanned, firstErr)
	}
	if !sf.execute {
		printSeekPlan(cmd, group, rows, false)
		w := cmd.ErrOrStderr()
		if active {
			fmt.Fprintf(w, "note: group %s has %d active member(s) (state %s); --execute is refused until it is empty\n", group, len(d.Members), d.State)
		}
		fmt.Fprintln(w, "dry run: nothing committed; add --execute to commit these offsets")
		return nil
	}

	offsets := make(kadm.Offsets)
	for _, r := range rows {
		offsets.Add(kadm.Offset{Topic: r.topic, Partition: r.partition, At: r.target, LeaderEpoch: -1})
	}
	resps, err := adm.CommitOffsets(ctx, group, offsets)
	if err != nil {
		if isMembershipError(err) {
			return fmt.Errorf("seek group %s: the coordinator refused the commit (%s): the group has active members now; offsets can only be reset while it is empty",
				group, kerrMessage(err))
		}
		return g.explainGroup(cmd, err, "commit offsets for group "+group, group)
	}
	var nFailed int
	var first error
	for i := range rows {
		r := &rows[i]
		o, ok := resps.Lookup(r.topic, r.partition)
		var err error
		switch {
		case !ok:
			r.status = "no answer from the broker"
			err = fmt.Errorf("commit offset of %s[%d] for group %s: no answer from the broker", r.topic, r.partition, group)
		case isMembershipError(o.Err):
			// Members joined after the group was described.
			r.status = kerrMessage(o.Err)
			err = fmt.Errorf("seek group %s: the coordinator refused the commit (%s): the group has active members now; offsets can only be reset while it is empty",
				group, kerrMessage(o.Err))
		case o.Err != nil:
			r.status = kerrMessage(o.Err)
			err = g.explain(cmd, o.Err, fmt.Sprintf("commit offset of %s[%d] for group %s", r.topic, r.partition, group), r.topic)
		default:
			r.status = "OK"
		}
		if err != nil {
			nFailed++
			if first == nil {
				first = err
			}
		}
	}
	printSeekPlan(cmd, group, rows, true)
	return failed(nFailed, len(rows), first)
}

// resolveScope checks that the --topic topics and partitions exist and fills in every
// partition of the topics named without partitions.
func (g *globals) resolveScope(cmd *cobra.Command, adm *kadm.Client, scope map[string][]int32) error {
	ctx, cancel := g.ctx(cmd)
	defer cancel()
	topics := make([]string, 0, len(scope))
	for t := range scope {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	md, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return g.explain(cmd, err, "look up topics", "")
	}
	for _, t := range topics {
		if !md.Has(t) {
			return g.explain(cmd, errOrUnknown(md[t].Err), "look up topic", t)
		}
		td := md[t]
		if td.Err != nil {
			return g.explain(cmd, td.Err, "look up topic "+t, t)
		}
		if scope[t] == nil {
			for _, p := range td.Partitions.Sorted() {
				scope[t] = append(scope[t], p.Partition)
			}
			continue
		}
		for _, p := range scope[t] {
			if _, ok := td.Partitions[p]; !ok {
				return fmt.Errorf("--topic %s: the topic has no partition %d (it has %d)", t, p, len(td.Partitions))
			}
		}
	}
	return nil
}

// isMembershipError reports whether a commit was refused because the group has members:
// an offset commit from outside the group's generation is fenced by the coordinator.
func isMembershipError(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID)
}

// activeGroupError explains why the offsets of a group with members cannot be reset.
func activeGroupError(group string, d kadm.DescribedGroup) error {
	return fmt.Errorf("seek group %s: the group has %d active member(s) (state %s); offsets can only be reset while it is empty: stop its consumers and run again",
		group, len(d.Members), orDash(d.State))
}

// printSeekPlan prints the plan, with each partition's commit status once executed.
func printSeekPlan(cmd *cobra.Command, group string, rows []seekRow, executed bool) {
	tw := table(cmd)
	header := "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET"
	if executed {
		header += "\tSTATUS"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		cur := "-"
		if r.current >= 0 {
			cur = strconv.FormatInt(r.current, 10)
		}
		target := strconv.FormatInt(r.target, 10)
		if r.err != "" {
			target = "- (" + r.err + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s", group, r.topic, r.partition, cur, target)
		if executed {
			fmt.Fprintf(tw, "\t%s", r.status)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
