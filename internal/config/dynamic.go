package config

import (
	"maps"
	"slices"
	"strings"
)

// ValidateDynamicBrokerConfigs checks a broker resource's complete set of dynamic configs as
// AlterConfigs would store it: every key must be a broker key that Kafka lets change at run
// time (Def.DynamicBroker), and every value valid. The first problem found, in name order,
// is returned, wrapping ErrInvalidConfig.
func ValidateDynamicBrokerConfigs(cfgs map[string]*string) error {
	names := slices.Sorted(maps.Keys(cfgs))
	var static []string
	for _, k := range names {
		i, ok := brokerIndex[k]
		if !ok {
			return &Error{Name: k, msg: "Unknown broker config name: " + k}
		}
		if !brokerDefs[i].DynamicBroker {
			static = append(static, k)
		}
	}
	if len(static) > 0 {
		return &Error{Name: static[0], msg: "Cannot update these configs dynamically: " + strings.Join(static, ", ")}
	}
	for _, k := range names {
		if cfgs[k] == nil {
			return &Error{Name: k, msg: "Null value not supported for broker configs: " + k}
		}
		if _, err := brokerDefs[brokerIndex[k]].parse(*cfgs[k]); err != nil {
			return err
		}
	}
	return nil
}

// WithDynamic returns the configuration in effect once the dynamic broker configs stored in
// the metadata log are applied over b: the cluster-wide defaults (source
// DYNAMIC_DEFAULT_BROKER_CONFIG), then this node's own (DYNAMIC_BROKER_CONFIG), both above
// the static configuration. b is not changed; with no dynamic configs b itself is returned.
// Values that do not parse, or that make the whole inconsistent, are ignored (they passed
// ValidateDynamicBrokerConfigs when stored, so this happens only across versions).
func (b *Broker) WithDynamic(clusterDefaults, node map[string]string) *Broker {
	if len(clusterDefaults) == 0 && len(node) == 0 {
		return b
	}
	c := *b
	c.Values, c.Sources = maps.Clone(b.Values), maps.Clone(b.Sources)
	c.static = b.staticBase()
	c.dynDefault, c.dynNode = maps.Clone(clusterDefaults), maps.Clone(node)
	for _, layer := range []struct {
		vals map[string]string
		src  Source
	}{{clusterDefaults, SourceDynamicDefaultBrokerConfig}, {node, SourceDynamicBrokerConfig}} {
		for k, raw := range layer.vals {
			i, ok := brokerIndex[k]
			if !ok || !brokerDefs[i].DynamicBroker {
				continue
			}
			if v, err := brokerDefs[i].parse(raw); err == nil {
				c.Values[k], c.Sources[k] = v, layer.src
			}
		}
	}
	if err := c.resolve(); err != nil {
		return b
	}
	return &c
}

// staticBase is the configuration before dynamic configs.
func (b *Broker) staticBase() *Broker {
	if b.static != nil {
		return b.static
	}
	return b
}

// dynamicSynonyms lists the dynamic values of chain's keys, this node's first, then the
// cluster-wide defaults, each in chain order.
func (b *Broker) dynamicSynonyms(chain []string, sensitive bool) []Synonym {
	var out []Synonym
	for _, layer := range []struct {
		vals map[string]string
		src  Source
	}{{b.dynNode, SourceDynamicBrokerConfig}, {b.dynDefault, SourceDynamicDefaultBrokerConfig}} {
		for _, s := range chain {
			if v, ok := layer.vals[s]; ok {
				if sensitive {
					v = ""
				}
				out = append(out, Synonym{Name: s, Value: v, Source: layer.src})
			}
		}
	}
	return out
}
