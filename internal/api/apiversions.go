package api

// ApiVersions (key 18), versions 0–4.
//   v0: the list of API keys and version ranges.
//   v1: throttle time.
//   v3: flexible; the request names the client software (logged, not used); the response
//       carries the supported and finalized features (tagged fields): Poste supports
//       transaction.version 0–2 and finalizes it at 2 (KIP-890 part 2) — computed from the
//       registered versions, so it is finalized only while every request of transaction
//       version 2 is served. The finalized-features epoch is the metadata log index the
//       image reflects, as Kafka uses its metadata offset.
//   v4: no schema change (KIP-511 follow-up: clients may send it first).
// v5 (cluster id and node id in the request, KIP-1242) is not served.
// An unsupported version is answered by the server with a v0 response carrying
// UNSUPPORTED_VERSION and the ranges served, so newer clients can downgrade (KIP-511).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(18, 0, 4, handleApiVersions) }

// transactionVersionFeature is the feature clients read to use transaction version 2.
const transactionVersionFeature = "transaction.version"

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, r := range Supported() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = r.Key, r.AdvertisedMin, r.Max
		keys = append(keys, k)
	}
	return keys
}

func handleApiVersions(_ context.Context, h *Handlers, req *Request) (Response, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = apiKeys()
	if req.Version >= 3 {
		setFeatures(resp, h)
	}
	return resp, nil
}

// setFeatures fills the supported and finalized features of a v3+ response.
func setFeatures(resp *kmsg.ApiVersionsResponse, h *Handlers) {
	if !txnV2Served() {
		return
	}
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name, sf.MinVersion, sf.MaxVersion = transactionVersionFeature, 0, 2
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
	ff := kmsg.NewApiVersionsResponseFinalizedFeature()
	ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = transactionVersionFeature, 2, 2
	resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	resp.FinalizedFeaturesEpoch = 0
	if h != nil && h.Meta != nil {
		if img := h.Meta.Image(); img != nil {
			resp.FinalizedFeaturesEpoch = int64(img.AppliedIndex())
		}
	}
}

// UnsupportedVersionResponse is the v0 answer to an ApiVersions request of a version not served.
func UnsupportedVersionResponse() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return resp
}
