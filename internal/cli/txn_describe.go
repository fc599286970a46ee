package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// txnJSON is one transactional id as printed by `txn describe --json`.
type txnJSON struct {
	TransactionalID string          `json:"transactional_id"`
	State           string          `json:"state"`
	Coordinator     int32           `json:"coordinator"`
	ProducerID      int64           `json:"producer_id"`
	ProducerEpoch   int16           `json:"producer_epoch"`
	TimeoutMs       int32           `json:"timeout_ms"`
	StartTimestamp  *int64          `json:"start_timestamp"`
	Partitions      []topicPartsOut `json:"partitions"`
	Error           string          `json:"error,omitempty"`
}

// topicPartsOut is a topic and some of its partitions.
type topicPartsOut struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

func newTxnDescribeCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Describe transactional ids: state, producer id and epoch, open partitions",
		Long: `Describe transactional ids (DescribeTransactions, Kafka 3.0+): their coordinator, state,
producer id and epoch, transaction timeout, when the current transaction started, and the
partitions it has written to (while Ongoing, or those still waiting for their marker
while PrepareCommit / PrepareAbort).

An id the coordinator does not know is an error (exit 1); the other ids are still shown.`,
		Example: `  poste txn describe payments-tx-0
  poste txn describe payments-tx-0 payments-tx-1 --json`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			adm, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			described, err := adm.DescribeTransactions(ctx, ids...)
			if err != nil && len(described) == 0 {
				return g.explainTxn(cmd, err, "describe transactions", "")
			}
			var (
				first   error
				nFailed int
				out     []txnJSON
			)
			for _, id := range ids {
				d, ok := described[id]
				var derr error
				switch {
				case !ok && err != nil:
					derr = g.explainTxn(cmd, err, "describe transaction "+id, id)
				case !ok:
					derr = fmt.Errorf("describe transaction %s: no answer from the broker", id)
				case d.Err != nil:
					derr = g.explainTxn(cmd, d.Err, "describe transaction "+id, id)
				}
				j := describedJSON(id, d)
				if derr != nil {
					nFailed++
					if first == nil {
						first = derr
					}
					j = txnJSON{TransactionalID: id, Error: derr.Error(), Partitions: []topicPartsOut{}}
				}
				out = append(out, j)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				tw := table(cmd)
				fmt.Fprintln(tw, "TRANSACTIONAL-ID\tSTATE\tCOORDINATOR\tPRODUCER-ID\tEPOCH\tTIMEOUT-MS\tSTARTED\tPARTITIONS")
				for _, j := range out {
					if j.Error != "" {
						fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s\n", j.TransactionalID, j.Error)
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", j.TransactionalID, orDash(j.State),
						j.Coordinator, j.ProducerID, j.ProducerEpoch, j.TimeoutMs, startedText(j.StartTimestamp),
						partsText(j.Partitions))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return failed(nFailed, len(ids), first)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array, one object per transactional id")
	return cmd
}

// describedJSON converts a described transaction. A start timestamp of -1 (no transaction
// running) becomes null.
func describedJSON(id string, d kadm.DescribedTransaction) txnJSON {
	j := txnJSON{
		TransactionalID: id,
		State:           d.State,
		Coordinator:     d.Coordinator,
		ProducerID:      d.ProducerID,
		ProducerEpoch:   d.ProducerEpoch,
		TimeoutMs:       d.TimeoutMillis,
		Partitions:      []topicPartsOut{},
	}
	if d.StartTimestamp >= 0 {
		ts := d.StartTimestamp
		j.StartTimestamp = &ts
	}
	for _, t := range d.Topics.Sorted() {
		ps := append([]int32(nil), t.Partitions...)
		sort.Slice(ps, func(a, b int) bool { return ps[a] < ps[b] })
		j.Partitions = append(j.Partitions, topicPartsOut{Topic: t.Topic, Partitions: ps})
	}
	return j
}

// startedText prints a start timestamp in RFC3339 (UTC, milliseconds), or "-".
func startedText(ts *int64) string {
	if ts == nil {
		return "-"
	}
	return time.UnixMilli(*ts).UTC().Format("2006-01-02T15:04:05.000Z")
}

// partsText prints partitions as topic[0,1] topic2[3], or "-" for none.
func partsText(tps []topicPartsOut) string {
	if len(tps) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, tp := range tps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tp.Topic)
		b.WriteByte('[')
		for k, p := range tp.Partitions {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d", p)
		}
		b.WriteByte(']')
	}
	return b.String()
}
