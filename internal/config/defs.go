package config

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Def describes one configuration key: its Kafka name, type and default, and
// how a value is validated.
//
// Defs are static tables built at package init; the values returned by
// TopicDefs, BrokerDefs, LookupTopic and LookupBroker are copies and may be
// read from any goroutine.
type Def struct {
	Name    string
	Type    Type
	Default string
	// NullDefault marks a key with no default (Kafka's null): it has no value
	// unless configured, and Default is empty.
	NullDefault bool
	Doc         string
	// Validate parses and range-checks a value as given by a user; the error
	// wraps ErrInvalidConfig with Kafka-like text.
	Validate func(string) error

	// BrokerSynonym is, for a topic key, the broker key that sets its default
	// (segment.bytes ↔ log.segment.bytes). BrokerSynonyms is the whole ordered
	// chain when there are several (retention.ms ↔ log.retention.ms,
	// log.retention.minutes, log.retention.hours): the first one set wins.
	BrokerSynonym  string
	BrokerSynonyms []string

	Sensitive bool
	// ReadOnly is what DescribeConfigs reports: true for broker keys that
	// Kafka cannot change at run time, false for topic keys.
	ReadOnly bool
	// DynamicBroker marks the broker keys Kafka lets AlterConfigs change at
	// run time (the per-broker or cluster-wide dynamic configs).
	DynamicBroker bool

	check func(name, canonical string) *Error
}

// TopicDefs returns every topic key Poste accepts, sorted by name.
func TopicDefs() []Def { return cloneDefs(topicDefs) }

// BrokerDefs returns every broker key Poste accepts, sorted by name.
func BrokerDefs() []Def { return cloneDefs(brokerDefs) }

// LookupTopic returns the definition of a topic key.
func LookupTopic(name string) (Def, bool) {
	i, ok := topicIndex[name]
	if !ok {
		return Def{}, false
	}
	return cloneDef(topicDefs[i]), true
}

// LookupBroker returns the definition of a broker key.
func LookupBroker(name string) (Def, bool) {
	i, ok := brokerIndex[name]
	if !ok {
		return Def{}, false
	}
	return cloneDef(brokerDefs[i]), true
}

func cloneDef(d Def) Def {
	d.BrokerSynonyms = slices.Clone(d.BrokerSynonyms)
	return d
}

func cloneDefs(defs []Def) []Def {
	out := make([]Def, len(defs))
	for i, d := range defs {
		out[i] = cloneDef(d)
	}
	return out
}

// parse trims and parses a raw value, returning its canonical text (the form
// DescribeConfigs reports) or the reason it is invalid.
func (d *Def) parse(raw string) (string, *Error) {
	v, err := canonical(d.Type, d.Name, raw)
	if err != nil {
		return "", err
	}
	if d.check != nil {
		if err := d.check(d.Name, v); err != nil {
			return "", err
		}
	}
	return v, nil
}

// canonical parses raw as type t the way Kafka's ConfigDef does: surrounding
// whitespace is ignored, booleans are case-insensitive, lists are
// comma-separated with each element trimmed.
func canonical(t Type, name, raw string) (string, *Error) {
	v := strings.TrimSpace(raw)
	switch t {
	case TypeBoolean:
		switch strings.ToLower(v) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return "", invalidValue(name, v, "Expected value to be either true or false")
	case TypeShort, TypeInt, TypeLong:
		bits := 64
		switch t {
		case TypeShort:
			bits = 16
		case TypeInt:
			bits = 32
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return "", invalidValue(name, v, "Not a number of type "+string(t))
		}
		return strconv.FormatInt(n, 10), nil
	case TypeDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return "", invalidValue(name, v, "Not a number of type DOUBLE")
		}
		return formatDouble(f), nil
	case TypeList:
		if v == "" {
			return "", nil
		}
		parts := strings.Split(v, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return strings.Join(parts, ","), nil
	}
	return v, nil
}

// formatDouble prints a float as Java's Double.toString does for the values
// configs use (0.5 → "0.5", 1 → "1.0").
func formatDouble(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") { // n: Inf
		s += ".0"
	}
	return s
}

// Constraint helpers. Each receives a canonical value of the def's type.

func atLeast(lo int64) func(string, string) *Error {
	return func(name, v string) *Error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < lo {
			return invalidValue(name, v, "Value must be at least "+strconv.FormatInt(lo, 10))
		}
		return nil
	}
}

func between(lo, hi int64) func(string, string) *Error {
	return func(name, v string) *Error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < lo {
			return invalidValue(name, v, "Value must be at least "+strconv.FormatInt(lo, 10))
		}
		if n > hi {
			return invalidValue(name, v, "Value must be no more than "+strconv.FormatInt(hi, 10))
		}
		return nil
	}
}

// levelOrMinusOne accepts -1 (the codec's default level) or lo..hi.
func levelOrMinusOne(lo, hi int64) func(string, string) *Error {
	return func(name, v string) *Error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n != -1 && (n < lo || n > hi) {
			return invalidValue(name, v, "Value must be between "+strconv.FormatInt(lo, 10)+" and "+strconv.FormatInt(hi, 10)+", or -1")
		}
		return nil
	}
}

func positiveDouble(name, v string) *Error {
	if f, err := strconv.ParseFloat(v, 64); err != nil || !(f > 0) {
		return invalidValue(name, v, "Value must be a positive number")
	}
	return nil
}

func ratio(name, v string) *Error {
	f, _ := strconv.ParseFloat(v, 64)
	if f < 0 {
		return invalidValue(name, v, "Value must be at least 0.0")
	}
	if f > 1 {
		return invalidValue(name, v, "Value must be no more than 1.0")
	}
	return nil
}

func oneOf(allowed ...string) func(string, string) *Error {
	return func(name, v string) *Error {
		if !slices.Contains(allowed, v) {
			return invalidValue(name, v, "String must be one of: "+strings.Join(allowed, ", "))
		}
		return nil
	}
}

// listOf accepts a non-empty list whose elements are all in allowed.
func listOf(allowed ...string) func(string, string) *Error {
	return func(name, v string) *Error {
		if v == "" {
			return invalidValue(name, v, "Empty list")
		}
		for _, e := range strings.Split(v, ",") {
			if !slices.Contains(allowed, e) {
				return invalidValue(name, e, "String must be one of: "+strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

func notEmpty(name, v string) *Error {
	if v == "" {
		return invalidValue(name, v, "Value must not be empty")
	}
	return nil
}

// dirList accepts a non-empty list of distinct, non-empty directories.
func dirList(name, v string) *Error {
	if v == "" {
		return invalidValue(name, v, "Empty list")
	}
	seen := map[string]bool{}
	for _, d := range strings.Split(v, ",") {
		if d == "" {
			return invalidValue(name, v, "Empty directory in list")
		}
		if seen[d] {
			return invalidValue(name, v, "Duplicate directory "+d)
		}
		seen[d] = true
	}
	return nil
}

func listenersCheck(name, v string) *Error {
	_, err := parseListeners(name, v)
	return err
}

func protocolMapCheck(name, v string) *Error {
	_, err := parseProtocolMap(name, v)
	return err
}

const maxLong = "9223372036854775807"

var compressionTypes = []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}

// brokerDefs lists the broker keys Poste accepts. Defaults are Kafka's except
// where Poste's single-node first run needs otherwise (listeners, log.dir,
// node.id, replication factors of the internal topics).
var brokerDefs = []Def{
	// Node and network.
	{Name: "node.id", Type: TypeInt, Default: "1", check: atLeast(0),
		Doc: "The id of this node in the cluster."},
	{Name: "cluster.id", Type: TypeString, NullDefault: true,
		Doc: "Poste: the cluster id; when unset, one is generated when the cluster's metadata is first created."},
	{Name: "listeners", Type: TypeString, Default: "PLAINTEXT://127.0.0.1:9092", check: listenersCheck,
		Doc: "Comma-separated NAME://host:port addresses to listen on; an empty host binds every interface, port 0 picks a free port."},
	{Name: "advertised.listeners", Type: TypeString, NullDefault: true, check: listenersCheck,
		Doc: "Addresses given to clients, as NAME://host:port; defaults to listeners with 127.0.0.1 advertised as localhost."},
	{Name: "listener.security.protocol.map", Type: TypeString,
		Default: "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", check: protocolMapCheck,
		Doc: "Comma-separated NAME:PROTOCOL pairs mapping each listener name to its security protocol."},
	{Name: "socket.request.max.bytes", Type: TypeInt, Default: "104857600", check: atLeast(1),
		Doc: "Largest request, in bytes, the server accepts; bigger ones close the connection."},

	// Storage.
	{Name: "log.dir", Type: TypeString, Default: "./poste-data", check: notEmpty,
		Doc: "Directory holding the data, used when log.dirs is not set."},
	{Name: "log.dirs", Type: TypeString, NullDefault: true, check: dirList,
		Doc: "Comma-separated directories holding the data; overrides log.dir."},
	{Name: "log.segment.bytes", Type: TypeInt, Default: "1073741824", check: atLeast(1 << 20),
		Doc: "Size at which a partition's active segment is rolled."},
	{Name: "log.roll.ms", Type: TypeLong, NullDefault: true, check: atLeast(1),
		Doc: "Age in ms at which the active segment is rolled; overrides log.roll.hours."},
	{Name: "log.roll.hours", Type: TypeInt, Default: "168", check: atLeast(1),
		Doc: "Age in hours at which the active segment is rolled, used when log.roll.ms is not set."},
	{Name: "log.roll.jitter.ms", Type: TypeLong, NullDefault: true, check: atLeast(0),
		Doc: "Largest random amount in ms taken off the roll age, so segments do not all roll at once; overrides log.roll.jitter.hours."},
	{Name: "log.roll.jitter.hours", Type: TypeInt, Default: "0", check: atLeast(0),
		Doc: "Largest random amount in hours taken off the roll age, used when log.roll.jitter.ms is not set."},
	{Name: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760", check: atLeast(4),
		Doc: "Largest size of a segment's offset index; a full index rolls the segment."},
	{Name: "log.index.interval.bytes", Type: TypeInt, Default: "4096", check: atLeast(0),
		Doc: "Bytes of records between two offset-index entries."},
	{Name: "log.preallocate", Type: TypeBoolean, Default: "false",
		Doc: "Whether new segment files are preallocated to log.segment.bytes."},
	{Name: "log.segment.delete.delay.ms", Type: TypeLong, Default: "60000", check: atLeast(0),
		Doc: "How long a deleted segment's files linger before they are removed from disk."},

	// Durability.
	{Name: "log.flush.policy", Type: TypeString, Default: FlushAlways, check: oneOf(FlushAlways, FlushInterval, FlushNever),
		Doc: "Poste: when appended data is fsynced. always: before the ack (group commit); interval: every flush interval, acks do not wait; never: left to the operating system."},
	{Name: "log.flush.interval.ms", Type: TypeLong, NullDefault: true, check: atLeast(0),
		Doc: "With log.flush.policy=interval, the fsync period in ms (falls back to log.flush.scheduler.interval.ms, then 1000)."},
	{Name: "log.flush.scheduler.interval.ms", Type: TypeLong, Default: maxLong,
		Doc: "Fallback for log.flush.interval.ms, as in Kafka; Poste's interval policy ignores its \"never\" default."},
	{Name: "log.flush.interval.messages", Type: TypeLong, Default: maxLong, check: atLeast(1),
		Doc: "With log.flush.policy=interval, also fsync once this many messages are unflushed."},

	// Retention and cleanup.
	{Name: "log.retention.ms", Type: TypeLong, NullDefault: true,
		Doc: "How long data is kept, in ms; -1 keeps it forever. Overrides log.retention.minutes and log.retention.hours."},
	{Name: "log.retention.minutes", Type: TypeInt, NullDefault: true,
		Doc: "How long data is kept, in minutes, used when log.retention.ms is not set."},
	{Name: "log.retention.hours", Type: TypeInt, Default: "168",
		Doc: "How long data is kept, in hours, used when neither log.retention.ms nor log.retention.minutes is set."},
	{Name: "log.retention.bytes", Type: TypeLong, Default: "-1",
		Doc: "Largest size of a partition before old segments are deleted; -1 means no limit."},
	{Name: "log.retention.check.interval.ms", Type: TypeLong, Default: "300000", check: atLeast(1),
		Doc: "How often retention is checked."},
	{Name: "log.cleanup.policy", Type: TypeList, Default: "delete", check: listOf("compact", "delete"),
		Doc: "What happens to old segments: delete, compact, or both (compact,delete)."},
	{Name: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000", check: atLeast(0),
		Doc: "How long tombstones are kept on compacted topics."},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0", check: atLeast(0),
		Doc: "Least time a record stays uncompacted."},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: TypeLong, Default: maxLong, check: atLeast(1),
		Doc: "Most time a record may stay uncompacted."},
	{Name: "log.cleaner.io.max.bytes.per.second", Type: TypeDouble, Default: "2.68435456E8", check: positiveDouble,
		Doc: "Most bytes per second the log cleaner reads and writes, all partitions together, so compaction never starves produce and fetch (Poste: 256 MiB/s; Kafka: unlimited)."},
	{Name: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5", check: ratio,
		Doc: "Least ratio of dirty to total log size before a log is compacted."},

	// Records.
	{Name: "message.max.bytes", Type: TypeInt, Default: "1048588", check: atLeast(0),
		Doc: "Largest record batch accepted, after compression."},
	{Name: "log.message.timestamp.type", Type: TypeString, Default: TimestampCreateTime,
		check: oneOf(TimestampCreateTime, TimestampLogAppendTime),
		Doc:   "Whether stored timestamps are the producer's (CreateTime) or the broker's at append (LogAppendTime)."},
	{Name: "log.message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		Doc: "With CreateTime, reject batches whose timestamp is more than this many ms before the broker's clock."},
	{Name: "log.message.timestamp.after.max.ms", Type: TypeLong, Default: "3600000", check: atLeast(0),
		Doc: "With CreateTime, reject batches whose timestamp is more than this many ms after the broker's clock."},
	{Name: "compression.type", Type: TypeString, Default: "producer", check: oneOf(compressionTypes...),
		Doc: "Compression of stored batches: producer keeps the producer's codec; otherwise batches are recompressed with this codec."},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", check: levelOrMinusOne(1, 9),
		Doc: "Level used when the broker compresses with gzip."},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", check: between(1, 17),
		Doc: "Level used when the broker compresses with lz4."},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", check: between(-131072, 22),
		Doc: "Level used when the broker compresses with zstd."},

	// Topics and replication.
	{Name: "auto.create.topics.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether producing to or fetching metadata for an unknown topic creates it."},
	{Name: "num.partitions", Type: TypeInt, Default: "1", check: atLeast(1),
		Doc: "Partitions of a topic created without a partition count."},
	{Name: "default.replication.factor", Type: TypeInt, Default: "1", check: between(1, math.MaxInt16),
		Doc: "Replication factor of a topic created without one."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", check: atLeast(1),
		Doc: "Least in-sync replicas for an acks=all produce to succeed."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false",
		Doc: "Whether an out-of-sync replica may become leader, losing data, when no in-sync one is left."},

	// Group coordinator.
	{Name: "offsets.topic.num.partitions", Type: TypeInt, Default: "50", check: atLeast(1),
		Doc: "Partitions of __consumer_offsets; fixed once the topic exists."},
	{Name: "offsets.topic.replication.factor", Type: TypeShort, Default: "1", check: atLeast(1),
		Doc: "Replication factor of __consumer_offsets."},
	{Name: "offsets.retention.minutes", Type: TypeInt, Default: "10080", check: atLeast(1),
		Doc: "How long committed offsets of an empty group are kept."},
	{Name: "group.initial.rebalance.delay.ms", Type: TypeInt, Default: "3000", check: atLeast(0),
		Doc: "How long a new group waits for more members before its first rebalance."},
	{Name: "group.min.session.timeout.ms", Type: TypeInt, Default: "6000",
		Doc: "Smallest session timeout a group member may ask for."},
	{Name: "group.max.session.timeout.ms", Type: TypeInt, Default: "1800000",
		Doc: "Largest session timeout a group member may ask for."},
	{Name: "group.max.size", Type: TypeInt, Default: "2147483647", check: atLeast(1),
		Doc: "Most members a classic consumer group may have."},
	{Name: "group.consumer.heartbeat.interval.ms", Type: TypeInt, Default: "5000", check: atLeast(1),
		Doc: "Heartbeat interval given to members of consumer groups using the KIP-848 protocol."},
	{Name: "group.consumer.session.timeout.ms", Type: TypeInt, Default: "45000", check: atLeast(1),
		Doc: "Session timeout of members of consumer groups using the KIP-848 protocol."},
	{Name: "group.consumer.max.size", Type: TypeInt, Default: "2147483647", check: atLeast(1),
		Doc: "Most members a KIP-848 consumer group may have."},

	// Transactions and idempotence.
	{Name: "transaction.max.timeout.ms", Type: TypeInt, Default: "900000", check: atLeast(1),
		Doc: "Largest transaction timeout a producer may ask for."},
	{Name: "transactional.id.expiration.ms", Type: TypeInt, Default: "604800000", check: atLeast(1),
		Doc: "How long an idle transactional id is kept."},
	{Name: "producer.id.expiration.ms", Type: TypeInt, Default: "86400000", check: atLeast(1),
		Doc: "How long an idle idempotent producer's state is kept."},
	{Name: "transaction.state.log.num.partitions", Type: TypeInt, Default: "50", check: atLeast(1),
		Doc: "Partitions of __transaction_state; fixed once the topic exists."},
	{Name: "transaction.state.log.replication.factor", Type: TypeShort, Default: "1", check: atLeast(1),
		Doc: "Replication factor of __transaction_state."},

	// Cluster: the controller quorum, broker liveness, replication.
	{Name: "process.roles", Type: TypeList, Default: "broker,controller", check: listOf("broker", "controller"),
		Doc: "Roles of this node: broker (serves clients and hosts partitions), controller (a voter of the metadata quorum), or both."},
	{Name: "controller.quorum.voters", Type: TypeList, NullDefault: true, check: votersCheck,
		Doc: "The metadata quorum's voters as id@host:port of their controller listeners; unset runs a single node that is its own quorum."},
	{Name: "controller.listener.names", Type: TypeList, Default: "CONTROLLER",
		Doc: "Listeners that carry the quorum's traffic and controller requests; never advertised to clients."},
	{Name: "inter.broker.listener.name", Type: TypeString, NullDefault: true,
		Doc: "Listener other brokers use to replicate from this one; defaults to the first listener that is not a controller listener."},
	{Name: "broker.rack", Type: TypeString, NullDefault: true,
		Doc: "Rack of this broker: replicas of a partition are spread over racks, and consumers with client.rack may fetch from a replica in theirs."},
	{Name: "broker.heartbeat.interval.ms", Type: TypeInt, Default: "250", check: atLeast(1),
		Doc: "Poste: how often a broker heartbeats to the active controller (Kafka: 2000)."},
	{Name: "broker.session.timeout.ms", Type: TypeInt, Default: "1500", check: atLeast(1),
		Doc: "Poste: how long without a heartbeat before the controller fences a broker and moves its leaderships (Kafka: 9000; shorter so failover stays under about 3 s)."},
	{Name: "controlled.shutdown.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether a stopping broker first asks the controller to move its leaderships away."},
	{Name: "auto.leader.rebalance.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether the controller moves leadership back to preferred replicas when brokers are imbalanced."},
	{Name: "leader.imbalance.check.interval.seconds", Type: TypeLong, Default: "300", check: atLeast(1),
		Doc: "How often the controller checks leader imbalance."},
	{Name: "leader.imbalance.per.broker.percentage", Type: TypeInt, Default: "10", check: between(0, 100),
		Doc: "Share of a broker's partitions not led by their preferred replica above which a preferred-leader election runs."},
	{Name: "replica.lag.time.max.ms", Type: TypeLong, Default: "30000", check: atLeast(1),
		Doc: "A follower that has not caught up with the leader for this long leaves the ISR."},
	{Name: "replica.fetch.max.bytes", Type: TypeInt, Default: "1048576", check: atLeast(0),
		Doc: "Bytes a follower asks for per partition in one fetch."},
	{Name: "replica.fetch.response.max.bytes", Type: TypeInt, Default: "10485760", check: atLeast(0),
		Doc: "Bytes a follower asks for in one fetch response."},
	{Name: "replica.fetch.wait.max.ms", Type: TypeInt, Default: "500", check: atLeast(0),
		Doc: "Longest a follower's fetch waits at the leader for new data."},
	{Name: "replica.fetch.min.bytes", Type: TypeInt, Default: "1", check: atLeast(1),
		Doc: "Least bytes a follower's fetch waits for."},
	{Name: "replica.fetch.backoff.ms", Type: TypeInt, Default: "1000", check: atLeast(0),
		Doc: "Pause after a follower's fetch fails."},
	{Name: "num.replica.fetchers", Type: TypeInt, Default: "1", check: atLeast(1),
		Doc: "Fetcher connections per source broker."},
	{Name: "replica.selector.class", Type: TypeString, NullDefault: true,
		Doc: "Set to org.apache.kafka.common.replica.RackAwareReplicaSelector to let consumers fetch from a replica in their client.rack (KIP-392)."},
}

// topicDefs lists the topic keys Poste accepts, with Kafka's topic-level
// defaults (used only when a broker synonym has neither a value nor a default).
var topicDefs = []Def{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", check: listOf("compact", "delete"),
		BrokerSynonyms: []string{"log.cleanup.policy"},
		Doc:            "What happens to old segments: delete, compact, or both (compact,delete)."},
	{Name: "compression.type", Type: TypeString, Default: "producer", check: oneOf(compressionTypes...),
		BrokerSynonyms: []string{"compression.type"},
		Doc:            "Compression of stored batches: producer keeps the producer's codec."},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", check: levelOrMinusOne(1, 9),
		BrokerSynonyms: []string{"compression.gzip.level"},
		Doc:            "Level used when the broker compresses with gzip."},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", check: between(1, 17),
		BrokerSynonyms: []string{"compression.lz4.level"},
		Doc:            "Level used when the broker compresses with lz4."},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", check: between(-131072, 22),
		BrokerSynonyms: []string{"compression.zstd.level"},
		Doc:            "Level used when the broker compresses with zstd."},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", check: atLeast(0),
		BrokerSynonyms: []string{"log.cleaner.delete.retention.ms"},
		Doc:            "How long tombstones are kept on a compacted topic."},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", check: atLeast(0),
		BrokerSynonyms: []string{"log.segment.delete.delay.ms"},
		Doc:            "How long a deleted segment's files linger before removal."},
	{Name: "flush.messages", Type: TypeLong, Default: maxLong, check: atLeast(1),
		BrokerSynonyms: []string{"log.flush.interval.messages"},
		Doc:            "With log.flush.policy=interval, fsync once this many messages are unflushed."},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		BrokerSynonyms: []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"},
		Doc:            "With log.flush.policy=interval, the fsync period in ms."},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", check: atLeast(0),
		BrokerSynonyms: []string{"log.index.interval.bytes"},
		Doc:            "Bytes of records between two offset-index entries."},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: maxLong, check: atLeast(1),
		BrokerSynonyms: []string{"log.cleaner.max.compaction.lag.ms"},
		Doc:            "Most time a record may stay uncompacted."},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", check: atLeast(0),
		BrokerSynonyms: []string{"message.max.bytes"},
		Doc:            "Largest record batch accepted, after compression."},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: "3600000", check: atLeast(0),
		BrokerSynonyms: []string{"log.message.timestamp.after.max.ms"},
		Doc:            "With CreateTime, reject batches more than this many ms ahead of the broker's clock."},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, check: atLeast(0),
		BrokerSynonyms: []string{"log.message.timestamp.before.max.ms"},
		Doc:            "With CreateTime, reject batches more than this many ms behind the broker's clock."},
	{Name: "message.timestamp.type", Type: TypeString, Default: TimestampCreateTime,
		check:          oneOf(TimestampCreateTime, TimestampLogAppendTime),
		BrokerSynonyms: []string{"log.message.timestamp.type"},
		Doc:            "Whether stored timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", check: ratio,
		BrokerSynonyms: []string{"log.cleaner.min.cleanable.ratio"},
		Doc:            "Least ratio of dirty to total log size before compaction."},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", check: atLeast(0),
		BrokerSynonyms: []string{"log.cleaner.min.compaction.lag.ms"},
		Doc:            "Least time a record stays uncompacted."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", check: atLeast(1),
		BrokerSynonyms: []string{"min.insync.replicas"},
		Doc:            "Least in-sync replicas for an acks=all produce to succeed."},
	{Name: "preallocate", Type: TypeBoolean, Default: "false",
		BrokerSynonyms: []string{"log.preallocate"},
		Doc:            "Whether new segment files are preallocated."},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1",
		BrokerSynonyms: []string{"log.retention.bytes"},
		Doc:            "Largest size of a partition before old segments are deleted; -1 means no limit."},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", check: atLeast(-1),
		BrokerSynonyms: []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
		Doc:            "How long data is kept, in ms; -1 keeps it forever."},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", check: atLeast(1 << 20),
		BrokerSynonyms: []string{"log.segment.bytes"},
		Doc:            "Size at which the active segment is rolled."},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", check: atLeast(4),
		BrokerSynonyms: []string{"log.index.size.max.bytes"},
		Doc:            "Largest size of a segment's offset index."},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", check: atLeast(0),
		BrokerSynonyms: []string{"log.roll.jitter.ms", "log.roll.jitter.hours"},
		Doc:            "Largest random amount taken off the roll age."},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", check: atLeast(1),
		BrokerSynonyms: []string{"log.roll.ms", "log.roll.hours"},
		Doc:            "Age at which the active segment is rolled."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false",
		BrokerSynonyms: []string{"unclean.leader.election.enable"},
		Doc:            "Whether an out-of-sync replica may become leader, losing data."},
}

// brokerScale converts a broker synonym's unit to its topic key's ms.
var brokerScale = map[string]int64{
	"log.roll.hours":        3_600_000,
	"log.roll.jitter.hours": 3_600_000,
	"log.retention.minutes": 60_000,
	"log.retention.hours":   3_600_000,
}

// dynamicBrokerKeys are the broker keys Kafka can change at run time besides
// the first broker synonym of every topic key.
var dynamicBrokerKeys = []string{
	"listeners", "advertised.listeners", "listener.security.protocol.map", "producer.id.expiration.ms",
	"log.cleaner.io.max.bytes.per.second",
}

var (
	topicIndex  = map[string]int{}
	brokerIndex = map[string]int{}
	// brokerChains maps a broker key to its ordered synonym chain (itself
	// alone for most keys; log.retention.hours → ms, minutes, hours).
	brokerChains = map[string][]string{}
)

func init() {
	byName := func(a, b Def) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(brokerDefs, byName)
	slices.SortFunc(topicDefs, byName)
	for i := range brokerDefs {
		brokerIndex[brokerDefs[i].Name] = i
	}
	for i := range topicDefs {
		d := &topicDefs[i]
		topicIndex[d.Name] = i
		d.BrokerSynonym = d.BrokerSynonyms[0]
		for _, s := range d.BrokerSynonyms {
			if _, ok := brokerIndex[s]; !ok {
				panic("config: topic key " + d.Name + " has unknown broker synonym " + s)
			}
			if len(d.BrokerSynonyms) > 1 {
				brokerChains[s] = d.BrokerSynonyms
			}
		}
		brokerDefs[brokerIndex[d.BrokerSynonym]].DynamicBroker = true
	}
	for _, k := range dynamicBrokerKeys {
		brokerDefs[brokerIndex[k]].DynamicBroker = true
	}
	for i := range brokerDefs {
		d := &brokerDefs[i]
		d.ReadOnly = !d.DynamicBroker
		if _, ok := brokerChains[d.Name]; !ok {
			brokerChains[d.Name] = []string{d.Name}
		}
	}
	for _, defs := range [][]Def{brokerDefs, topicDefs} {
		for i := range defs {
			d := &defs[i]
			if !d.NullDefault {
				if _, err := d.parse(d.Default); err != nil {
					panic("config: bad default for " + d.Name + ": " + err.Error())
				}
			}
			d.Validate = func(v string) error {
				if _, err := d.parse(v); err != nil {
					return err
				}
				return nil
			}
		}
	}
}
