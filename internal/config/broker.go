package config

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Broker is the typed, validated broker configuration.
//
// It is built by Load and immutable afterwards: neither its fields, its
// slices nor its maps may be modified, and it may be read from any goroutine.
// The typed fields are views of Values; the topic-default fields (SegmentBytes
// ... CompressionType) are what a topic without overrides gets, i.e. equal to
// TopicConfig(nil).
type Broker struct {
	NodeID    int32
	ClusterID string // empty when not configured

	Listeners           []Listener
	AdvertisedListeners []Listener

	LogDirs                  []string
	NumPartitions            int32
	DefaultReplicationFactor int16
	AutoCreateTopics         bool
	SocketRequestMaxBytes    int32
	RetentionCheckIntervalMs int64
	SegmentDeleteDelayMs     int64

	// Defaults for topics (broker synonyms resolved to topic units).
	SegmentBytes          int64
	SegmentMs             int64
	IndexIntervalBytes    int
	SegmentIndexBytes     int
	Preallocate           bool
	MessageMaxBytes       int32
	TimestampType         string
	TimestampBeforeMaxMs  int64
	TimestampAfterMaxMs   int64
	FlushPolicy           string
	FlushIntervalMs       int64 // effective period for FlushPolicy == FlushInterval
	FlushIntervalMessages int64
	RetentionMs           int64
	RetentionBytes        int64
	CleanupPolicy         string
	MinInsyncReplicas     int32
	UncleanLeaderElection bool
	CompressionType       string

	// Group coordinator.
	OffsetsTopicNumPartitions     int32
	OffsetsTopicReplicationFactor int16
	OffsetsRetentionMs            int64
	GroupInitialRebalanceDelayMs  int32
	GroupMinSessionTimeoutMs      int32
	GroupMaxSessionTimeoutMs      int32
	GroupMaxSize                  int32
	ConsumerHeartbeatIntervalMs   int32 // group.consumer.heartbeat.interval.ms (KIP-848)
	ConsumerSessionTimeoutMs      int32 // group.consumer.session.timeout.ms (KIP-848)
	ConsumerGroupMaxSize          int32 // group.consumer.max.size (KIP-848)

	// Transactions and idempotence.
	TransactionMaxTimeoutMs              int32
	TransactionalIDExpirationMs          int32
	ProducerIDExpirationMs               int32
	TransactionStateLogNumPartitions     int32
	TransactionStateLogReplicationFactor int16

	// Cluster (see docs/cluster.md).
	// Controller and BrokerRole come from process.roles.
	Controller, BrokerRole bool
	// Voters is controller.quorum.voters; empty for a single node.
	Voters []Voter
	// ControllerListeners names the listeners of controller.listener.names present in
	// listeners; they are not advertised to clients.
	ControllerListeners []string
	// InterBrokerListener is the listener followers fetch from.
	InterBrokerListener           string
	Rack                          *string
	BrokerHeartbeatIntervalMs     int32
	BrokerSessionTimeoutMs        int32
	ControlledShutdown            bool
	AutoLeaderRebalance           bool
	LeaderImbalanceCheckIntervalS int64
	LeaderImbalancePercentage     int32
	ReplicaLagTimeMaxMs           int64
	ReplicaFetchMaxBytes          int32
	ReplicaFetchResponseMaxBytes  int32
	ReplicaFetchWaitMaxMs         int32
	ReplicaFetchMinBytes          int32
	ReplicaFetchBackoffMs         int32
	NumReplicaFetchers            int32
	// RackAwareReplicaSelector is replica.selector.class set to Kafka's rack-aware selector.
	RackAwareReplicaSelector bool

	// CleanerIOMaxBytesPerSecond is log.cleaner.io.max.bytes.per.second.
	CleanerIOMaxBytesPerSecond float64

	// Values holds every broker key that has a value, configured or default,
	// in canonical text (trimmed, numbers and booleans normalised). Keys with
	// no default that were not configured are absent.
	Values map[string]string
	// Sources says for each key in Values whether it was configured
	// (SourceStaticBrokerConfig: file, environment or flag) or is the default
	// (SourceDefaultConfig).
	Sources map[string]Source

	// Dynamic layer (WithDynamic): the static configuration it was built on, and the
	// dynamic values of this node and of the cluster-wide defaults. Nil for a static one.
	static              *Broker
	dynNode, dynDefault map[string]string
}

// hostname names this machine for advertised listeners bound to every
// interface; a variable so tests can pin it.
var hostname = os.Hostname

// EnvPrefix starts every environment variable Load reads.
const EnvPrefix = "POSTE_"

// EnvName returns the environment variable that sets a broker key:
// POSTE_ followed by the key upper-cased with '.' and '-' turned into '_'
// (log.dirs → POSTE_LOG_DIRS). No two broker keys share a variable.
func EnvName(key string) string {
	return EnvPrefix + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(key))
}

var envIndex = map[string]string{}

func init() {
	for _, d := range brokerDefs {
		n := EnvName(d.Name)
		if other, dup := envIndex[n]; dup {
			panic("config: keys " + other + " and " + d.Name + " share " + n)
		}
		envIndex[n] = d.Name
	}
}

// FlagKeys lists the broker keys worth exposing as command-line flags
// (--log.dirs x); any other key can still be given in the properties file or
// the environment.
func FlagKeys() []string {
	return []string{
		"node.id", "cluster.id", "listeners", "advertised.listeners", "log.dirs",
		"num.partitions", "default.replication.factor", "auto.create.topics.enable",
		"log.flush.policy", "log.flush.interval.ms",
		"log.segment.bytes", "log.retention.hours", "log.retention.ms", "log.retention.bytes",
		"log.cleanup.policy", "message.max.bytes", "min.insync.replicas", "compression.type",
		"offsets.topic.replication.factor",
	}
}

// Load builds the broker configuration from, in increasing precedence, the
// defaults, the properties file at path (skipped when path is ""), the
// POSTE_ variables in environ ("NAME=value" entries, as os.Environ returns;
// see EnvName), and overrides (Kafka key → value, from flags).
//
// Unknown keys in the file or in overrides are not fatal: they are returned,
// sorted, for the caller to log. Environment variables that name no key are
// ignored silently, since POSTE_ variables also configure other commands.
// An invalid value is an error naming the key, the value, why, and where it
// was set; it wraps ErrInvalidConfig. A file that cannot be read or parsed is
// an error too.
func Load(path string, environ []string, overrides map[string]string) (*Broker, []string, error) {
	raw := map[string]string{}
	origin := map[string]string{}
	unknownSet := map[string]bool{}

	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		props, err := ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("config: %s: %w", path, err)
		}
		for k, v := range props {
			if _, ok := brokerIndex[k]; !ok {
				unknownSet[k] = true
				continue
			}
			raw[k], origin[k] = v, "file "+path
		}
	}
	for _, kv := range environ {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if k, ok := envIndex[name]; ok {
			raw[k], origin[k] = v, "environment variable "+name
		}
	}
	for k, v := range overrides {
		if _, ok := brokerIndex[k]; !ok {
			unknownSet[k] = true
			continue
		}
		raw[k], origin[k] = v, "flag --"+k
	}
	unknown := make([]string, 0, len(unknownSet))
	for k := range unknownSet {
		unknown = append(unknown, k)
	}
	slices.Sort(unknown)

	b := &Broker{Values: map[string]string{}, Sources: map[string]Source{}}
	for _, d := range brokerDefs {
		if !d.NullDefault {
			b.Values[d.Name] = d.Default
			b.Sources[d.Name] = SourceDefaultConfig
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := brokerDefs[brokerIndex[k]].parse(raw[k])
		if err != nil {
			return nil, unknown, fmt.Errorf("%w (set by %s)", err, origin[k])
		}
		b.Values[k] = v
		b.Sources[k] = SourceStaticBrokerConfig
	}
	if err := b.resolve(); err != nil {
		if e, ok := err.(*Error); ok && origin[e.Name] != "" {
			return nil, unknown, fmt.Errorf("%w (set by %s)", err, origin[e.Name])
		}
		return nil, unknown, err
	}
	return b, unknown, nil
}

// Accessors for validated values; parse errors cannot happen past Load.

func (b *Broker) int64Of(key string) int64 {
	n, _ := strconv.ParseInt(b.Values[key], 10, 64)
	return n
}

func (b *Broker) int32Of(key string) int32 { return int32(b.int64Of(key)) }

func (b *Broker) boolOf(key string) bool { return b.Values[key] == "true" }

// resolve fills the typed fields from Values and checks what spans keys.
func (b *Broker) resolve() error {
	b.NodeID = b.int32Of("node.id")
	b.ClusterID = b.Values["cluster.id"]

	protocols, err := parseProtocolMap("listener.security.protocol.map", b.Values["listener.security.protocol.map"])
	if err != nil {
		return err
	}
	if err := b.resolveListeners(protocols); err != nil {
		return err
	}

	if dirs, ok := b.Values["log.dirs"]; ok {
		b.LogDirs = strings.Split(dirs, ",")
	} else {
		b.LogDirs = []string{b.Values["log.dir"]}
	}
	b.NumPartitions = b.int32Of("num.partitions")
	b.DefaultReplicationFactor = int16(b.int64Of("default.replication.factor"))
	b.AutoCreateTopics = b.boolOf("auto.create.topics.enable")
	b.SocketRequestMaxBytes = b.int32Of("socket.request.max.bytes")
	b.RetentionCheckIntervalMs = b.int64Of("log.retention.check.interval.ms")
	b.CleanerIOMaxBytesPerSecond, _ = strconv.ParseFloat(b.Values["log.cleaner.io.max.bytes.per.second"], 64)
	b.SegmentDeleteDelayMs = b.int64Of("log.segment.delete.delay.ms")

	b.OffsetsTopicNumPartitions = b.int32Of("offsets.topic.num.partitions")
	b.OffsetsTopicReplicationFactor = int16(b.int64Of("offsets.topic.replication.factor"))
	b.OffsetsRetentionMs = b.int64Of("offsets.retention.minutes") * 60_000
	b.GroupInitialRebalanceDelayMs = b.int32Of("group.initial.rebalance.delay.ms")
	b.GroupMinSessionTimeoutMs = b.int32Of("group.min.session.timeout.ms")
	b.GroupMaxSessionTimeoutMs = b.int32Of("group.max.session.timeout.ms")
	b.GroupMaxSize = b.int32Of("group.max.size")
	b.ConsumerHeartbeatIntervalMs = b.int32Of("group.consumer.heartbeat.interval.ms")
	b.ConsumerSessionTimeoutMs = b.int32Of("group.consumer.session.timeout.ms")
	b.ConsumerGroupMaxSize = b.int32Of("group.consumer.max.size")

	b.TransactionMaxTimeoutMs = b.int32Of("transaction.max.timeout.ms")
	b.TransactionalIDExpirationMs = b.int32Of("transactional.id.expiration.ms")
	b.ProducerIDExpirationMs = b.int32Of("producer.id.expiration.ms")
	b.TransactionStateLogNumPartitions = b.int32Of("transaction.state.log.num.partitions")
	b.TransactionStateLogReplicationFactor = int16(b.int64Of("transaction.state.log.replication.factor"))

	if err := b.resolveCluster(); err != nil {
		return err
	}

	// Cross-key checks Kafka makes at startup.
	retention, from := b.brokerDefault(&topicDefs[topicIndex["retention.ms"]])
	if r, _ := strconv.ParseInt(retention, 10, 64); r == 0 {
		return &Error{Name: from, msg: "Invalid value " + b.Values[from] + " for configuration " + from +
			": log.retention.ms must be unlimited (-1) or, equal or greater than 1"}
	}
	if minLag, maxLag := b.int64Of("log.cleaner.min.compaction.lag.ms"), b.int64Of("log.cleaner.max.compaction.lag.ms"); minLag > maxLag {
		return &Error{Name: "log.cleaner.min.compaction.lag.ms", msg: fmt.Sprintf(
			"conflict broker config setting log.cleaner.min.compaction.lag.ms (%d) > log.cleaner.max.compaction.lag.ms (%d)", minLag, maxLag)}
	}
	if b.GroupMinSessionTimeoutMs > b.GroupMaxSessionTimeoutMs {
		return &Error{Name: "group.min.session.timeout.ms", msg: fmt.Sprintf(
			"Invalid value %d for configuration group.min.session.timeout.ms: must not exceed group.max.session.timeout.ms (%d)",
			b.GroupMinSessionTimeoutMs, b.GroupMaxSessionTimeoutMs)}
	}

	t := b.TopicConfig(nil)
	b.SegmentBytes = t.SegmentBytes
	b.SegmentMs = t.SegmentMs
	b.IndexIntervalBytes = t.IndexIntervalBytes
	b.SegmentIndexBytes = t.SegmentIndexBytes
	b.Preallocate = t.Preallocate
	b.MessageMaxBytes = t.MessageMaxBytes
	b.TimestampType = t.TimestampType
	b.TimestampBeforeMaxMs = t.TimestampBeforeMaxMs
	b.TimestampAfterMaxMs = t.TimestampAfterMaxMs
	b.FlushPolicy = t.FlushPolicy
	b.FlushIntervalMs = t.FlushIntervalMs
	b.FlushIntervalMessages = t.FlushMessages
	b.RetentionMs = t.RetentionMs
	b.RetentionBytes = t.RetentionBytes
	b.CleanupPolicy = t.CleanupPolicy
	b.MinInsyncReplicas = t.MinInsyncReplicas
	b.UncleanLeaderElection = t.UncleanLeaderElection
	b.CompressionType = t.CompressionType
	return nil
}

func (b *Broker) resolveListeners(protocols map[string]string) error {
	const lk, ak = "listeners", "advertised.listeners"
	ls, perr := parseListeners(lk, b.Values[lk])
	if perr != nil {
		return perr
	}
	if len(ls) == 0 {
		return invalidValue(lk, b.Values[lk], "At least one listener is required")
	}
	ports := map[int]string{}
	for i := range ls {
		p, ok := protocols[ls[i].Name]
		if !ok {
			return invalidValue(lk, b.Values[lk], "No security protocol defined for listener "+ls[i].Name+
				" in listener.security.protocol.map")
		}
		ls[i].SecurityProtocol = p
		if other, dup := ports[ls[i].Port]; dup && ls[i].Port != 0 {
			return invalidValue(lk, b.Values[lk], "Each listener must have a different port, "+
				strconv.Itoa(ls[i].Port)+" is used by "+other+" and "+ls[i].Name)
		}
		ports[ls[i].Port] = ls[i].Name
	}
	b.Listeners = ls

	byName := map[string]Listener{}
	for _, l := range ls {
		byName[l.Name] = l
	}
	adv, set := b.Values[ak]
	if !set {
		// Derived: loopback is advertised by name, wildcards by this host's name.
		b.AdvertisedListeners = make([]Listener, len(ls))
		for i, l := range ls {
			switch l.Host {
			case "127.0.0.1":
				l.Host = "localhost"
			case "", "0.0.0.0", "::":
				h, err := hostname()
				if err != nil {
					return fmt.Errorf("config: listener %s binds every interface and the host name is unknown (%v); set advertised.listeners", l.Name, err)
				}
				l.Host = h
			}
			b.AdvertisedListeners[i] = l
		}
		return nil
	}
	as, perr := parseListeners(ak, adv)
	if perr != nil {
		return perr
	}
	if len(as) == 0 {
		return invalidValue(ak, adv, "At least one listener is required")
	}
	for i := range as {
		l, ok := byName[as[i].Name]
		if !ok {
			return invalidValue(ak, adv, "Listener "+as[i].Name+" is not defined in listeners")
		}
		as[i].SecurityProtocol = l.SecurityProtocol
		if ip := net.ParseIP(as[i].Host); ip != nil && ip.IsUnspecified() {
			return invalidValue(ak, adv, "advertised.listeners cannot use the nonroutable meta-address "+as[i].Host+
				". Use a routable IP address.")
		}
		if as[i].Host == "" {
			h, err := hostname()
			if err != nil {
				return fmt.Errorf("config: advertised listener %s has no host and the host name is unknown (%v)", as[i].Name, err)
			}
			as[i].Host = h
		}
	}
	b.AdvertisedListeners = as
	return nil
}

// brokerDefault returns the value a topic key takes from the broker, in the
// topic key's unit: the first of its broker synonyms that was configured,
// else the first that has a default. Configured means, in precedence order,
// set dynamically for this node, dynamically for the cluster, or statically.
// from names the synonym used.
func (b *Broker) brokerDefault(d *Def) (value, from string) {
	for _, src := range []Source{SourceDynamicBrokerConfig, SourceDynamicDefaultBrokerConfig, SourceStaticBrokerConfig} {
		for _, s := range d.BrokerSynonyms {
			if b.Sources[s] == src {
				return convertSynonym(d, s, b.Values[s]), s
			}
		}
	}
	for _, s := range d.BrokerSynonyms {
		if v, ok := b.Values[s]; ok {
			return convertSynonym(d, s, v), s
		}
	}
	return d.Default, ""
}

// convertSynonym converts a broker synonym's value to its topic key's unit.
func convertSynonym(d *Def, synonym, v string) string {
	scale, scaled := brokerScale[synonym]
	if !scaled && d.Name != "retention.ms" {
		return v
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	if scaled {
		n *= scale // the scaled synonyms are INTs: no overflow
	}
	if d.Name == "retention.ms" && n < 0 {
		n = -1 // any negative broker retention means unlimited
	}
	return strconv.FormatInt(n, 10)
}

// RackAwareSelector is the replica.selector.class value that enables fetching from followers.
const RackAwareSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// resolveCluster fills the cluster fields and checks them against the listeners.
func (b *Broker) resolveCluster() error {
	for _, r := range strings.Split(b.Values["process.roles"], ",") {
		switch strings.TrimSpace(r) {
		case "broker":
			b.BrokerRole = true
		case "controller":
			b.Controller = true
		}
	}
	if !b.BrokerRole && !b.Controller {
		return invalidValue("process.roles", b.Values["process.roles"], "At least one role (broker, controller) is required")
	}
	b.Voters, _ = parseVoters("controller.quorum.voters", b.Values["controller.quorum.voters"])
	names := map[string]bool{}
	for _, n := range strings.Split(b.Values["controller.listener.names"], ",") {
		if n = strings.ToUpper(strings.TrimSpace(n)); n != "" {
			names[n] = true
		}
	}
	for _, l := range b.Listeners {
		if names[l.Name] {
			b.ControllerListeners = append(b.ControllerListeners, l.Name)
		}
	}
	if len(b.Voters) > 0 {
		if b.Controller && len(b.ControllerListeners) == 0 {
			return invalidValue("listeners", b.Values["listeners"],
				"A node with the controller role needs a listener named in controller.listener.names")
		}
		found := false
		for _, v := range b.Voters {
			found = found || v.ID == b.NodeID
		}
		if b.Controller && !found {
			return invalidValue("controller.quorum.voters", b.Values["controller.quorum.voters"],
				"The node id "+strconv.Itoa(int(b.NodeID))+" of a controller must be one of the voters")
		}
		if !b.Controller && found {
			return invalidValue("process.roles", b.Values["process.roles"],
				"Node "+strconv.Itoa(int(b.NodeID))+" is a voter in controller.quorum.voters but does not have the controller role")
		}
	} else if !b.BrokerRole || !b.Controller {
		return invalidValue("process.roles", b.Values["process.roles"],
			"A node without controller.quorum.voters is a single-node cluster and needs both roles")
	}
	// Controller listeners are never given to clients.
	adv := b.AdvertisedListeners[:0:0]
	for _, l := range b.AdvertisedListeners {
		if !names[l.Name] {
			adv = append(adv, l)
		}
	}
	b.AdvertisedListeners = adv
	if b.BrokerRole && len(adv) == 0 {
		return invalidValue("listeners", b.Values["listeners"], "A broker needs a listener that is not a controller listener")
	}
	if n, ok := b.Values["inter.broker.listener.name"]; ok {
		n = strings.ToUpper(n)
		found := false
		for _, l := range adv {
			found = found || l.Name == n
		}
		if !found {
			return invalidValue("inter.broker.listener.name", n, "No advertised listener is named "+n)
		}
		b.InterBrokerListener = n
	} else if len(adv) > 0 {
		b.InterBrokerListener = adv[0].Name
	}
	if r, ok := b.Values["broker.rack"]; ok && r != "" {
		b.Rack = &r
	}
	b.BrokerHeartbeatIntervalMs = b.int32Of("broker.heartbeat.interval.ms")
	b.BrokerSessionTimeoutMs = b.int32Of("broker.session.timeout.ms")
	if b.BrokerSessionTimeoutMs <= b.BrokerHeartbeatIntervalMs {
		return invalidValue("broker.session.timeout.ms", b.Values["broker.session.timeout.ms"],
			"must be greater than broker.heartbeat.interval.ms")
	}
	b.ControlledShutdown = b.boolOf("controlled.shutdown.enable")
	b.AutoLeaderRebalance = b.boolOf("auto.leader.rebalance.enable")
	b.LeaderImbalanceCheckIntervalS = b.int64Of("leader.imbalance.check.interval.seconds")
	b.LeaderImbalancePercentage = b.int32Of("leader.imbalance.per.broker.percentage")
	b.ReplicaLagTimeMaxMs = b.int64Of("replica.lag.time.max.ms")
	b.ReplicaFetchMaxBytes = b.int32Of("replica.fetch.max.bytes")
	b.ReplicaFetchResponseMaxBytes = b.int32Of("replica.fetch.response.max.bytes")
	b.ReplicaFetchWaitMaxMs = b.int32Of("replica.fetch.wait.max.ms")
	b.ReplicaFetchMinBytes = b.int32Of("replica.fetch.min.bytes")
	b.ReplicaFetchBackoffMs = b.int32Of("replica.fetch.backoff.ms")
	b.NumReplicaFetchers = b.int32Of("num.replica.fetchers")
	b.RackAwareReplicaSelector = b.Values["replica.selector.class"] == RackAwareSelector
	return nil
}
