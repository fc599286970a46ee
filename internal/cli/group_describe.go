package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newGroupDescribeCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "describe GROUP...",
		Aliases: []string{"info"},
		Short:   "Show a group's members, assignments, committed offsets and lag",
		Long: `Show, for each group: its state, protocol and coordinator; its members with their
client id, host and assigned partitions; and, for every partition that is assigned or has
a committed offset, the committed offset, the log end offset (high watermark) and the lag
between them, with the group's total lag.

A partition without a committed offset shows "-" as offset and lag: where its consumer
starts depends on the consumer's reset policy. The total lag counts only partitions with a
committed offset.

--json prints one JSON array with an object per group: group, state, protocol_type,
protocol, coordinator, members ([{member_id, instance_id, client_id, client_host,
assignment: [{topic, partitions}]}]), offsets ([{topic, partition, committed_offset,
log_end_offset, lag, member_id, error}], unknown values null) and total_lag.

A group that does not exist is an error (exit 1); the other groups are still shown.`,
		Example: `  poste group describe billing
  poste group describe billing audit --json`,
		Args:              minArgs(1),
		ValidArgsFunction: g.completeGroups,
		RunE: func(cmd *cobra.Command, groups []string) error {
			return runGroupDescribe(cmd, g, groups, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the groups as JSON")
	return cmd
}

// groupView is everything describe shows about one group, in the form --json prints.
type groupView struct {
	Group        string       `json:"group"`
	State        string       `json:"state"`
	ProtocolType string       `json:"protocol_type"`
	Protocol     string       `json:"protocol"`
	Coordinator  int32        `json:"coordinator"`
	Members      []memberView `json:"members"`
	Offsets      []offsetView `json:"offsets"`
	TotalLag     int64        `json:"total_lag"`
}

type memberView struct {
	MemberID   string           `json:"member_id"`
	InstanceID *string          `json:"instance_id"`
	ClientID   string           `json:"client_id"`
	ClientHost string           `json:"client_host"`
	Assignment []topicPartsView `json:"assignment"`
}

type topicPartsView struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// offsetView is one partition's row; a nil pointer is a value that is not known.
type offsetView struct {
	Topic        string  `json:"topic"`
	Partition    int32   `json:"partition"`
	Committed    *int64  `json:"committed_offset"`
	LogEndOffset *int64  `json:"log_end_offset"`
	Lag          *int64  `json:"lag"`
	MemberID     *string `json:"member_id"`
	Error        string  `json:"error,omitempty"`
}

func runGroupDescribe(cmd *cobra.Command, g *globals, groups []string, asJSON bool) error {
	adm, err := g.newAdmin(cmd)
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := g.ctx(cmd)
	defer cancel()

	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return g.explainGroup(cmd, err, "describe groups", "")
	}
	commits := adm.FetchManyOffsets(ctx, groups...)

	var views []groupView
	var failures []error
	fail := func(err error) { failures = append(failures, err) }
	type ok struct {
		d kadm.DescribedGroup
		c kadm.OffsetResponses
	}
	var found []ok
	topics := make(map[string]bool)
	for _, name := range groups {
		d, present := described[name]
		switch {
		case !present:
			fail(fmt.Errorf("describe group %s: no answer from the broker", name))
			continue
		case d.Err != nil:
			fail(g.explainGroup(cmd, withMessage(d.Err, d.ErrMessage), "describe group "+name, name))
			continue
		}
		c := commits[name]
		if c.Err != nil {
			fail(g.explainGroup(cmd, c.Err, "fetch offsets of group "+name, name))
			continue
		}
		if d.State == "Dead" && len(d.Members) == 0 && len(c.Fetched) == 0 {
			fail(fmt.Errorf("%w %q", ErrUnknownGroup, name))
			continue
		}
		found = append(found, ok{d, c.Fetched})
		for t := range d.AssignedPartitions() {
			topics[t] = true
		}
		for t := range c.Fetched {
			topics[t] = true
		}
	}

	var ends kadm.ListedOffsets
	if len(topics) > 0 {
		names := make([]string, 0, len(topics))
		for t := range topics {
			names = append(names, t)
		}
		sort.Strings(names)
		// A topic deleted since its offsets were committed is reported on its rows, not
		// as a failure of the whole command.
		if ends, err = adm.ListEndOffsets(ctx, names...); err != nil {
			var se *kadm.ShardErrors
			if !errors.As(err, &se) {
				return g.explain(cmd, err, "list end offsets", "")
			}
		}
	}
	for _, f := range found {
		views = append(views, buildGroupView(f.d, f.c, ends))
	}

	if asJSON {
		if views == nil {
			views = []groupView{}
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(views); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	} else {
		for i := range views {
			if i > 0 {
				fmt.Fprintln(cmd.OutOrStdout())
			}
			printGroupView(cmd, &views[i])
		}
	}
	if len(failures) == 0 {
		return nil
	}
	// The command's error names the first failure; with several, every one is listed.
	if len(failures) > 1 {
		for _, err := range failures {
			fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
		}
	}
	return failed(len(failures), len(groups), failures[0])
}

// buildGroupView joins a described group, its committed offsets and the log end offsets
// into what describe prints.
func buildGroupView(d kadm.DescribedGroup, commits kadm.OffsetResponses, ends kadm.ListedOffsets) groupView {
	v := groupView{
		Group:        d.Group,
		State:        d.State,
		ProtocolType: d.ProtocolType,
		Protocol:     d.Protocol,
		Coordinator:  d.Coordinator.NodeID,
		Members:      []memberView{},
	}
	for _, m := range d.Members {
		mv := memberView{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Assignment: []topicPartsView{}}
		// Only consumer groups have assignments in a known format.
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := append([]int32(nil), t.Partitions...)
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				mv.Assignment = append(mv.Assignment, topicPartsView{Topic: t.Topic, Partitions: ps})
			}
			sort.Slice(mv.Assignment, func(i, j int) bool { return mv.Assignment[i].Topic < mv.Assignment[j].Topic })
		}
		v.Members = append(v.Members, mv)
	}
	v.Offsets, v.TotalLag = offsetRowsOf(v.Members, commits, ends)
	return v
}

// offsetRowsOf returns describe's offset rows and the total lag: one row per partition that
// is assigned to a member or has a committed offset, sorted by topic and partition. The lag
// is end - committed, never negative, and unknown without a committed offset or a log end
// offset; the total counts the known lags.
func offsetRowsOf(members []memberView, commits kadm.OffsetResponses, ends kadm.ListedOffsets) ([]offsetView, int64) {
	out := []offsetView{}
	var total int64
	rows := make(map[string]map[int32]*offsetView)
	row := func(t string, p int32) *offsetView {
		if rows[t] == nil {
			rows[t] = make(map[int32]*offsetView)
		}
		r := rows[t][p]
		if r == nil {
			r = &offsetView{Topic: t, Partition: p}
			rows[t][p] = r
		}
		return r
	}
	for _, m := range members {
		for _, a := range m.Assignment {
			for _, p := range a.Partitions {
				row(a.Topic, p).MemberID = &m.MemberID
			}
		}
	}
	for t, ps := range commits {
		for p, c := range ps {
			r := row(t, p)
			switch {
			case c.Err != nil:
				r.Error = kerrMessage(c.Err)
			case c.At >= 0:
				at := c.At
				r.Committed = &at
			}
		}
	}
	for _, ps := range rows {
		for _, r := range ps {
			end, err := listedOffset(ends, r.Topic, r.Partition)
			switch {
			case err != "":
				if r.Error == "" {
					r.Error = err
				}
			default:
				r.LogEndOffset = &end
			}
			if r.Committed != nil && r.LogEndOffset != nil {
				lag := max(*r.LogEndOffset-*r.Committed, 0)
				r.Lag = &lag
				total += lag
			}
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, total
}

// listedOffset looks up a partition's listed offset, or says why there is none.
func listedOffset(l kadm.ListedOffsets, t string, p int32) (int64, string) {
	if o, ok := l.Lookup(t, p); ok {
		if o.Err != nil {
			return 0, kerrMessage(o.Err)
		}
		return o.Offset, ""
	}
	// A topic that does not exist is listed as partition -1 with its error.
	if o, ok := l.Lookup(t, -1); ok && o.Err != nil {
		return 0, kerrMessage(o.Err)
	}
	return 0, "not listed by the broker"
}

// printGroupView prints one group as describe's text: a summary, the members, the offsets.
func printGroupView(cmd *cobra.Command, v *groupView) {
	out := cmd.OutOrStdout()
	tw := table(cmd)
	fmt.Fprintf(tw, "GROUP\t%s\n", v.Group)
	fmt.Fprintf(tw, "STATE\t%s\n", orDash(v.State))
	fmt.Fprintf(tw, "PROTOCOL-TYPE\t%s\n", orDash(v.ProtocolType))
	fmt.Fprintf(tw, "PROTOCOL\t%s\n", orDash(v.Protocol))
	fmt.Fprintf(tw, "COORDINATOR\t%d\n", v.Coordinator)
	fmt.Fprintf(tw, "MEMBERS\t%d\n", len(v.Members))
	fmt.Fprintf(tw, "TOTAL-LAG\t%d\n", v.TotalLag)
	tw.Flush()

	fmt.Fprintln(out, "\nMEMBERS")
	tw = table(cmd)
	if len(v.Members) == 0 {
		fmt.Fprintln(tw, "(none)")
	} else {
		fmt.Fprintln(tw, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range v.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, inst, orDash(m.ClientID), orDash(m.ClientHost), assignmentString(m.Assignment))
		}
	}
	tw.Flush()

	fmt.Fprintln(out, "\nOFFSETS")
	tw = table(cmd)
	if len(v.Offsets) == 0 {
		fmt.Fprintln(tw, "(none)")
	} else {
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID")
		for _, o := range v.Offsets {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s", o.Topic, o.Partition, optInt(o.Committed), optInt(o.LogEndOffset), optInt(o.Lag), optStr(o.MemberID))
			if o.Error != "" {
				fmt.Fprintf(tw, "\t%s", o.Error)
			}
			fmt.Fprintln(tw)
		}
	}
	tw.Flush()
}

// assignmentString prints an assignment as "orders[0,1] parties[2]", or "-".
func assignmentString(a []topicPartsView) string {
	if len(a) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, t := range a {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.Topic)
		b.WriteString(ids(t.Partitions))
	}
	return b.String()
}

func optInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func optStr(p *string) string {
	if p == nil {
		return "-"
	}
	return orDash(*p)
}
