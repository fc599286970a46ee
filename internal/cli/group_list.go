package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newGroupListCommand(g *globals) *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state, protocol type and coordinator",
		Long: `List the consumer groups of the cluster, sorted by name, with their state, protocol
type ("consumer" for consumers, "connect" for Connect workers, empty for a group that only
commits offsets) and the id of their coordinator.

--state keeps only the groups in the given states (repeatable or comma-separated, any
case): PreparingRebalance, CompletingRebalance, Stable, Empty, Dead. The broker filters
(ListGroups v4+); a broker too old to report states is an error with --state.`,
		Example: `  poste group list
  poste group list --state Empty
  poste group list --state stable,preparingrebalance`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := parseStates(states)
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
			listed, err := adm.ListGroups(ctx, filter...)
			if err != nil {
				return g.explainGroup(cmd, err, "list groups", "")
			}
			tw := table(cmd)
			fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
			for _, l := range listed.Sorted() {
				if len(filter) > 0 {
					// A broker before ListGroups v4 ignores the filter and reports no
					// state: filtering here would silently list nothing.
					if l.State == "" {
						return fmt.Errorf("list groups --state: %w (it does not report group states)", ErrUnsupported)
					}
					if !containsFold(filter, l.State) {
						continue
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", l.Group, orDash(l.State), orDash(l.ProtocolType), l.Coordinator)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringSliceVarP(&states, "state", "s", nil,
		"only groups in these states: "+strings.Join(groupStates, ", "))
	_ = cmd.RegisterFlagCompletionFunc("state", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return groupStates, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// parseStates validates --state values and returns them spelt as Kafka does.
func parseStates(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		i := indexFold(groupStates, s)
		if i < 0 {
			return nil, usagef("--state %q: want one of %s", s, strings.Join(groupStates, ", "))
		}
		if !containsFold(out, s) {
			out = append(out, groupStates[i])
		}
	}
	return out, nil
}

// indexFold returns the index of s in list ignoring case, or -1.
func indexFold(list []string, s string) int {
	for i, v := range list {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}

func containsFold(list []string, s string) bool { return indexFold(list, s) >= 0 }

// orDash prints an empty string as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
