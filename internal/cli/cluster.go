package cli

import (
	"github.com/spf13/cobra"
)

func newClusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect the cluster and its broker configuration",
		Example: `  poste cluster info
  poste cluster config get log.retention.hours
  poste cluster config set log.retention.hours=72`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(newClusterInfoCommand(g), newClusterConfigCommand(g))
	return cmd
}
