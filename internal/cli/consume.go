package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeFlags are the flags of `poste consume`.
type consumeFlags struct {
	fromBeginning bool
	fromEnd       bool
	offset        int64
	timestamp     string
	n             int
	group         string
	isolation     string
	format        string
	json          bool
	quiet         bool
}

func newConsumeCommand(g *globals) *cobra.Command {
	var cf consumeFlags
	cmd := &cobra.Command{
		Use:   "consume TOPIC...",
		Short: "Print records from topics, following new ones",
		Long: `Print the records of the topics to stdout, then keep waiting for new ones until
interrupted (Ctrl-C or SIGTERM) or until -n records have been printed. On exit a summary
of the records consumed per partition goes to stderr (unless -q).

Where to start (one of; default --from-end):
  --from-beginning   the oldest record of every partition
  --offset N         offset N of every partition (clamped to the log); a negative N
                     starts N records before the end
  --timestamp T      the first record at or after T (Unix milliseconds or RFC3339)
  --from-end         only records produced from now on

With --group the consumer joins the consumer group, resumes from the group's committed
offsets (the flags above apply only to partitions without one) and commits what it
printed.

--format is a template: %t topic, %p partition, %o offset, %k key, %v value,
%T timestamp (Unix ms), %h headers (k=v,k2=v2), %% percent; \n \t \r \\ escapes.
--json prints one JSON object per line: topic, partition, offset, timestamp, key,
value, headers ([{"key","value"}]); bytes that are not UTF-8 are base64 and marked with
key_encoding / value_encoding.`,
		Example: `  poste consume parties --from-beginning
  poste consume parties --from-beginning -n 10 --format '%p@%o %k=%v\n'
  poste consume parties --offset -5 --json
  poste consume parties --timestamp 2024-06-01T00:00:00Z
  poste consume parties orders --group billing --isolation read_committed`,
		Args:              minArgs(1),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, topics []string) error {
			return runConsume(cmd, g, &cf, topics)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cf.fromBeginning, "from-beginning", false, "start at the oldest record")
	f.BoolVar(&cf.fromEnd, "from-end", false, "start after the newest record (the default)")
	f.Int64Var(&cf.offset, "offset", 0, "start at this offset (negative: this many records before the end)")
	f.StringVar(&cf.timestamp, "timestamp", "", "start at the first record at or after this time (Unix ms or RFC3339)")
	f.IntVarP(&cf.n, "num", "n", 0, "stop after this many records (0: never)")
	f.StringVarP(&cf.group, "group", "g", "", "consume as a member of this consumer group, committing offsets")
	f.StringVar(&cf.isolation, "isolation", "read_uncommitted", "read_uncommitted or read_committed")
	f.StringVar(&cf.format, "format", `%v\n`, "output template (see above)")
	f.BoolVar(&cf.json, "json", false, "print each record as one line of JSON")
	f.BoolVarP(&cf.quiet, "quiet", "q", false, "print no summary on exit")
	return cmd
}

// parseTimestamp accepts Unix milliseconds or RFC3339.
func parseTimestamp(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, usagef("--timestamp %q: want Unix milliseconds or RFC3339 (2006-01-02T15:04:05Z)", s)
	}
	return t.UnixMilli(), nil
}

// consumerOpts turns the consume flags into kgo options, rejecting invalid values.
func (cf *consumeFlags) consumerOpts(cmd *cobra.Command, topics []string) ([]kgo.Opt, error) {
	if cf.n < 0 {
		return nil, usagef("--num must not be negative")
	}
	if err := exclusive(cmd, "from-beginning", "from-end", "offset", "timestamp"); err != nil {
		return nil, err
	}
	if err := exclusive(cmd, "format", "json"); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(topics...)}
	// The start offset and the reset offset (where an out-of-range start lands) are the
	// same: an exact offset is then clamped into the log instead of jumping to its start.
	var start kgo.Offset
	switch {
	case cf.fromBeginning:
		start = kgo.NewOffset().AtStart()
	case cmd.Flags().Changed("offset") && cf.offset >= 0:
		start = kgo.NewOffset().At(cf.offset)
	case cmd.Flags().Changed("offset"):
		start = kgo.NewOffset().AtEnd().Relative(cf.offset)
	case cf.timestamp != "":
		ms, err := parseTimestamp(cf.timestamp)
		if err != nil {
			return nil, err
		}
		start = kgo.NewOffset().AfterMilli(ms)
	default:
		start = kgo.NewOffset().AtEnd()
	}
	opts = append(opts, kgo.ConsumeStartOffset(start))
	if cf.timestamp == "" {
		opts = append(opts, kgo.ConsumeResetOffset(start))
	}
	switch cf.isolation {
	case "read_uncommitted":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	case "read_committed":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	default:
		return nil, usagef("--isolation %q: want read_uncommitted or read_committed", cf.isolation)
	}
	if cf.group != "" {
		// Commit only what was printed: records polled beyond -n are not marked.
		opts = append(opts, kgo.ConsumerGroup(cf.group), kgo.AutoCommitMarks())
	}
	return opts, nil
}

// consumeStats counts printed records per partition; only the consuming goroutine uses it.
type consumeStats struct {
	total int
	per   map[string]map[int32]int
}

func (s *consumeStats) add(r *kgo.Record) {
	if s.per == nil {
		s.per = make(map[string]map[int32]int)
	}
	if s.per[r.Topic] == nil {
		s.per[r.Topic] = make(map[int32]int)
	}
	s.per[r.Topic][r.Partition]++
	s.total++
}

// print writes "consumed N records" and one line per topic partition, sorted.
func (s *consumeStats) print(cmd *cobra.Command) {
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "consumed %d record(s)\n", s.total)
	topics := make([]string, 0, len(s.per))
	for t := range s.per {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		parts := make([]int32, 0, len(s.per[t]))
		for p := range s.per[t] {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			fmt.Fprintf(w, "  %s[%d]: %d\n", t, p, s.per[t][p])
		}
	}
}

func runConsume(cmd *cobra.Command, g *globals, cf *consumeFlags, topics []string) error {
	opts, err := cf.consumerOpts(cmd, topics)
	if err != nil {
		return err
	}
	var format *recordFormat
	if !cf.json {
		if format, err = parseFormat(cf.format); err != nil {
			return err
		}
	}
	cl, err := g.newClient(cmd, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := g.checkTopics(cmd, cl, topics); err != nil {
		return err
	}

	// Interrupts end the command cleanly, with a summary and exit code 0.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var stats consumeStats
	defer func() {
		if !cf.quiet {
			stats.print(cmd)
		}
	}()
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	var buf []byte
	err = func() error {
		for cf.n == 0 || stats.total < cf.n {
			max := -1
			if cf.n > 0 {
				max = cf.n - stats.total
			}
			fetches := cl.PollRecords(ctx, max)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return nil
			}
			for _, fe := range fetches.Errors() {
				if err := g.fetchError(cmd, cf, fe); err != nil {
					return err
				}
			}
			var werr error
			fetches.EachRecord(func(r *kgo.Record) {
				if werr != nil || (cf.n > 0 && stats.total >= cf.n) {
					return
				}
				buf = buf[:0]
				if cf.json {
					buf, werr = appendJSON(buf, r)
				} else {
					buf = format.append(buf, r)
				}
				if werr == nil {
					_, werr = out.Write(buf)
				}
				if werr == nil {
					stats.add(r)
					if cf.group != "" {
						cl.MarkCommitRecords(r)
					}
				}
			})
			if werr == nil {
				werr = out.Flush()
			}
			if werr != nil {
				return fmt.Errorf("write output: %w", werr)
			}
		}
		return nil
	}()
	if cf.group != "" {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), g.timeout)
		defer cancel()
		if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
			err = g.explain(cmd, cerr, "commit offsets for group "+cf.group, "")
		}
	}
	return err
}

// fetchError decides whether an error delivered with fetched records ends the command
// (it returns it, explained) or is only reported on stderr while the client retries.
func (g *globals) fetchError(cmd *cobra.Command, cf *consumeFlags, fe kgo.FetchError) error {
	if errors.Is(fe.Err, context.Canceled) {
		return nil
	}
	what := "consume"
	if fe.Topic != "" {
		what = fmt.Sprintf("consume %s[%d]", fe.Topic, fe.Partition)
	}
	if cf.group != "" && fe.Topic == "" {
		what = "join consumer group " + cf.group
	}
	err := g.explain(cmd, fe.Err, what, fe.Topic)
	if old, _ := tooOld(fe.Err); old && cf.group != "" && fe.Topic == "" {
		err = fmt.Errorf("%s: %w: the broker does not serve consumer groups (FindCoordinator, JoinGroup, …)", what, ErrUnsupported)
	}
	var dataLoss *kgo.ErrDataLoss
	switch {
	case errors.Is(err, ErrUnknownTopic), errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrUnsupported):
		return err
	case errors.As(fe.Err, &dataLoss):
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", fe.Err)
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v (retrying)\n", err)
	return nil
}

// checkTopics fails with ErrUnknownTopic if a topic does not exist: a consumer would
// otherwise wait for it silently.
func (g *globals) checkTopics(cmd *cobra.Command, cl *kgo.Client, topics []string) error {
	ctx, cancel := g.ctx(cmd)
	defer cancel()
	md, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return g.explain(cmd, err, "look up topics", "")
	}
	for _, t := range topics {
		if !md.Has(t) {
			return g.explain(cmd, errOrUnknown(md[t].Err), "look up topic", t)
		}
		if err := md[t].Err; err != nil {
			return g.explain(cmd, err, "look up topic "+t, t)
		}
	}
	return nil
}
