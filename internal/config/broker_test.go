package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// pinHostname makes advertised listeners derived from wildcard binds
// deterministic.
func pinHostname(t *testing.T) {
	old := hostname
	hostname = func() (string, error) { return "node-a.example", nil }
	t.Cleanup(func() { hostname = old })
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	b, unknown, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 0 {
		t.Fatalf("unknown = %v", unknown)
	}
	want := Broker{
		NodeID:                               1,
		Listeners:                            []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092, SecurityProtocol: "PLAINTEXT"}},
		AdvertisedListeners:                  []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092, SecurityProtocol: "PLAINTEXT"}},
		LogDirs:                              []string{"./poste-data"},
		NumPartitions:                        1,
		DefaultReplicationFactor:             1,
		AutoCreateTopics:                     true,
		SocketRequestMaxBytes:                104857600,
		RetentionCheckIntervalMs:             300000,
		SegmentDeleteDelayMs:                 60000,
		SegmentBytes:                         1 << 30,
		SegmentMs:                            168 * 3600000,
		IndexIntervalBytes:                   4096,
		SegmentIndexBytes:                    10485760,
		MessageMaxBytes:                      1048588,
		TimestampType:                        "CreateTime",
		TimestampBeforeMaxMs:                 1<<63 - 1,
		TimestampAfterMaxMs:                  3600000,
		FlushPolicy:                          "always",
		FlushIntervalMs:                      DefaultFlushIntervalMs,
		FlushIntervalMessages:                1<<63 - 1,
		RetentionMs:                          168 * 3600000,
		RetentionBytes:                       -1,
		CleanupPolicy:                        "delete",
		MinInsyncReplicas:                    1,
		CompressionType:                      "producer",
		OffsetsTopicNumPartitions:            50,
		OffsetsTopicReplicationFactor:        1,
		OffsetsRetentionMs:                   7 * 24 * 3600000,
		GroupInitialRebalanceDelayMs:         3000,
		GroupMinSessionTimeoutMs:             6000,
		GroupMaxSessionTimeoutMs:             1800000,
		GroupMaxSize:                         2147483647,
		ConsumerHeartbeatIntervalMs:          5000,
		ConsumerSessionTimeoutMs:             45000,
		ConsumerGroupMaxSize:                 2147483647,
		TransactionMaxTimeoutMs:              900000,
		TransactionalIDExpirationMs:          604800000,
		ProducerIDExpirationMs:               86400000,
		TransactionStateLogNumPartitions:     50,
		TransactionStateLogReplicationFactor: 1,
		Controller:                           true,
		BrokerRole:                           true,
		InterBrokerListener:                  "PLAINTEXT",
		BrokerHeartbeatIntervalMs:            250,
		BrokerSessionTimeoutMs:               1500,
		ControlledShutdown:                   true,
		AutoLeaderRebalance:                  true,
		LeaderImbalanceCheckIntervalS:        300,
		LeaderImbalancePercentage:            10,
		ReplicaLagTimeMaxMs:                  30000,
		ReplicaFetchMaxBytes:                 1048576,
		ReplicaFetchResponseMaxBytes:         10485760,
		ReplicaFetchWaitMaxMs:                500,
		ReplicaFetchMinBytes:                 1,
		ReplicaFetchBackoffMs:                1000,
		NumReplicaFetchers:                   1,
		CleanerIOMaxBytesPerSecond:           256 << 20,
	}
	got := *b
	got.Values, got.Sources = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	for k, s := range b.Sources {
		if s != SourceDefaultConfig {
			t.Errorf("source of %s = %v, want DEFAULT_CONFIG", k, s)
		}
	}
	for _, k := range []string{"log.dirs", "advertised.listeners", "log.retention.ms", "log.retention.minutes", "cluster.id"} {
		if _, ok := b.Values[k]; ok {
			t.Errorf("%s has a value by default; Kafka's default is null", k)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `
# all four layers set num.partitions; three set log.dirs; two set node.id
num.partitions=2
log.dirs=/file
node.id=7
log.retention.hours=24
unknown.key=1
broker.id=3
`)
	tests := []struct {
		name      string
		path      string
		env       []string
		flags     map[string]string
		wantParts int32
		wantDirs  []string
		wantNode  int32
		wantSrc   Source
	}{
		{"defaults", "", nil, nil, 1, []string{"./poste-data"}, 1, SourceDefaultConfig},
		{"file", file, nil, nil, 2, []string{"/file"}, 7, SourceStaticBrokerConfig},
		{"env beats file", file, []string{"POSTE_NUM_PARTITIONS=3", "POSTE_LOG_DIRS=/env1,/env2", "PATH=/bin"}, nil,
			3, []string{"/env1", "/env2"}, 7, SourceStaticBrokerConfig},
		{"flags beat env", file, []string{"POSTE_NUM_PARTITIONS=3", "POSTE_LOG_DIRS=/env"}, map[string]string{"num.partitions": "4"},
			4, []string{"/env"}, 7, SourceStaticBrokerConfig},
		{"env alone", "", []string{"POSTE_NODE_ID=9"}, nil, 1, []string{"./poste-data"}, 9, SourceDefaultConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, err := Load(tt.path, tt.env, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if b.NumPartitions != tt.wantParts || !slices.Equal(b.LogDirs, tt.wantDirs) || b.NodeID != tt.wantNode {
				t.Fatalf("got partitions %d dirs %v node %d", b.NumPartitions, b.LogDirs, b.NodeID)
			}
			if b.Sources["num.partitions"] != tt.wantSrc {
				t.Fatalf("source %v, want %v", b.Sources["num.partitions"], tt.wantSrc)
			}
		})
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	file := writeFile(t, "zeta=1\nalpha=2\nnum.partitions=3\n")
	b, unknown, err := Load(file, []string{"POSTE_NOT_A_KEY=1", "POSTE_BOOTSTRAP_SERVERS=x"}, map[string]string{"beta": "1", "zeta": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "beta", "zeta"}; !slices.Equal(unknown, want) {
		t.Fatalf("unknown = %v, want %v", unknown, want)
	}
	if b.NumPartitions != 3 {
		t.Fatalf("known key ignored")
	}
}

func TestLoadNormalisesValues(t *testing.T) {
	b, _, err := Load("", nil, map[string]string{
		"auto.create.topics.enable":       " FALSE ",
		"log.cleanup.policy":              "compact , delete",
		"num.partitions":                  "+6",
		"log.cleaner.min.cleanable.ratio": "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"auto.create.topics.enable": "false", "log.cleanup.policy": "compact,delete", "num.partitions": "6",
		"log.cleaner.min.cleanable.ratio": "1.0",
	} {
		if b.Values[k] != want {
			t.Errorf("%s = %q, want %q", k, b.Values[k], want)
		}
	}
	if b.AutoCreateTopics || b.NumPartitions != 6 || b.CleanupPolicy != "compact,delete" {
		t.Errorf("typed fields not normalised: %v %v %q", b.AutoCreateTopics, b.NumPartitions, b.CleanupPolicy)
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.properties"), nil, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	bad := writeFile(t, `k=\uXYZW`)
	if _, _, err := Load(bad, nil, nil); !errors.Is(err, ErrMalformedProperties) {
		t.Errorf("malformed file: err = %v", err)
	}
}

// TestLoadValidation covers every way a broker value is rejected; each error
// must name the key, the value and why, and wrap ErrInvalidConfig.
func TestLoadValidation(t *testing.T) {
	tests := []struct {
		key, value string
		want       string
	}{
		{"num.partitions", "abc", "Invalid value abc for configuration num.partitions: Not a number of type INT"},
		{"num.partitions", "2147483648", "Invalid value 2147483648 for configuration num.partitions: Not a number of type INT"},
		{"num.partitions", "0", "Invalid value 0 for configuration num.partitions: Value must be at least 1"},
		{"offsets.topic.replication.factor", "40000", "Invalid value 40000 for configuration offsets.topic.replication.factor: Not a number of type SHORT"},
		{"default.replication.factor", "40000", "Invalid value 40000 for configuration default.replication.factor: Value must be no more than 32767"},
		{"log.retention.bytes", "1.5", "Invalid value 1.5 for configuration log.retention.bytes: Not a number of type LONG"},
		{"log.cleaner.min.cleanable.ratio", "x", "Invalid value x for configuration log.cleaner.min.cleanable.ratio: Not a number of type DOUBLE"},
		{"log.cleaner.min.cleanable.ratio", "1.5", "Invalid value 1.5 for configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1.0"},
		{"log.cleaner.min.cleanable.ratio", "-0.1", "Invalid value -0.1 for configuration log.cleaner.min.cleanable.ratio: Value must be at least 0.0"},
		{"auto.create.topics.enable", "yes", "Invalid value yes for configuration auto.create.topics.enable: Expected value to be either true or false"},
		{"log.segment.bytes", "1000", "Invalid value 1000 for configuration log.segment.bytes: Value must be at least 1048576"},
		{"log.flush.policy", "sometimes", "Invalid value sometimes for configuration log.flush.policy: String must be one of: always, interval, never"},
		{"log.message.timestamp.type", "createtime", "Invalid value createtime for configuration log.message.timestamp.type: String must be one of: CreateTime, LogAppendTime"},
		{"compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"},
		{"log.cleanup.policy", "delete,shred", "Invalid value shred for configuration log.cleanup.policy: String must be one of: compact, delete"},
		{"log.cleanup.policy", "", "Invalid value  for configuration log.cleanup.policy: Empty list"},
		{"compression.gzip.level", "0", "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9, or -1"},
		{"compression.zstd.level", "23", "Invalid value 23 for configuration compression.zstd.level: Value must be no more than 22"},
		{"log.dir", " ", "Invalid value  for configuration log.dir: Value must not be empty"},
		{"log.dirs", "/a,,/b", "Invalid value /a,,/b for configuration log.dirs: Empty directory in list"},
		{"log.dirs", "/a,/a", "Invalid value /a,/a for configuration log.dirs: Duplicate directory /a"},
		{"log.retention.ms", "0", "Invalid value 0 for configuration log.retention.ms: log.retention.ms must be unlimited (-1) or, equal or greater than 1"},
		{"log.retention.minutes", "0", "Invalid value 0 for configuration log.retention.minutes: log.retention.ms must be unlimited (-1) or, equal or greater than 1"},
		{"log.cleaner.min.compaction.lag.ms", "10", ""}, // valid alone; see the cross-key case below
		{"listeners", "", "Invalid value  for configuration listeners: At least one listener is required"},
		{"listeners", "127.0.0.1:9092", "Invalid value 127.0.0.1:9092 for configuration listeners: Unable to parse 127.0.0.1:9092 as a listener NAME://host:port: missing ://"},
		{"listeners", "PLAINTEXT://localhost", "Invalid value PLAINTEXT://localhost for configuration listeners: Unable to parse PLAINTEXT://localhost as a listener NAME://host:port: want host:port"},
		{"listeners", "PLAINTEXT://:70000", "Invalid value PLAINTEXT://:70000 for configuration listeners: Unable to parse PLAINTEXT://:70000 as a listener NAME://host:port: port must be 0-65535"},
		{"listeners", "PLAIN TEXT://:1", "Invalid value PLAIN TEXT://:1 for configuration listeners: Unable to parse PLAIN TEXT://:1 as a listener NAME://host:port: listener name must be letters, digits, '_' or '-'"},
		{"listeners", "PLAINTEXT://:1,plaintext://:2", "Invalid value PLAINTEXT://:1,plaintext://:2 for configuration listeners: Each listener must have a different name, PLAINTEXT is repeated"},
		{"listeners", "PLAINTEXT://:1,SSL://:1", "Invalid value PLAINTEXT://:1,SSL://:1 for configuration listeners: Each listener must have a different port, 1 is used by PLAINTEXT and SSL"},
		{"listeners", "INTERNAL://:1", "Invalid value INTERNAL://:1 for configuration listeners: No security protocol defined for listener INTERNAL in listener.security.protocol.map"},
		{"listener.security.protocol.map", "PLAINTEXT", "Invalid value PLAINTEXT for configuration listener.security.protocol.map: Unable to parse PLAINTEXT as NAME:PROTOCOL"},
		{"listener.security.protocol.map", "PLAINTEXT:TLS", "Invalid value PLAINTEXT:TLS for configuration listener.security.protocol.map: Unknown security protocol TLS for listener PLAINTEXT, must be one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"},
		{"listener.security.protocol.map", "A:SSL,a:SSL", "Invalid value A:SSL,a:SSL for configuration listener.security.protocol.map: Listener name A is mapped twice"},
		{"advertised.listeners", "SSL://h:1", "Invalid value SSL://h:1 for configuration advertised.listeners: Listener SSL is not defined in listeners"},
		{"advertised.listeners", "PLAINTEXT://0.0.0.0:9092", "Invalid value PLAINTEXT://0.0.0.0:9092 for configuration advertised.listeners: advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address."},
		{"advertised.listeners", " ", "Invalid value  for configuration advertised.listeners: At least one listener is required"},
		{"group.min.session.timeout.ms", "2000000", "Invalid value 2000000 for configuration group.min.session.timeout.ms: must not exceed group.max.session.timeout.ms (1800000)"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			_, _, err := Load("", nil, map[string]string{tt.key: tt.value})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error does not wrap ErrInvalidConfig: %v", err)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Name != tt.key {
				t.Errorf("error does not name %s: %#v", tt.key, ce)
			}
			if want := tt.want + " (set by flag --" + tt.key + ")"; err.Error() != want {
				t.Errorf("err  = %q\nwant %q", err, want)
			}
			if d, ok := LookupBroker(tt.key); ok && !strings.Contains(tt.want, "listener") && !strings.Contains(tt.want, "must be unlimited") && !strings.Contains(tt.want, "must not exceed") {
				// Single-key failures are also caught by the key's own Validate.
				if verr := d.Validate(tt.value); verr == nil || verr.Error() != tt.want {
					t.Errorf("Validate(%q) = %v", tt.value, verr)
				}
			}
		})
	}
}

func TestLoadCrossKeyErrors(t *testing.T) {
	_, _, err := Load("", nil, map[string]string{
		"log.cleaner.min.compaction.lag.ms": "10", "log.cleaner.max.compaction.lag.ms": "5"})
	want := "conflict broker config setting log.cleaner.min.compaction.lag.ms (10) > log.cleaner.max.compaction.lag.ms (5) (set by flag --log.cleaner.min.compaction.lag.ms)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("compaction lags: err = %v", err)
	}
	// The error says where the bad value came from.
	_, _, err = Load(writeFile(t, "num.partitions=x"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "(set by file ") {
		t.Errorf("file origin missing: %v", err)
	}
	_, _, err = Load("", []string{"POSTE_NUM_PARTITIONS=x"}, nil)
	if err == nil || !strings.HasSuffix(err.Error(), "(set by environment variable POSTE_NUM_PARTITIONS)") {
		t.Errorf("env origin missing: %v", err)
	}
}

func TestListeners(t *testing.T) {
	pinHostname(t)
	pt := func(name, host string, port int) Listener {
		return Listener{Name: name, Host: host, Port: port, SecurityProtocol: "PLAINTEXT"}
	}
	tests := []struct {
		name           string
		set            map[string]string
		listeners, adv []Listener
	}{
		{"default", nil, []Listener{pt("PLAINTEXT", "127.0.0.1", 9092)}, []Listener{pt("PLAINTEXT", "localhost", 9092)}},
		{"wildcard advertises host name", map[string]string{"listeners": "PLAINTEXT://:9092"},
			[]Listener{pt("PLAINTEXT", "", 9092)}, []Listener{pt("PLAINTEXT", "node-a.example", 9092)}},
		{"0.0.0.0 advertises host name", map[string]string{"listeners": "PLAINTEXT://0.0.0.0:19092"},
			[]Listener{pt("PLAINTEXT", "0.0.0.0", 19092)}, []Listener{pt("PLAINTEXT", "node-a.example", 19092)}},
		{"ipv6", map[string]string{"listeners": "PLAINTEXT://[::1]:9092"},
			[]Listener{pt("PLAINTEXT", "::1", 9092)}, []Listener{pt("PLAINTEXT", "::1", 9092)}},
		{"ephemeral port", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0"},
			[]Listener{pt("PLAINTEXT", "127.0.0.1", 0)}, []Listener{pt("PLAINTEXT", "localhost", 0)}},
		{"explicit advertised keeps 127.0.0.1", map[string]string{"advertised.listeners": "PLAINTEXT://127.0.0.1:9092"},
			[]Listener{pt("PLAINTEXT", "127.0.0.1", 9092)}, []Listener{pt("PLAINTEXT", "127.0.0.1", 9092)}},
		{"explicit advertised empty host", map[string]string{"advertised.listeners": "PLAINTEXT://:9092"},
			[]Listener{pt("PLAINTEXT", "127.0.0.1", 9092)}, []Listener{pt("PLAINTEXT", "node-a.example", 9092)}},
		{"two named listeners", map[string]string{
			"listeners":                      "internal://10.0.0.1:9093, EXTERNAL://0.0.0.0:9092",
			"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL",
			"advertised.listeners":           "EXTERNAL://broker.example.com:443"},
			[]Listener{pt("INTERNAL", "10.0.0.1", 9093), {Name: "EXTERNAL", Host: "0.0.0.0", Port: 9092, SecurityProtocol: "SASL_SSL"}},
			[]Listener{{Name: "EXTERNAL", Host: "broker.example.com", Port: 443, SecurityProtocol: "SASL_SSL"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, err := Load("", nil, tt.set)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Listeners, tt.listeners) || !slices.Equal(b.AdvertisedListeners, tt.adv) {
				t.Fatalf("listeners %v advertised %v", b.Listeners, b.AdvertisedListeners)
			}
		})
	}
	if got := (Listener{Name: "PLAINTEXT", Host: "::1", Port: 9092}).String(); got != "PLAINTEXT://[::1]:9092" {
		t.Errorf("String() = %q", got)
	}
}

func TestListenersHostnameUnknown(t *testing.T) {
	old := hostname
	hostname = func() (string, error) { return "", errors.New("no name") }
	t.Cleanup(func() { hostname = old })
	if _, _, err := Load("", nil, map[string]string{"listeners": "PLAINTEXT://:9092"}); err == nil {
		t.Fatal("wildcard listener with unknown host name accepted")
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"log.dirs": "POSTE_LOG_DIRS", "node.id": "POSTE_NODE_ID",
		"listener.security.protocol.map": "POSTE_LISTENER_SECURITY_PROTOCOL_MAP",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", key, got, want)
		}
	}
	// Every broker key is reachable from the environment, and no two share a name.
	seen := map[string]string{}
	for _, d := range BrokerDefs() {
		n := EnvName(d.Name)
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share %s", other, d.Name, n)
		}
		seen[n] = d.Name
		env := []string{n + "=" + sampleValue(d)}
		if d.Name == "controller.quorum.voters" { // a voter needs its controller listener
			env = append(env, "POSTE_LISTENERS=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")
		}
		b, _, err := Load("", env, nil)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if b.Sources[d.Name] != SourceStaticBrokerConfig {
			t.Errorf("%s did not set %s", n, d.Name)
		}
	}
}

// sampleValue returns a valid, non-default-looking value for a key.
func sampleValue(d Def) string {
	switch d.Name {
	case "listeners", "advertised.listeners":
		return "PLAINTEXT://127.0.0.1:9092"
	case "listener.security.protocol.map":
		return "PLAINTEXT:PLAINTEXT"
	case "controller.quorum.voters":
		return "1@localhost:9093"
	case "inter.broker.listener.name":
		return "PLAINTEXT"
	}
	if !d.NullDefault {
		return d.Default
	}
	switch d.Type {
	case TypeLong, TypeInt:
		return "5"
	}
	return "x"
}

func TestFlagKeysAreBrokerKeys(t *testing.T) {
	for _, k := range FlagKeys() {
		if _, ok := LookupBroker(k); !ok {
			t.Errorf("flag key %s is not a broker key", k)
		}
	}
}

func TestClusterKeys(t *testing.T) {
	env := []string{
		"POSTE_NODE_ID=2",
		"POSTE_LISTENERS=PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193",
		"POSTE_CONTROLLER_QUORUM_VOTERS=1@localhost:9093,2@localhost:9193,3@localhost:9293",
		"POSTE_BROKER_RACK=r2",
	}
	b, _, err := Load("", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Voters) != 3 || b.Voters[1] != (Voter{ID: 2, Host: "localhost", Port: 9193}) {
		t.Errorf("voters %+v", b.Voters)
	}
	if len(b.AdvertisedListeners) != 1 || b.AdvertisedListeners[0].Name != "PLAINTEXT" {
		t.Errorf("controller listener advertised: %+v", b.AdvertisedListeners)
	}
	if !reflect.DeepEqual(b.ControllerListeners, []string{"CONTROLLER"}) || b.InterBrokerListener != "PLAINTEXT" {
		t.Errorf("controller listeners %v, inter-broker %q", b.ControllerListeners, b.InterBrokerListener)
	}
	if b.Rack == nil || *b.Rack != "r2" || !b.Controller || !b.BrokerRole {
		t.Errorf("rack %v roles %v %v", b.Rack, b.Controller, b.BrokerRole)
	}
	for _, bad := range [][]string{
		{"POSTE_CONTROLLER_QUORUM_VOTERS=1@localhost"},
		{"POSTE_CONTROLLER_QUORUM_VOTERS=1@localhost:1,1@localhost:2"},
		// A controller whose id is not a voter.
		{"POSTE_LISTENERS=PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193", "POSTE_CONTROLLER_QUORUM_VOTERS=7@localhost:9093"},
		// A voter without a controller listener.
		{"POSTE_CONTROLLER_QUORUM_VOTERS=1@localhost:9093"},
		// A single node needs both roles.
		{"POSTE_PROCESS_ROLES=broker"},
		{"POSTE_BROKER_SESSION_TIMEOUT_MS=100", "POSTE_BROKER_HEARTBEAT_INTERVAL_MS=200"},
	} {
		if _, _, err := Load("", bad, nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
