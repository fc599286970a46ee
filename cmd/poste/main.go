// Command poste is the Poste broker (`poste serve`) and its client tools.
package main

import (
	"context"
	"os"

	"github.com/poste-io/poste/internal/broker"
	"github.com/poste-io/poste/internal/cli"
)

func main() {
	root := cli.NewRoot()
	root.AddCommand(broker.ServeCommand())
	os.Exit(cli.Execute(context.Background(), root))
}
