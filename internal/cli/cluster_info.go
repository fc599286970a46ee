package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newClusterInfoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, the controller and the brokers",
		Long: `Show the cluster id, the controller's node id and every broker with its
advertised host:port and rack; the controller is marked with *.`,
		Example: `  poste cluster info
  poste cluster info -b kafka-1:9092`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return g.explain(cmd, err, "describe the cluster", "")
			}
			tw := table(cmd)
			id := md.Cluster
			if id == "" {
				id = "-"
			}
			fmt.Fprintf(tw, "CLUSTER\t%s\n", id)
			if md.Controller >= 0 {
				fmt.Fprintf(tw, "CONTROLLER\t%d\n", md.Controller)
			} else {
				fmt.Fprintf(tw, "CONTROLLER\t-\n")
			}
			tw.Flush()
			fmt.Fprintln(cmd.OutOrStdout(), "\nBROKERS")
			tw = table(cmd)
			fmt.Fprintln(tw, "ID\tADDRESS\tRACK")
			for _, b := range md.Brokers {
				mark := ""
				if b.NodeID == md.Controller {
					mark = "*"
				}
				rack := "-"
				if b.Rack != nil && *b.Rack != "" {
					rack = *b.Rack
				}
				fmt.Fprintf(tw, "%d%s\t%s:%d\t%s\n", b.NodeID, mark, b.Host, b.Port, rack)
			}
			return tw.Flush()
		},
	}
}
