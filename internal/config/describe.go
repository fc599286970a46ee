package config

// Synonym is one place a configuration value could come from, as listed in a
// DescribeConfigs entry's synonyms. Value is empty for sensitive keys.
type Synonym struct {
	Name   string
	Value  string
	Source Source
}

// Entry is one configuration entry of a DescribeConfigs response.
type Entry struct {
	Name string
	// Value is nil for sensitive keys and for keys with no value.
	Value     *string
	Source    Source
	ReadOnly  bool
	Sensitive bool
	Type      Type
	Doc       string
	// Synonyms lists, in precedence order, every value that applies: the
	// topic override first, then the broker synonyms that were configured,
	// then those that have a default. Source is the first synonym's source.
	Synonyms []Synonym
}

// DescribeTopic returns every topic key with its effective value for a topic
// with the given overrides, sorted by name.
//
// Sources and synonyms follow Kafka: a key the topic overrides is
// DYNAMIC_TOPIC_CONFIG; otherwise the source is that of the first broker
// synonym listed. As in Kafka, a topic key whose first broker synonym has no
// value (retention.ms when only log.retention.hours applies) lists no broker
// synonyms and reports DEFAULT_CONFIG, even though its value is derived from
// a later synonym.
func (b *Broker) DescribeTopic(overrides map[string]string) []Entry {
	vals, overridden := b.topicValues(overrides)
	out := make([]Entry, 0, len(topicDefs))
	for i := range topicDefs {
		d := &topicDefs[i]
		var syns []Synonym
		if overridden[d.Name] {
			syns = append(syns, Synonym{Name: d.Name, Value: vals[d.Name], Source: SourceDynamicTopicConfig})
		}
		syns = append(syns, b.synonyms(d.BrokerSynonym, d.BrokerSynonyms, d.Sensitive)...)
		out = append(out, entry(d, vals[d.Name], true, syns))
	}
	return out
}

// DescribeBroker returns every broker key with its value, sorted by name.
// Keys with no value (log.retention.ms when unset) have a nil Value and
// report DEFAULT_CONFIG.
func (b *Broker) DescribeBroker() []Entry {
	out := make([]Entry, 0, len(brokerDefs))
	for i := range brokerDefs {
		d := &brokerDefs[i]
		v, ok := b.Values[d.Name]
		out = append(out, entry(d, v, ok, b.synonyms(d.Name, brokerChains[d.Name], d.Sensitive)))
	}
	return out
}

func entry(d *Def, value string, hasValue bool, syns []Synonym) Entry {
	e := Entry{
		Name:      d.Name,
		Source:    SourceDefaultConfig,
		ReadOnly:  d.ReadOnly,
		Sensitive: d.Sensitive,
		Type:      d.Type,
		Doc:       d.Doc,
		Synonyms:  syns,
	}
	if hasValue && !d.Sensitive {
		e.Value = &value
	}
	if len(syns) > 0 {
		e.Source = syns[0].Source
	}
	return e
}

// synonyms lists the broker-level values for name: configured synonyms of
// chain first, then defaulted ones, each group in chain order. Like Kafka,
// entries before the first one named name are dropped, so a key is never
// described by a lower-precedence synonym alone.
func (b *Broker) synonyms(name string, chain []string, sensitive bool) []Synonym {
	out := b.dynamicSynonyms(chain, sensitive)
	add := func(s, v string, src Source) {
		if sensitive {
			v = ""
		}
		out = append(out, Synonym{Name: s, Value: v, Source: src})
	}
	st := b.staticBase()
	for _, s := range chain {
		if st.Sources[s] == SourceStaticBrokerConfig {
			add(s, st.Values[s], SourceStaticBrokerConfig)
		}
	}
	for _, s := range chain {
		if d := &brokerDefs[brokerIndex[s]]; !d.NullDefault {
			add(s, d.Default, SourceDefaultConfig)
		}
	}
	for len(out) > 0 && out[0].Name != name {
		out = out[1:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
