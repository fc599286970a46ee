package cli

import (
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicCreateCommand(g *globals) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
		dryRun     bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Long: `Create one or more topics. Without -p or -r the broker's defaults apply
(num.partitions, default.replication.factor).`,
		Example: `  poste topic create parties -p 11
  poste topic create events -p 6 -r 3 -c cleanup.policy=compact -c retention.ms=-1
  poste topic create a b c --dry-run`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			if partitions == 0 || partitions < -1 {
				return usagef("--partitions must be positive (or -1 for the broker default)")
			}
			if replicas == 0 || replicas < -1 {
				return usagef("--replicas must be positive (or -1 for the broker default)")
			}
			cfg := make(map[string]*string, len(configs))
			for _, c := range configs {
				k, v, err := splitKV(c, "--config")
				if err != nil {
					return err
				}
				cfg[k] = kadm.StringPtr(v)
			}
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			create := adm.CreateTopics
			if dryRun {
				create = adm.ValidateCreateTopics
			}
			resps, err := create(ctx, partitions, replicas, cfg, topics...)
			if err != nil {
				return g.explain(cmd, err, "create topics", "")
			}
			return g.printTopicResults(cmd, "create topic", topics, func(t string) topicResult {
				r, ok := resps[t]
				return topicResult{found: ok, err: r.Err, msg: r.ErrMessage}
			})
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (-1: broker default)")
	f.Int16VarP(&replicas, "replicas", "r", -1, "replication factor (-1: broker default)")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config KEY=VALUE (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "validate only: ask the broker whether it would create the topics")
	return cmd
}
