package cli

import (
	"github.com/spf13/cobra"
)

func newTopicAddPartitionsCommand(g *globals) *cobra.Command {
	var add int
	cmd := &cobra.Command{
		Use:   "add-partitions TOPIC... -n COUNT",
		Short: "Add partitions to topics",
		Long: `Add COUNT partitions to each topic. Partitions can only be added, never removed;
keyed records may map to different partitions afterwards.`,
		Example:           `  poste topic add-partitions parties -n 2`,
		Args:              minArgs(1),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, topics []string) error {
			if add <= 0 {
				return usagef("--num must be at least 1")
			}
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			resps, err := adm.CreatePartitions(ctx, add, topics...)
			if err != nil {
				return g.explain(cmd, err, "add partitions", "")
			}
			return g.printTopicResults(cmd, "add partitions to", topics, func(t string) topicResult {
				r, ok := resps[t]
				return topicResult{found: ok, err: r.Err, msg: r.ErrMessage}
			})
		},
	}
	cmd.Flags().IntVarP(&add, "num", "n", 0, "number of partitions to add to each topic")
	return cmd
}
