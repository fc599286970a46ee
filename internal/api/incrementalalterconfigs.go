package api

// IncrementalAlterConfigs (key 44), versions 0–1.
//   v0: per key SET (0), DELETE (1), APPEND (2) and SUBTRACT (3); APPEND and SUBTRACT only for
//   list-typed keys, applied to the key's effective value.  v1: flexible.
// Resources as for AlterConfigs: topics and brokers, persisted through the metadata log and
// effective without restart.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/config"
	"github.com/poste-io/poste/internal/controller"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.IncrementalAlterConfigsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	var changes []controller.ConfigChange
	var slots []int
	for _, res := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		cfgs, err := incrementalChanges(h, &res)
		if err == nil {
			err = checkConfigResource(h, int8(res.ResourceType), res.ResourceName)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		} else {
			changes = append(changes, controller.ConfigChange{ResourceType: int8(res.ResourceType),
				ResourceName: res.ResourceName, Configs: cfgs})
			slots = append(slots, len(resp.Resources))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	if len(changes) > 0 {
		results := h.Controller.AlterConfigs(ctx, changes, r.ValidateOnly)
		for i, res := range results {
			sr := &resp.Resources[slots[i]]
			sr.ErrorCode, sr.ErrorMessage = errCode(res.Err), errMessage(res.Err)
		}
		if err := h.waitConfigsApplied(ctx, r.ValidateOnly); err != nil {
			h.logReq(req).Warn("configs altered but not yet applied here", "err", err)
		}
	}
	return resp, nil
}

// incrementalChanges resolves a resource's operations into new values (nil deletes), as
// Kafka does: APPEND adds the listed items missing from the key's effective value,
// SUBTRACT removes them; both only for list-typed keys.
func incrementalChanges(h *Handlers, res *kmsg.IncrementalAlterConfigsRequestResource) (map[string]*string, error) {
	out := make(map[string]*string, len(res.Configs))
	var current map[string]string
	for _, c := range res.Configs {
		if _, dup := out[c.Name]; dup {
			return nil, errInvalidRequest("Error due to duplicate config keys")
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			out[c.Name] = c.Value
			if c.Value == nil {
				return nil, errInvalidConfigf("Null value not supported for : " + c.Name)
			}
		case kmsg.IncrementalAlterConfigOpDelete:
			out[c.Name] = nil
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			typ, known := configType(res.ResourceType, c.Name)
			if !known {
				return nil, errInvalidConfigf("Unknown config name: " + c.Name)
			}
			if typ != config.TypeList {
				return nil, errInvalidConfigf("Config value append is not allowed for config key: " + c.Name)
			}
			if current == nil {
				current = effectiveConfigs(h, res.ResourceType, res.ResourceName)
			}
			var items []string
			if v := current[c.Name]; v != "" {
				items = strings.Split(v, ",")
			}
			var given []string
			if c.Value != nil && *c.Value != "" {
				given = strings.Split(*c.Value, ",")
			}
			for _, g := range given {
				g = strings.TrimSpace(g)
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(items, g) {
					items = append(items, g)
				}
				if c.Op == kmsg.IncrementalAlterConfigOpSubtract {
					items = slices.DeleteFunc(items, func(s string) bool { return s == g })
				}
			}
			v := strings.Join(items, ",")
			out[c.Name] = &v
		default:
			return nil, errInvalidRequest("Unknown alter config operation " + c.Op.String())
		}
	}
	return out, nil
}

// configType is the type of a topic or broker key.
func configType(rt kmsg.ConfigResourceType, name string) (config.Type, bool) {
	var d config.Def
	var ok bool
	if rt == kmsg.ConfigResourceTypeTopic {
		d, ok = config.LookupTopic(name)
	} else {
		d, ok = config.LookupBroker(name)
	}
	return d.Type, ok
}

// effectiveConfigs returns every key's effective value for the resource.
func effectiveConfigs(h *Handlers, rt kmsg.ConfigResourceType, name string) map[string]string {
	var entries []config.Entry
	if rt == kmsg.ConfigResourceTypeTopic {
		entries = h.effectiveConfig().DescribeTopic(h.Meta.Image().TopicConfigs(name))
	} else {
		entries = h.effectiveConfig().DescribeBroker()
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		if e.Value != nil {
			out[e.Name] = *e.Value
		}
	}
	return out
}

// errInvalidConfigf is an INVALID_CONFIG answer with Kafka's message.
func errInvalidConfigf(msg string) error {
	return &kerrWithMessage{kerr.InvalidConfig, msg}
}

// kerrWithMessage is a Kafka error code with a specific message.
type kerrWithMessage struct {
	code *kerr.Error
	msg  string
}

func (e *kerrWithMessage) Error() string { return e.msg }
func (e *kerrWithMessage) Unwrap() error { return e.code }
