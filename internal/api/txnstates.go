package api

import "github.com/twmb/franz-go/pkg/kmsg"

// txnStateNames are Kafka's names of transaction states, as DescribeTransactions and
// ListTransactions carry them.
var txnStateNames = map[kmsg.TransactionState]string{
	kmsg.TransactionStateEmpty:             "Empty",
	kmsg.TransactionStateOngoing:           "Ongoing",
	kmsg.TransactionStatePrepareCommit:     "PrepareCommit",
	kmsg.TransactionStatePrepareAbort:      "PrepareAbort",
	kmsg.TransactionStateCompleteCommit:    "CompleteCommit",
	kmsg.TransactionStateCompleteAbort:     "CompleteAbort",
	kmsg.TransactionStateDead:              "Dead",
	kmsg.TransactionStatePrepareEpochFence: "PrepareEpochFence",
}
