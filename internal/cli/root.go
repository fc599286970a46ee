// Package cli holds poste's client subcommands, one file per subcommand. It is client-side
// code on franz-go and imports no broker package, so every command works against Apache Kafka
// as well.
package cli

import (
	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/poste-io/poste/internal/cli.Version=…".
var Version = "dev"

// NewRoot returns the root command with every client subcommand.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "poste",
		Short:         "Poste: a durable, Kafka-compatible streaming platform in one binary",
		SilenceUsage:  true,
		SilenceErrors: false,
		Version:       Version,
	}
	return root
}
