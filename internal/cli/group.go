package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrUnknownGroup: a consumer group named on the command line does not exist (the
// coordinator describes it as Dead, or answers GROUP_ID_NOT_FOUND).
var ErrUnknownGroup = errors.New("unknown consumer group")

// groupStates are the classic group states, as Kafka spells them in ListGroups and
// DescribeGroups.
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Empty", "Dead"}

func newGroupCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups"},
		Short:   "List, describe, delete consumer groups and reset their offsets",
		Example: `  poste group list
  poste group describe billing
  poste group seek billing --to-earliest --topic orders
  poste group seek billing --to-earliest --topic orders --execute
  poste group delete billing`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(
		newGroupListCommand(g),
		newGroupDescribeCommand(g),
		newGroupDeleteCommand(g),
		newGroupSeekCommand(g),
	)
	return cmd
}

// completeGroups completes consumer group names from the cluster.
func (g *globals) completeGroups(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	return g.complete(cmd, prefix, func(ctx context.Context, adm *kadm.Client) ([]string, error) {
		groups, err := adm.ListGroups(ctx)
		return groups.Groups(), err
	})
}

// explainGroup explains an error about one group: a group the coordinator does not know
// becomes ErrUnknownGroup, the rest as explain does.
func (g *globals) explainGroup(cmd *cobra.Command, err error, what, group string) error {
	if errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("%w %q", ErrUnknownGroup, group)
	}
	if old, _ := tooOld(err); old {
		return fmt.Errorf("%s: %w: the broker does not serve consumer groups", what, ErrUnsupported)
	}
	return g.explain(cmd, err, what, "")
}

// describeGroup describes one group and fails if it cannot be described. A group the
// coordinator does not know is described as Dead with no members; it is returned as such,
// so the caller decides whether that is an error.
func (g *globals) describeGroup(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, group string) (kadm.DescribedGroup, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return kadm.DescribedGroup{}, g.explainGroup(cmd, err, "describe group "+group, group)
	}
	d, ok := ds[group]
	if !ok {
		return kadm.DescribedGroup{}, fmt.Errorf("describe group %s: no answer from the broker", group)
	}
	if d.Err != nil {
		return d, g.explainGroup(cmd, withMessage(d.Err, d.ErrMessage), "describe group "+group, group)
	}
	return d, nil
}

// withMessage appends a broker's extra error message to err, keeping err's identity.
func withMessage(err error, msg string) error {
	if msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// isActive reports whether a described group has members, which forbids resetting its
// offsets and deleting it.
func isActive(d kadm.DescribedGroup) bool {
	return len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead" && d.State != "")
}
