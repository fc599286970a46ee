// Package cli holds poste's client subcommands, one file per subcommand. It is client-side
// code on franz-go and imports no broker package, so every command works against Apache Kafka
// as well.
//
// Every command writes its results to the command's stdout (cmd.OutOrStdout), diagnostics
// to its stderr, and reads input from its stdin, so a test can run the whole tree in-process.
// Errors are returned, never printed by a command; Execute prints them once and maps them to
// the exit codes documented in docs/cli.md.
package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/poste-io/poste/internal/cli.Version=…".
var Version = "dev"

// Exit codes that scripts can rely on.
const (
	ExitOK            = 0 // the command did what was asked
	ExitError         = 1 // any other failure: the broker refused, a record failed, bad input data
	ExitUsage         = 2 // wrong flags or arguments; nothing was sent to a broker
	ExitUnreachable   = 3 // no broker could be reached
	ExitUnknownTopic  = 4 // a named topic does not exist
	ExitNotAuthorized = 5 // the broker denied the request
)

// NewRoot returns the root command with every client subcommand. Each call builds an
// independent tree (flags are bound to values owned by that tree), so tests may build many.
func NewRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "poste",
		Short: "Poste: a durable, Kafka-compatible streaming platform in one binary",
		Long: `Poste: a durable, Kafka-compatible streaming platform in one binary.

Besides "poste serve" (the broker), every subcommand is a Kafka client and works
against any Kafka-compatible cluster. Exit codes: 0 ok, 1 error, 2 usage,
3 broker unreachable, 4 unknown topic, 5 not authorised.`,
		Example: `  poste topic create parties -p 11
  echo hello | poste produce parties
  poste consume parties --from-beginning -n 1
  POSTE_BROKERS=kafka-1:9092,kafka-2:9092 poste cluster info`,
		SilenceUsage:  true,
		SilenceErrors: false,
		Version:       Version,
		Args:          cobra.ArbitraryArgs,
		RunE:          runGroup,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	g.register(root)
	root.AddCommand(
		newTopicCommand(g),
		newProduceCommand(g),
		newConsumeCommand(g),
		newGroupCommand(g),
		newClusterCommand(g),
		newBenchCommand(g),
		newTxnCommand(g),
	)
	return root
}

// runGroup is the RunE of commands that only group subcommands: with no argument it shows
// help, with one it reports an unknown subcommand as a usage error (cobra would otherwise
// print help and succeed).
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError(errors.New(msg))
}

// Execute runs root with ctx and returns the process exit code. It prints the error, if
// any, once to root's stderr, followed by a pointer to --help for usage errors.
func Execute(ctx context.Context, root *cobra.Command) int {
	root.SilenceErrors = true
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if !errors.Is(err, ErrUsage) && strings.HasPrefix(err.Error(), "unknown command") {
		err = usageError(err) // cobra's own argument checks
	}
	w := root.ErrOrStderr()
	fmt.Fprintf(w, "Error: %v\n", err)
	if errors.Is(err, ErrUsage) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ExitCode(err)
}

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, ErrUnknownTopic):
		return ExitUnknownTopic
	case errors.Is(err, ErrNotAuthorized):
		return ExitNotAuthorized
	default:
		return ExitError
	}
}

// exactArgs, minArgs and noArgs are cobra's argument checks reporting usage errors.
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }
func minArgs(n int) cobra.PositionalArgs   { return usageArgs(cobra.MinimumNArgs(n)) }
func noArgs() cobra.PositionalArgs         { return usageArgs(cobra.NoArgs) }

func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError(err)
		}
		return nil
	}
}
