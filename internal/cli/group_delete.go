package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroupDeleteCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Long: `Delete consumer groups with their committed offsets. Only a group without active
members can be deleted (the broker answers NON_EMPTY_GROUP otherwise): stop its consumers
first. A group that does not exist is answered GROUP_ID_NOT_FOUND. Every group is tried;
one status line is printed per group and the command exits 1 if any failed.`,
		Example:           `  poste group delete billing old-audit`,
		Args:              minArgs(1),
		ValidArgsFunction: g.completeGroups,
		RunE: func(cmd *cobra.Command, groups []string) error {
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			resps, reqErr := adm.DeleteGroups(ctx, groups...)
			if reqErr != nil && len(resps) == 0 {
				return g.explainGroup(cmd, reqErr, "delete groups", "")
			}
			tw := table(cmd)
			fmt.Fprintln(tw, "GROUP\tSTATUS")
			var nFailed int
			var first error
			for _, name := range groups {
				r, ok := resps[name]
				var err error
				switch {
				case !ok && reqErr != nil:
					// The coordinator of this group could not be asked.
					err = g.explainGroup(cmd, reqErr, "delete group "+name, name)
					fmt.Fprintf(tw, "%s\t%v\n", name, err)
				case !ok:
					fmt.Fprintf(tw, "%s\tno answer from the broker\n", name)
					err = fmt.Errorf("delete group %s: no answer from the broker", name)
				case r.Err != nil:
					fmt.Fprintf(tw, "%s\t%s\n", name, resultError(r.Err, r.ErrMessage))
					err = g.explainGroup(cmd, withMessage(r.Err, r.ErrMessage), "delete group "+name, name)
					if errors.Is(r.Err, kerr.NonEmptyGroup) {
						err = fmt.Errorf("delete group %s: it has active members; stop its consumers first (%s)", name, kerrMessage(r.Err))
					}
				default:
					fmt.Fprintf(tw, "%s\tOK\n", name)
				}
				if err != nil {
					nFailed++
					if first == nil {
						first = err
					}
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return failed(nFailed, len(groups), first)
		},
	}
	return cmd
}
