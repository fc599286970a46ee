// Command poste is the Poste broker (`poste serve`), a local development cluster
// (`poste dev cluster`) and the client tools.
package main

import (
	"context"
	"os"

	"github.com/poste-io/poste/internal/broker"
	"github.com/poste-io/poste/internal/cli"
)

func main() {
	root := cli.NewRoot()
	root.AddCommand(broker.ServeCommand(), broker.DevCommand())
	os.Exit(cli.Execute(context.Background(), root))
}
