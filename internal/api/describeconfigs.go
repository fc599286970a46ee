package api

// DescribeConfigs (key 32), versions 1–4.
//   v1: synonyms and config sources.  v3: config types and documentation.  v4: flexible.
// Resources: topics (type 2) and brokers (type 4, named by node id, or "" for cluster-wide
// defaults). Broker loggers (type 8) are not served: INVALID_REQUEST.

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/config"
)

func init() { register(32, 1, 4, handleDescribeConfigs) }

func handleDescribeConfigs(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DescribeConfigsRequest)
	resp := kmsg.NewPtrDescribeConfigsResponse()
	img := h.Meta.Image()
	for _, res := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		var entries []config.Entry
		switch res.ResourceType {
		case 2: // topic
			if img.Topic(res.ResourceName) == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "Topic " + res.ResourceName + " does not exist"
				sr.ErrorMessage = &msg
				break
			}
			entries = h.effectiveConfig().DescribeTopic(img.TopicConfigs(res.ResourceName))
		case 4: // broker
			if res.ResourceName != "" && res.ResourceName != strconv.Itoa(int(h.Config.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "Unexpected broker id, expected " + strconv.Itoa(int(h.Config.NodeID)) + " or empty string, but received " + res.ResourceName
				sr.ErrorMessage = &msg
				break
			}
			entries = h.effectiveConfig().DescribeBroker()
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "Unsupported resource type " + strconv.Itoa(int(res.ResourceType))
			sr.ErrorMessage = &msg
		}
		want := map[string]bool(nil)
		if res.ConfigNames != nil {
			want = make(map[string]bool, len(res.ConfigNames))
			for _, n := range res.ConfigNames {
				want[n] = true
			}
		}
		for _, e := range entries {
			if want != nil && !want[e.Name] {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = e.Name
			c.Value = e.Value
			c.ReadOnly = e.ReadOnly
			c.Source = kmsg.ConfigSource(e.Source)
			c.IsSensitive = e.Sensitive
			if r.IncludeSynonyms {
				for _, s := range e.Synonyms {
					syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					syn.Name = s.Name
					v := s.Value
					syn.Value = &v
					syn.Source = kmsg.ConfigSource(s.Source)
					c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
				}
			}
			c.ConfigType = kmsg.ConfigType(e.Type.ID())
			if r.IncludeDocumentation {
				doc := e.Doc
				c.Documentation = &doc
			}
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// effectiveConfig is the broker configuration with the dynamic broker configs of the current
// metadata image applied.
func (h *Handlers) effectiveConfig() *config.Broker {
	img := h.Meta.Image()
	return h.Config.WithDynamic(img.DefaultBrokerConfigs(), img.BrokerConfigs(h.Config.NodeID))
}
