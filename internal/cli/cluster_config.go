package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newClusterConfigCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Get and set broker configuration",
		Example: `  poste cluster config get
  poste cluster config get log.retention.hours num.partitions --broker 1
  poste cluster config set log.retention.hours=72`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(newClusterConfigGetCommand(g), newClusterConfigSetCommand(g))
	return cmd
}

func newClusterConfigGetCommand(g *globals) *cobra.Command {
	var broker int32
	cmd := &cobra.Command{
		Use:   "get [KEY...]",
		Short: "Show broker configs with their values and sources",
		Long: `Show a broker's configs (all, or the KEYs named) with their values and where each
comes from (DEFAULT_CONFIG, STATIC_BROKER_CONFIG, DYNAMIC_BROKER_CONFIG,
DYNAMIC_DEFAULT_BROKER_CONFIG). Without --broker the broker with the lowest id answers.
A KEY the broker does not know is an error.`,
		Example: `  poste cluster config get
  poste cluster config get log.retention.hours --broker 2`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, keys []string) error {
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			if !cmd.Flags().Changed("broker") {
				brokers, err := adm.ListBrokers(ctx)
				if err != nil {
					return g.explain(cmd, err, "list brokers", "")
				}
				ids := brokers.NodeIDs()
				if len(ids) == 0 {
					return fmt.Errorf("list brokers: the cluster reports no broker")
				}
				broker = ids[0]
			}
			rcs, err := adm.DescribeBrokerConfigs(ctx, broker)
			if err != nil {
				return g.explain(cmd, err, fmt.Sprintf("describe configs of broker %d", broker), "")
			}
			rc, err := rcs.On(strconv.Itoa(int(broker)), nil)
			if err != nil {
				return fmt.Errorf("describe configs of broker %d: not in the broker's answer", broker)
			}
			if rc.Err != nil {
				return g.explainResult(cmd, rc.Err, rc.ErrMessage, fmt.Sprintf("describe configs of broker %d", broker), "")
			}
			byKey := make(map[string]kadm.Config, len(rc.Configs))
			for _, c := range rc.Configs {
				byKey[c.Key] = c
			}
			if len(keys) == 0 {
				for k := range byKey {
					keys = append(keys, k)
				}
				sort.Strings(keys)
			}
			tw := table(cmd)
			fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
			var missing []string
			for _, k := range keys {
				c, ok := byKey[k]
				if !ok {
					missing = append(missing, k)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Key, configValue(c), c.Source)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(missing) > 0 {
				return fmt.Errorf("broker %d has no config named %s", broker, quoteAll(missing))
			}
			return nil
		},
	}
	cmd.Flags().Int32Var(&broker, "broker", 0, "node id of the broker to ask (default: the lowest id)")
	return cmd
}

func newClusterConfigSetCommand(g *globals) *cobra.Command {
	var broker int32
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE...",
		Short: "Set broker configs dynamically",
		Long: `Set broker configs with IncrementalAlterConfigs, cluster-wide by default (the
dynamic default every broker inherits) or for one broker with --broker. The broker must
support IncrementalAlterConfigs (Kafka 2.3 or later).`,
		Example: `  poste cluster config set log.retention.hours=72
  poste cluster config set log.cleaner.threads=2 --broker 1`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, kvs []string) error {
			var alters []kadm.AlterConfig
			for _, kv := range kvs {
				k, v, err := splitKV(kv, "config")
				if err != nil {
					return err
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
			}
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			var brokers []int32
			target := "the cluster"
			if cmd.Flags().Changed("broker") {
				brokers = []int32{broker}
				target = fmt.Sprintf("broker %d", broker)
			}
			resps, err := adm.AlterBrokerConfigs(ctx, alters, brokers...)
			if err != nil {
				return g.explain(cmd, err, "set configs of "+target, "")
			}
			for _, r := range resps {
				if r.Err != nil {
					return g.explainResult(cmd, r.Err, r.ErrMessage, "set configs of "+target, "")
				}
			}
			if len(resps) == 0 {
				return fmt.Errorf("set configs of %s: no answer from the broker", target)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "updated %d config(s) of %s\n", len(alters), target)
			return nil
		},
	}
	cmd.Flags().Int32Var(&broker, "broker", 0, "node id of the broker to change (default: cluster-wide)")
	return cmd
}

// quoteAll prints names as "a", "b".
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
