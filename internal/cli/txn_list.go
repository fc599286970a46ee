package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newTxnListCommand(g *globals) *cobra.Command {
	var (
		states []string
		pids   []int64
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids with their state, producer id and coordinator",
		Long: `List the transactional ids known to every transaction coordinator of the cluster
(ListTransactions, Kafka 3.0+), sorted by id, with their state, producer id and the node id
of their coordinator.

--state keeps the ids in the given states (repeatable or comma-separated, any case):
` + strings.Join(txnStates, ", ") + `.
--producer-id keeps the ids currently using one of the given producer ids (repeatable).
The brokers filter.`,
		Example: `  poste txn list
  poste txn list --state ongoing,preparecommit
  poste txn list --producer-id 4000`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := parseTxnStates(states)
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
			listed, err := adm.ListTransactions(ctx, pids, filter)
			if err != nil {
				return g.explainTxn(cmd, err, "list transactions", "")
			}
			tw := table(cmd)
			fmt.Fprintln(tw, "TRANSACTIONAL-ID\tSTATE\tPRODUCER-ID\tCOORDINATOR")
			for _, l := range listed.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", l.TxnID, orDash(l.State), l.ProducerID, l.Coordinator)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringSliceVarP(&states, "state", "s", nil,
		"only transactional ids in these states: "+strings.Join(txnStates, ", "))
	cmd.Flags().Int64SliceVar(&pids, "producer-id", nil, "only transactional ids using these producer ids")
	_ = cmd.RegisterFlagCompletionFunc("state", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return txnStates, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}
