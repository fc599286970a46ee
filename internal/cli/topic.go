package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTopicCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "topic",
		Aliases: []string{"topics"},
		Short:   "Create, list, describe, alter and delete topics",
		Example: `  poste topic create parties -p 11
  poste topic list
  poste topic describe parties
  poste topic alter-config parties --set retention.ms=86400000
  poste topic add-partitions parties -n 1
  poste topic delete parties`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(
		newTopicCreateCommand(g),
		newTopicListCommand(g),
		newTopicDescribeCommand(g),
		newTopicDeleteCommand(g),
		newTopicAlterConfigCommand(g),
		newTopicAddPartitionsCommand(g),
	)
	return cmd
}

// topicResult is one topic's outcome in a create, delete or alter answer; found is false
// when the broker's answer did not mention the topic.
type topicResult struct {
	found bool
	err   error
	msg   string
}

// printTopicResults prints a TOPIC/STATUS table in the order the topics were named and
// returns an error if any failed: the first failure, explained, with a count if several.
func (g *globals) printTopicResults(cmd *cobra.Command, what string, topics []string, get func(string) topicResult) error {
	tw := table(cmd)
	fmt.Fprintln(tw, "TOPIC\tSTATUS")
	var nFailed int
	var first error
	for _, t := range topics {
		r := get(t)
		var err error
		switch {
		case !r.found:
			fmt.Fprintf(tw, "%s\tno answer from the broker\n", t)
			err = fmt.Errorf("%s %q: no answer from the broker", what, t)
		case r.err != nil:
			fmt.Fprintf(tw, "%s\t%s\n", t, resultError(r.err, r.msg))
			err = g.explainResult(cmd, r.err, r.msg, what+" "+t, t)
		default:
			fmt.Fprintf(tw, "%s\tOK\n", t)
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
	return failed(nFailed, len(topics), first)
}
