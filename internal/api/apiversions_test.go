package api

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Clients use transaction version 2 only when ApiVersions finalizes transaction.version at 2,
// which needs v3+ (the features are tagged fields) and every request of that version served.
func TestApiVersionsTransactionFeature(t *testing.T) {
	if !txnV2Served() {
		t.Fatal("EndTxn v5, AddPartitionsToTxn v5, Produce v12 and TxnOffsetCommit v5 are not all served")
	}
	for v := int16(0); v <= 4; v++ {
		resp, err := handleApiVersions(context.Background(), &Handlers{}, &Request{Key: 18, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.ApiVersionsResponse)
		r.Version = v
		// Round trip through the codec: what a client would read.
		var got kmsg.ApiVersionsResponse
		got.Version = v
		if err := got.ReadFrom(r.AppendTo(nil)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		var supported, finalized int16 = -1, -1
		for _, f := range got.SupportedFeatures {
			if f.Name == "transaction.version" && f.MinVersion == 0 {
				supported = f.MaxVersion
			}
		}
		for _, f := range got.FinalizedFeatures {
			if f.Name == "transaction.version" && f.MinVersionLevel == f.MaxVersionLevel {
				finalized = f.MaxVersionLevel
			}
		}
		want := int16(-1)
		if v >= 3 {
			want = 2
		}
		if supported != want || finalized != want {
			t.Errorf("v%d: transaction.version supported up to %d, finalized at %d; want %d", v, supported, finalized, want)
		}
		if v >= 3 && got.FinalizedFeaturesEpoch < 0 {
			t.Errorf("v%d: finalized features epoch %d", v, got.FinalizedFeaturesEpoch)
		}
	}
}
