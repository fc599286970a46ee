package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// envBrokers is read when --brokers is not given.
const envBrokers = "POSTE_BROKERS"

// globals holds the persistent flags shared by every client command, and builds clients
// from them. One value belongs to one command tree; cobra fills it while parsing, then a
// single command's RunE reads it, so it needs no lock.
//
// Connection security (TLS, SASL) goes here when it comes: clientOpts is the one place
// that turns flags into kgo options.
type globals struct {
	brokers string        // comma-separated seed brokers
	timeout time.Duration // bound on each admin request, and on the first connection
}

func (g *globals) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVarP(&g.brokers, "brokers", "b", "localhost:9092",
		"comma-separated seed brokers, host:port (env "+envBrokers+")")
	f.DurationVar(&g.timeout, "timeout", 15*time.Second,
		"how long to wait for a broker to answer an admin request or the first connection")
}

// seeds returns the seed brokers: --brokers if given, else $POSTE_BROKERS, else the default.
func (g *globals) seeds(cmd *cobra.Command) []string {
	list := g.brokers
	if f := cmd.Flags().Lookup("brokers"); f != nil && !f.Changed {
		if env := strings.TrimSpace(os.Getenv(envBrokers)); env != "" {
			list = env
		}
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// clientOpts builds the kgo options every client of this command uses, from the global flags.
func (g *globals) clientOpts(cmd *cobra.Command) ([]kgo.Opt, error) {
	seeds := g.seeds(cmd)
	if len(seeds) == 0 {
		return nil, usagef("--brokers is empty")
	}
	if g.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("poste-cli"),
		kgo.DialTimeout(min(g.timeout, 10*time.Second)),
	}, nil
}

// newClient returns a connected client: it pings a broker first so that an unreachable
// cluster is reported at once, by address, rather than as a timeout later.
func (g *globals) newClient(cmd *cobra.Command, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := g.clientOpts(cmd)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, usageError(err) // kgo rejects only invalid option combinations
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, unreachable(g.seeds(cmd), err)
	}
	return cl, nil
}

// newAdmin returns a connected admin client whose requests carry --timeout.
func (g *globals) newAdmin(cmd *cobra.Command) (*kadm.Client, error) {
	cl, err := g.newClient(cmd)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(min(g.timeout, time.Hour).Milliseconds()))
	return adm, nil
}

// explain is the package-level explain with this command's seed brokers.
func (g *globals) explain(cmd *cobra.Command, err error, what, topic string) error {
	return explain(err, what, topic, g.seeds(cmd))
}

// explainResult explains a per-resource error from a response, keeping the broker's
// extra message.
func (g *globals) explainResult(cmd *cobra.Command, err error, msg, what, topic string) error {
	e := g.explain(cmd, err, what, topic)
	if msg != "" && !strings.Contains(e.Error(), msg) {
		return fmt.Errorf("%w (%s)", e, msg)
	}
	return e
}

// ctx returns a context bounded by --timeout, for one admin exchange.
func (g *globals) ctx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), g.timeout)
}

// completeTopics completes topic names from the cluster.
func (g *globals) completeTopics(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	return g.complete(cmd, prefix, func(ctx context.Context, adm *kadm.Client) ([]string, error) {
		topics, err := adm.ListTopics(ctx)
		return topics.Names(), err
	})
}

// complete offers the names list returns that start with prefix. It stays silent on every
// failure, so a shell never shows an error while completing.
func (g *globals) complete(cmd *cobra.Command, prefix string, list func(context.Context, *kadm.Client) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	opts, err := g.clientOpts(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	names, err := list(ctx, kadm.NewClient(cl))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// table returns a writer that aligns tab-separated columns; Flush it when done.
func table(cmd *cobra.Command) *tabwriter.Writer {
	return tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
}

// splitKV splits "key=value" at the first '='; the key must not be empty.
func splitKV(s, flag string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", usagef("%s %q: want KEY=VALUE", flag, s)
	}
	return k, v, nil
}

// failed reports how many of n items failed, with the first failure's error.
func failed(nFailed, n int, first error) error {
	if nFailed == 0 {
		return nil
	}
	if n == 1 {
		return first
	}
	return fmt.Errorf("%d of %d failed; first: %w", nFailed, n, first)
}

// exclusive fails with a usage error if more than one of the named flags was given.
func exclusive(cmd *cobra.Command, names ...string) error {
	var set []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 1 {
		return usagef("%s are exclusive: give one", strings.Join(set, " and "))
	}
	return nil
}
