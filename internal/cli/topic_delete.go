package cli

import (
	"github.com/spf13/cobra"
)

func newTopicDeleteCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "delete TOPIC...",
		Aliases:           []string{"rm"},
		Short:             "Delete topics and all their records",
		Example:           `  poste topic delete parties old-events`,
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
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return g.explain(cmd, err, "delete topics", "")
			}
			return g.printTopicResults(cmd, "delete topic", topics, func(t string) topicResult {
				r, ok := resps[t]
				return topicResult{found: ok, err: r.Err, msg: r.ErrMessage}
			})
		},
	}
	return cmd
}
