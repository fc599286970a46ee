package streams

import (
	"errors"
	"testing"
	"time"
)

func TestNewProcessingGuarantee(t *testing.T) {
	tests := []struct {
		guarantee  string
		interval   time.Duration
		wantErr    error
		wantG      string
		wantCommit time.Duration
	}{
		{guarantee: "", wantG: AtLeastOnce, wantCommit: 30 * time.Second},
		{guarantee: AtLeastOnce, wantG: AtLeastOnce, wantCommit: 30 * time.Second},
		{guarantee: ExactlyOnceV2, wantG: ExactlyOnceV2, wantCommit: 100 * time.Millisecond},
		{guarantee: ExactlyOnceV2, interval: time.Second, wantG: ExactlyOnceV2, wantCommit: time.Second},
		{guarantee: "exactly_once", wantErr: ErrConfig},
	}
	for _, tc := range tests {
		topo := NewTopology()
		From(topo, "in", String(), String()).To("out")
		a, err := New(topo, Config{ApplicationID: "app", ProcessingGuarantee: tc.guarantee, CommitInterval: tc.interval})
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%q: err = %v, want %v", tc.guarantee, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.guarantee, err)
		}
		if a.cfg.ProcessingGuarantee != tc.wantG || a.cfg.CommitInterval != tc.wantCommit || a.eos() != (tc.wantG == ExactlyOnceV2) {
			t.Errorf("%q: guarantee %s, commit interval %v; want %s, %v", tc.guarantee, a.cfg.ProcessingGuarantee, a.cfg.CommitInterval, tc.wantG, tc.wantCommit)
		}
	}
}
