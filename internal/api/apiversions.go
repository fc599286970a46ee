package api

// ApiVersions (key 18), versions 0–4.
//   v0: the list of API keys and version ranges.
//   v1: throttle time.
//   v3: flexible; the request names the client software (logged, not used); the response may
//       carry supported/finalized features (Poste sends none).
//   v4: no schema change (KIP-511 follow-up: clients may send it first).
// An unsupported version is answered by the server with a v0 response carrying
// UNSUPPORTED_VERSION and the ranges served, so newer clients can downgrade (KIP-511).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(18, 0, 4, handleApiVersions) }

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, r := range Supported() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = r.Key, r.AdvertisedMin, r.Max
		keys = append(keys, k)
	}
	return keys
}

func handleApiVersions(_ context.Context, _ *Handlers, req *Request) (Response, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = apiKeys()
	return resp, nil
}

// UnsupportedVersionResponse is the v0 answer to an ApiVersions request of a version not served.
func UnsupportedVersionResponse() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return resp
}
