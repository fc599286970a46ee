package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrUnknownTxn: a transactional id named on the command line is not known to its
// coordinator (TRANSACTIONAL_ID_NOT_FOUND).
var ErrUnknownTxn = errors.New("unknown transactional id")

// txnStates are the transaction states as Kafka spells them in ListTransactions and
// DescribeTransactions.
var txnStates = []string{
	"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
	"Dead", "PrepareEpochFence",
}

func newTxnCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "txn",
		Aliases: []string{"transactions", "transaction"},
		Short:   "List and describe transactional producers",
		Example: `  poste txn list
  poste txn list --state Ongoing
  poste txn describe payments-tx-0`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(newTxnListCommand(g), newTxnDescribeCommand(g))
	return cmd
}

// explainTxn explains an error about one transactional id: an id the coordinator does not
// know becomes ErrUnknownTxn, a broker without the admin APIs ErrUnsupported.
func (g *globals) explainTxn(cmd *cobra.Command, err error, what, id string) error {
	if errors.Is(err, kerr.TransactionalIDNotFound) && id != "" {
		return fmt.Errorf("%w %q", ErrUnknownTxn, id)
	}
	if old, name := tooOld(err); old {
		if name == "" {
			name = "the transaction admin APIs"
		}
		return fmt.Errorf("%s: %w (it does not serve %s)", what, ErrUnsupported, name)
	}
	return g.explain(cmd, err, what, "")
}

// parseTxnStates validates --state values and returns them spelt as Kafka does.
func parseTxnStates(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		i := indexFold(txnStates, s)
		if i < 0 {
			return nil, usagef("--state %q: want one of %s", s, strings.Join(txnStates, ", "))
		}
		if !containsFold(out, s) {
			out = append(out, txnStates[i])
		}
	}
	return out, nil
}
