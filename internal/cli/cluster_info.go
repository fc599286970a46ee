package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataTopic is the name KRaft gives the metadata log; DescribeQuorum asks for its
// partition 0.
const metadataTopic = "__cluster_metadata"

func newClusterInfoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, the controller, the brokers and the metadata quorum",
		Long: `Show the cluster id, the controller's node id and every broker with its
advertised host:port and rack; the controller is marked with *.

Then the metadata quorum, as the active controller describes it (DescribeQuorum):
the leader's id, its epoch (the Raft term) and the high watermark (the committed
metadata offset), and for each voter and observer its log end offset, its lag
behind the high watermark and how long ago it last reported. A cluster that does
not answer DescribeQuorum (no quorum leader, or no KRaft) shows
"quorum: unavailable" and the reason; the command still succeeds.`,
		Example: `  poste cluster info
  poste cluster info -b kafka-1:9092`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			adm.SetTimeoutMillis(int32(min(g.timeout, time.Hour).Milliseconds()))
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return g.explain(cmd, err, "describe the cluster", "")
			}
			if err := printBrokers(cmd, md); err != nil {
				return err
			}
			qctx, qcancel := g.ctx(cmd)
			defer qcancel()
			q, qerr := describeQuorum(qctx, cl)
			return printQuorum(cmd.OutOrStdout(), q, qerr, time.Now())
		},
	}
}

// printBrokers prints the cluster id, the controller and the broker table.
func printBrokers(cmd *cobra.Command, md kadm.Metadata) error {
	tw := table(cmd)
	id := md.Cluster
	if id == "" {
		id = "-"
	}
	fmt.Fprintf(tw, "CLUSTER\t%s\n", id)
	if md.Controller >= 0 {
		fmt.Fprintf(tw, "CONTROLLER\t%d\n", md.Controller)
	} else {
		fmt.Fprintf(tw, "CONTROLLER\t-\n")
	}
	tw.Flush()
	fmt.Fprintln(cmd.OutOrStdout(), "\nBROKERS")
	tw = table(cmd)
	fmt.Fprintln(tw, "ID\tADDRESS\tRACK")
	for _, b := range md.Brokers {
		mark := ""
		if b.NodeID == md.Controller {
			mark = "*"
		}
		rack := "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		fmt.Fprintf(tw, "%d%s\t%s:%d\t%s\n", b.NodeID, mark, b.Host, b.Port, rack)
	}
	return tw.Flush()
}

// describeQuorum asks the active controller (kgo sends admin requests to the controller
// named by Metadata) for the metadata partition's quorum state.
func describeQuorum(ctx context.Context, cl *kgo.Client) (*kmsg.DescribeQuorumResponseTopicPartition, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rp.Partition = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if t.Topic != metadataTopic || p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			return p, nil
		}
	}
	return nil, errors.New("the response has no " + metadataTopic + " partition 0")
}

// quorumCause says briefly why the quorum could not be described: the Kafka error's name
// for an error in the response, else the short form of the client's failure.
func quorumCause(err error) string {
	if errors.Is(err, kerr.NotLeaderForPartition) {
		// Kafka's current name for code 6; the request reached a broker that is not
		// the quorum leader (the metadata named another controller, or none).
		return "NOT_LEADER_OR_FOLLOWER: the broker asked is not the quorum leader"
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	if old, _ := tooOld(err); old {
		return "the broker does not serve DescribeQuorum"
	}
	return connCause(err)
}

// printQuorum prints the quorum section: leader, epoch and high watermark, then one row per
// voter (role leader or follower) and per observer; or, when describing it failed with
// qerr, that it is unavailable and why.
func printQuorum(w io.Writer, p *kmsg.DescribeQuorumResponseTopicPartition, qerr error, now time.Time) error {
	if qerr != nil {
		_, err := fmt.Fprintf(w, "\nquorum: unavailable (%s)\n", quorumCause(qerr))
		return err
	}
	fmt.Fprintln(w, "\nQUORUM")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "LEADER\t%s\n", nodeOrDash(p.LeaderID))
	fmt.Fprintf(tw, "EPOCH\t%d\n", p.LeaderEpoch)
	fmt.Fprintf(tw, "HIGH-WATERMARK\t%d\n", p.HighWatermark)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tLOG-END-OFFSET\tLAG\tHEARTBEAT-AGE")
	row := func(s kmsg.DescribeQuorumResponseTopicPartitionReplicaState, role string) {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.ReplicaID, role,
			offsetOrDash(s.LogEndOffset), quorumLag(p.HighWatermark, s.LogEndOffset),
			heartbeatAge(now, s.LastFetchTimestamp))
	}
	for _, s := range p.CurrentVoters {
		role := "follower"
		if s.ReplicaID == p.LeaderID {
			role = "leader"
		}
		row(s, role)
	}
	for _, s := range p.Observers {
		row(s, "observer")
	}
	return tw.Flush()
}

func nodeOrDash(id int32) string {
	if id < 0 {
		return "-"
	}
	return fmt.Sprint(id)
}

func offsetOrDash(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}

// quorumLag is how far a replica's log end is behind the high watermark. A replica may
// report more than the leader has committed (entries appended, not yet committed): lag 0.
func quorumLag(hw, leo int64) string {
	if leo < 0 || hw < 0 {
		return "-"
	}
	return fmt.Sprint(max(0, hw-leo))
}

// heartbeatAge is how long ago a replica last fetched or heartbeated, from a timestamp in
// milliseconds (-1, or absent before DescribeQuorum v1, when unknown).
func heartbeatAge(now time.Time, ms int64) string {
	if ms <= 0 {
		return "-"
	}
	age := max(0, now.Sub(time.UnixMilli(ms)))
	if age < time.Second {
		return age.Round(time.Millisecond).String()
	}
	return age.Round(100 * time.Millisecond).String()
}
