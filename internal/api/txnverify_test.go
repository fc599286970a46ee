package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestProduceTxnCode(t *testing.T) {
	tests := []struct {
		coordinator, want int16
	}{
		{0, 0},
		{kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code},
		{kerr.ConcurrentTransactions.Code, kerr.NotEnoughReplicas.Code},
		{kerr.CoordinatorNotAvailable.Code, kerr.NotEnoughReplicas.Code},
		{kerr.NotCoordinator.Code, kerr.NotEnoughReplicas.Code},
		{kerr.CoordinatorLoadInProgress.Code, kerr.NotEnoughReplicas.Code},
		{kerr.NetworkException.Code, kerr.NotEnoughReplicas.Code},
		{kerr.InvalidProducerIDMapping.Code, kerr.InvalidProducerIDMapping.Code},
		{kerr.InvalidTxnState.Code, kerr.InvalidTxnState.Code},
	}
	for _, tc := range tests {
		if got := produceTxnCode(tc.coordinator); got != tc.want {
			t.Errorf("coordinator %s: produce gets %s, want %s", kerr.ErrorForCode(tc.coordinator), kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}
}
