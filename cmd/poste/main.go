// Command poste is the Poste broker (`poste serve`) and its client tools.
package main

import (
	"os"

	"github.com/poste-io/poste/internal/broker"
	"github.com/poste-io/poste/internal/cli"
)

func main() {
	root := cli.NewRoot()
	root.AddCommand(broker.ServeCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
