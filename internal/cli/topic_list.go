package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTopicListCommand(g *globals) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics with their partition and replica counts",
		Example: `  poste topic list
  poste topic list --internal`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			topics, err := list(ctx)
			if err != nil {
				return g.explain(cmd, err, "list topics", "")
			}
			tw := table(cmd)
			fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICAS")
			for _, t := range topics.Sorted() {
				if t.Err != nil {
					fmt.Fprintf(tw, "%s\t-\t-\t%s\n", t.Topic, kerrMessage(t.Err))
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Topic, len(t.Partitions), t.Partitions.NumReplicas())
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics (__consumer_offsets, …)")
	return cmd
}
