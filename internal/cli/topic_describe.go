package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newTopicDescribeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show a topic's partitions, leaders, replicas, ISR, offsets and configs",
		Long: `Show, for each topic: its summary; its configuration with where each value comes
from (DEFAULT_CONFIG, STATIC_BROKER_CONFIG, DYNAMIC_TOPIC_CONFIG, …); and per partition the
leader, leader epoch, replicas, in-sync replicas, log start offset and high watermark.`,
		Example:           `  poste topic describe parties`,
		Aliases:           []string{"info"},
		Args:              minArgs(1),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			md, err := adm.ListTopics(ctx, topics...)
			if err != nil {
				return g.explain(cmd, err, "describe topics", "")
			}
			for _, t := range topics {
				if !md.Has(t) {
					return g.explain(cmd, errOrUnknown(md[t].Err), "describe topic", t)
				}
				if err := md[t].Err; err != nil {
					return g.explain(cmd, err, "describe topic "+t, t)
				}
			}
			configs, err := adm.DescribeTopicConfigs(ctx, topics...)
			if err != nil {
				return g.explain(cmd, err, "describe topic configs", "")
			}
			starts, err := adm.ListStartOffsets(ctx, topics...)
			if err != nil {
				return g.explain(cmd, err, "list start offsets", "")
			}
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				return g.explain(cmd, err, "list end offsets", "")
			}
			out := cmd.OutOrStdout()
			for i, t := range topics {
				if i > 0 {
					fmt.Fprintln(out)
				}
				d := md[t]
				tw := table(cmd)
				fmt.Fprintf(tw, "NAME\t%s\n", t)
				fmt.Fprintf(tw, "ID\t%s\n", d.ID)
				fmt.Fprintf(tw, "INTERNAL\t%t\n", d.IsInternal)
				fmt.Fprintf(tw, "PARTITIONS\t%d\n", len(d.Partitions))
				fmt.Fprintf(tw, "REPLICAS\t%d\n", d.Partitions.NumReplicas())
				tw.Flush()

				fmt.Fprintln(out, "\nCONFIGS")
				rc, err := configs.On(t, nil)
				tw = table(cmd)
				switch {
				case err != nil:
					fmt.Fprintf(tw, "-\tnot in the broker's answer\n")
				case rc.Err != nil:
					fmt.Fprintf(tw, "-\t%s\n", resultError(rc.Err, rc.ErrMessage))
				default:
					fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
					sort.Slice(rc.Configs, func(i, j int) bool { return rc.Configs[i].Key < rc.Configs[j].Key })
					for _, c := range rc.Configs {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Key, configValue(c), c.Source)
					}
				}
				tw.Flush()

				fmt.Fprintln(out, "\nPARTITIONS")
				tw = table(cmd)
				fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START-OFFSET\tHIGH-WATERMARK")
				for _, p := range d.Partitions.Sorted() {
					if p.Err != nil {
						fmt.Fprintf(tw, "%d\t-\t-\t%s\t%s\t-\t-\t%s\n", p.Partition, ids(p.Replicas), ids(p.ISR), kerrMessage(p.Err))
						continue
					}
					fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch,
						ids(p.Replicas), ids(p.ISR), listed(starts, t, p.Partition), listed(ends, t, p.Partition))
				}
				tw.Flush()
			}
			return nil
		},
	}
	return cmd
}

// errOrUnknown is err, or UNKNOWN_TOPIC_OR_PARTITION when the answer left the topic out.
func errOrUnknown(err error) error {
	if err == nil {
		return kerr.UnknownTopicOrPartition
	}
	return err
}

// configValue prints a config's value, hiding sensitive ones and marking unset ones.
func configValue(c kadm.Config) string {
	switch {
	case c.Sensitive:
		return "(sensitive)"
	case c.Value == nil:
		return "(null)"
	}
	return *c.Value
}

// ids prints broker ids as [1,2,3].
func ids(is []int32) string {
	s := make([]string, len(is))
	for i, id := range is {
		s[i] = fmt.Sprint(id)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// listed prints a listed offset, or "-" with the reason when the broker had none.
func listed(l kadm.ListedOffsets, topic string, p int32) string {
	o, ok := l.Lookup(topic, p)
	switch {
	case !ok:
		return "-"
	case o.Err != nil:
		return "- (" + kerrMessage(o.Err) + ")"
	}
	return fmt.Sprint(o.Offset)
}
