package cli

import (
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicAlterConfigCommand(g *globals) *cobra.Command {
	var (
		set, del, appendKV, subtract []string
		dryRun                       bool
	)
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC... [--set K=V] [--delete K] [--append K=V] [--subtract K=V]",
		Short: "Change topic configs incrementally",
		Long: `Change topic configs with IncrementalAlterConfigs: --set a value, --delete an
override (the default applies again), --append to or --subtract from a list-valued
config. Keys not named keep their values. The broker must support
IncrementalAlterConfigs (Kafka 2.3 or later).`,
		Example: `  poste topic alter-config parties --set retention.ms=86400000 --delete segment.bytes
  poste topic alter-config events --append cleanup.policy=compact
  poste topic alter-config parties --set min.insync.replicas=2 --dry-run`,
		Args:              minArgs(1),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, topics []string) error {
			alters, err := buildAlters(set, del, appendKV, subtract)
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
			alter := adm.AlterTopicConfigs
			if dryRun {
				alter = adm.ValidateAlterTopicConfigs
			}
			resps, err := alter(ctx, alters, topics...)
			if err != nil {
				return g.explain(cmd, err, "alter topic configs", "")
			}
			return g.printTopicResults(cmd, "alter configs of", topics, func(t string) topicResult {
				r, err := resps.On(t, nil)
				return topicResult{found: err == nil, err: r.Err, msg: r.ErrMessage}
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&set, "set", nil, "set KEY=VALUE (repeatable)")
	f.StringArrayVar(&del, "delete", nil, "delete the override of KEY (repeatable)")
	f.StringArrayVar(&appendKV, "append", nil, "append VALUE to the list config KEY, as KEY=VALUE (repeatable)")
	f.StringArrayVar(&subtract, "subtract", nil, "remove VALUE from the list config KEY, as KEY=VALUE (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "validate only: ask the broker whether it would apply the change")
	return cmd
}

// buildAlters turns the alter flags into incremental operations; at least one is needed.
func buildAlters(set, del, appendKV, subtract []string) ([]kadm.AlterConfig, error) {
	var out []kadm.AlterConfig
	for _, op := range []struct {
		flag string
		kvs  []string
		op   kadm.IncrementalOp
	}{
		{"--set", set, kadm.SetConfig},
		{"--append", appendKV, kadm.AppendConfig},
		{"--subtract", subtract, kadm.SubtractConfig},
	} {
		for _, kv := range op.kvs {
			k, v, err := splitKV(kv, op.flag)
			if err != nil {
				return nil, err
			}
			out = append(out, kadm.AlterConfig{Op: op.op, Name: k, Value: kadm.StringPtr(v)})
		}
	}
	for _, k := range del {
		if k == "" {
			return nil, usagef("--delete needs a config key")
		}
		out = append(out, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	if len(out) == 0 {
		return nil, usagef("nothing to change: give --set, --delete, --append or --subtract")
	}
	return out, nil
}
