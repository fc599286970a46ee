package compat

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The seed's two parties: keyed records must each land in one partition, in send order,
// the same partition whichever client sent them.
var partyKeys = []string{"Cool pool party", "Horrible Halloween party"}

// postmarkBase is a CreateTime in February 2019, well before any record the broker stamps.
const postmarkBase = int64(1_550_000_000_000)

// franzName labels records that the reference client, franz-go, produced itself.
const franzName = "franz-go"

var codecs = []string{"gzip", "snappy", "lz4", "zstd"}

// codecAttr is each codec's value in the low bits of a batch's attributes.
var codecAttr = map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

type suite struct {
	b       *broker
	clients []client // kcat, confluent-kafka-python, kafkajs
	py, js  *scriptClient
}

// TestThirdPartyClients runs every scenario against one broker. Topics are created first
// (by confluent-kafka-python and kafkajs); each later scenario writes its own records and
// reads them back with franz-go and with every client.
func TestThirdPartyClients(t *testing.T) {
	dir := suiteDir(t)
	requireClients(t, dir)
	// A short cleaner interval lets the compaction scenario see its topics cleaned within
	// seconds. Records stamped in 2019 (postmarks) must not expire meanwhile: no time limit.
	b := startBroker(t, "--override", "log.retention.check.interval.ms="+strconv.Itoa(cleanerIntervalMs),
		"--override", "log.retention.ms=-1")
	py := &scriptClient{label: "confluent-kafka-python", argv: []string{pythonBin, "compat.py"}, bootstrap: b.addr, dir: dir}
	js := &scriptClient{label: "kafkajs", argv: []string{"node", "compat.js"}, bootstrap: b.addr, dir: dir}
	s := &suite{b: b, clients: []client{kcatClient{bootstrap: b.addr}, py, js}, py: py, js: js}

	if !t.Run("CreateTopics", s.createTopics) {
		t.FailNow()
	}
	t.Run("KeyedRecordsKeepPartitionAndOrder", s.keyed)
	t.Run("UnkeyedRecordsSpread", s.unkeyed)
	t.Run("ConsumeFromBeginning", s.consumeFromBeginning)
	t.Run("HeadersAndCreateTime", s.headersAndTimestamps)
	t.Run("ListOffsetsByTimestamp", s.listOffsetsByTimestamp)
	t.Run("CompressedBatches", s.compressedBatches)
	t.Run("LargeRecord", s.largeRecord)
	t.Run("ConsumerGroups", s.consumerGroups)
	t.Run("Transactions", s.transactions)
	t.Run("CompactedTopic", s.compactedTopic)
}

func (s *suite) createTopics(t *testing.T) {
	topics := []struct {
		by         topicCreator
		topic      string
		partitions int32
	}{
		{s.py, "parties", 11},
		{s.py, "postmarks", 3},
		{s.js, "codecs", 1},
		{s.js, "big", 1},
	}
	for _, tc := range topics {
		if err := tc.by.createTopic(t, tc.topic, tc.partitions); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := s.b.admin(t).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range topics {
		d, ok := details[tc.topic]
		if !ok || d.Err != nil {
			t.Fatalf("topic %s after creation: present %v, error %v", tc.topic, ok, d.Err)
		}
		if got := int32(len(d.Partitions)); got != tc.partitions {
			t.Errorf("topic %s has %d partitions, want %d", tc.topic, got, tc.partitions)
		}
	}
	// Creating an existing topic must fail (TOPIC_ALREADY_EXISTS), for both clients.
	for _, c := range []*scriptClient{s.py, s.js} {
		if err := c.createTopic(t, "parties", 11); err == nil {
			t.Errorf("%s created parties a second time", c.name())
		}
	}
}

// value tags each record with who sent it, what for and its send index.
func value(producer, what string, i int) string {
	return fmt.Sprintf("%s|%s|%d", producer, what, i)
}

// parseValue undoes value; ok is false for a value not in that form.
func parseValue(v []byte) (producer, what string, i int, ok bool) {
	parts := strings.SplitN(string(v), "|", 4)
	if len(parts) < 3 {
		return "", "", 0, false
	}
	i, err := strconv.Atoi(parts[2])
	return parts[0], parts[1], i, err == nil
}

func ptr[T any](v T) *T { return &v }

// produceFranz sends recs with franz-go, the reference producer.
func (s *suite) produceFranz(t *testing.T, topic, codec string, recs []sendRecord) error {
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	cl := s.b.franz(t, kgo.ProducerBatchCompression(codecs[codec]), kgo.DefaultProduceTopic(topic))
	var krecs []*kgo.Record
	for _, r := range recs {
		kr := &kgo.Record{Value: []byte(r.Value)}
		if r.Key != nil {
			kr.Key = []byte(*r.Key)
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		krecs = append(krecs, kr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, krecs...).FirstErr()
}

func (s *suite) keyed(t *testing.T) {
	const perKey = 5
	producers := append(slices.Clone(s.clients), nil) // nil: franz-go
	for _, c := range producers {
		name := franzName
		if c != nil {
			name = c.name()
		}
		var recs []sendRecord
		for i := range perKey {
			for _, k := range partyKeys {
				recs = append(recs, sendRecord{Key: ptr(k), Value: value(name, k, i)})
			}
		}
		var err error
		if c == nil {
			err = s.produceFranz(t, "parties", "none", recs)
		} else {
			err = c.produce(t, "parties", "none", recs)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	want := map[string]int32{}
	part := kgo.StickyKeyPartitioner(nil).ForTopic("parties")
	for _, k := range partyKeys {
		want[k] = int32(part.Partition(&kgo.Record{Key: []byte(k)}, 11))
	}
	type sent struct{ producer, key string }
	seen := map[sent][]int{}
	for _, r := range s.b.readAll(t, "parties") {
		if r.Key == nil {
			continue
		}
		producer, key, i, ok := parseValue(r.Value)
		if !ok || key != string(r.Key) {
			t.Errorf("unexpected record %q=%q in parties[%d]@%d", r.Key, r.Value, r.Partition, r.Offset)
			continue
		}
		if r.Partition != want[key] {
			t.Errorf("%s: record %q keyed %q is in partition %d, want %d (murmur2)", producer, r.Value, key, r.Partition, want[key])
		}
		seen[sent{producer, key}] = append(seen[sent{producer, key}], i)
	}
	for _, c := range producers {
		name := franzName
		if c != nil {
			name = c.name()
		}
		for _, k := range partyKeys {
			// readAll orders by offset: the send indexes must come back in send order.
			if got := seen[sent{name, k}]; !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
				t.Errorf("%s: records keyed %q read back in send order %v, want [0 1 2 3 4]", name, k, got)
			}
		}
	}
}

func (s *suite) unkeyed(t *testing.T) {
	const n = 33
	for _, c := range s.clients {
		var recs []sendRecord
		for i := range n {
			recs = append(recs, sendRecord{Value: value(c.name(), "unkeyed", i)})
		}
		if err := c.produce(t, "parties", "none", recs); err != nil {
			t.Errorf("%s: %v", c.name(), err)
		}
	}
	partitions := map[string]map[int32]int{}
	count := map[string]int{}
	for _, r := range s.b.readAll(t, "parties") {
		if r.Key != nil {
			continue
		}
		producer, what, _, ok := parseValue(r.Value)
		if !ok || what != "unkeyed" {
			t.Errorf("unexpected unkeyed record %q in parties[%d]@%d", r.Value, r.Partition, r.Offset)
			continue
		}
		if partitions[producer] == nil {
			partitions[producer] = map[int32]int{}
		}
		partitions[producer][r.Partition]++
		count[producer]++
	}
	for _, c := range s.clients {
		if count[c.name()] != n {
			t.Errorf("%s: %d unkeyed records read back, want %d", c.name(), count[c.name()], n)
		}
		// Random or round-robin placement of 33 records over 11 partitions uses far more
		// than 3 of them; fewer means the client (or the broker) pinned them.
		if len(partitions[c.name()]) < 3 {
			t.Errorf("%s: unkeyed records landed in partitions %v, want them spread", c.name(), partitions[c.name()])
		}
	}
}

func (s *suite) consumeFromBeginning(t *testing.T) {
	ref := s.b.readAll(t, "parties")
	if len(ref) == 0 {
		t.Fatal("parties is empty: the producing scenarios failed")
	}
	for _, c := range s.clients {
		got, err := c.consume(t, "parties")
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		compareRecords(t, c.name(), ref, got)
	}
}

func (s *suite) headersAndTimestamps(t *testing.T) {
	postmarked := func(name string, partition int32) []sendRecord {
		var recs []sendRecord
		for i := range 5 {
			recs = append(recs, sendRecord{
				Key:       ptr("Santa"),
				Value:     value(name, "postmark", i),
				Headers:   [][2]string{{"postmark", "North Pole"}, {"seq", strconv.Itoa(i)}},
				Timestamp: ptr(postmarkBase + int64(i)*1000),
				Partition: ptr(partition),
			})
		}
		return recs
	}
	if err := s.py.produce(t, "postmarks", "none", postmarked(s.py.name(), 0)); err != nil {
		t.Error(err)
	}
	if err := s.js.produce(t, "postmarks", "none", postmarked(s.js.name(), 1)); err != nil {
		t.Error(err)
	}
	// kcat sets no timestamps: its records carry the CreateTime of its own clock.
	before := time.Now().UnixMilli()
	var kcatRecs []sendRecord
	for i := range 3 {
		kcatRecs = append(kcatRecs, sendRecord{Key: ptr("Santa"), Value: value("kcat", "postmark", i),
			Headers: [][2]string{{"postmark", "North Pole"}, {"via", "kcat"}}, Partition: ptr(int32(2))})
	}
	if err := (kcatClient{bootstrap: s.b.addr}).produce(t, "postmarks", "none", kcatRecs); err != nil {
		t.Error(err)
	}
	after := time.Now().UnixMilli()

	ref := s.b.readAll(t, "postmarks")
	perPartition := map[int32]int{}
	for _, r := range ref {
		perPartition[r.Partition]++
		producer, _, i, ok := parseValue(r.Value)
		if !ok {
			t.Errorf("unexpected record %q in postmarks[%d]", r.Value, r.Partition)
			continue
		}
		if r.Attrs.TimestampType() != 0 {
			t.Errorf("%s: record %q has timestamp type %d, want CreateTime (0)", producer, r.Value, r.Attrs.TimestampType())
		}
		var wantHeaders [][2]string
		switch r.Partition {
		case 0, 1:
			wantHeaders = [][2]string{{"postmark", "North Pole"}, {"seq", strconv.Itoa(i)}}
			if want := postmarkBase + int64(i)*1000; r.Timestamp.UnixMilli() != want {
				t.Errorf("%s: record %q has timestamp %d, want %d", producer, r.Value, r.Timestamp.UnixMilli(), want)
			}
		case 2:
			wantHeaders = [][2]string{{"postmark", "North Pole"}, {"via", "kcat"}}
			// A second of slack either side for the client's own clock reading.
			if ts := r.Timestamp.UnixMilli(); ts < before-1000 || ts > after+1000 {
				t.Errorf("kcat: record %q has timestamp %d, outside its send window [%d, %d]", r.Value, ts, before, after)
			}
		}
		if got := headerPairs(r.Headers); !slices.Equal(got, wantHeaders) {
			t.Errorf("%s: record %q has headers %q, want %q", producer, r.Value, got, wantHeaders)
		}
	}
	if want := (map[int32]int{0: 5, 1: 5, 2: 3}); !mapsEqual(perPartition, want) {
		t.Errorf("postmarks holds %v records per partition, want %v", perPartition, want)
	}
	// Every client decodes every client's headers and timestamps alike.
	for _, c := range s.clients {
		got, err := c.consume(t, "postmarks")
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		compareRecords(t, c.name(), ref, got)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func headerPairs(hs []kgo.RecordHeader) [][2]string {
	var out [][2]string
	for _, h := range hs {
		out = append(out, [2]string{h.Key, string(h.Value)})
	}
	return out
}

// listOffsetsByTimestamp looks up postmarks[0], written by headersAndTimestamps: five records
// stamped postmarkBase + i s at offsets 0..4.
func (s *suite) listOffsetsByTimestamp(t *testing.T) {
	timestamps := []int64{0, postmarkBase, postmarkBase + 2500, postmarkBase + 4000, postmarkBase + 10_000}
	want := []int64{0, 0, 3, 4, -1}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := s.b.admin(t)
	for i, ts := range timestamps[:4] {
		listed, err := adm.ListOffsetsAfterMilli(ctx, ts, "postmarks")
		if err != nil {
			t.Fatal(err)
		}
		o, ok := listed.Lookup("postmarks", 0)
		if !ok || o.Err != nil || o.Offset != want[i] {
			t.Errorf("franz-go: offset after %d is %+v, want %d", ts, o, want[i])
		}
	}
	for _, c := range s.clients {
		got, err := c.offsetsForTimes(t, "postmarks", 0, timestamps)
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		w := slices.Clone(want)
		if c.name() == "kafkajs" {
			// kafkajs answers "no record that recent" with the partition's end offset.
			w[len(w)-1] = 5
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s: offsets for times %v are %v, want %v", c.name(), timestamps, got, w)
		}
	}
}

func (s *suite) compressedBatches(t *testing.T) {
	const perCodec = 10
	// Repetitive text, so that every codec shrinks it: librdkafka sends a batch uncompressed
	// when compression would not make it smaller.
	filler := strings.Repeat("Distributed streams processing system. ", 8)
	producers := append(slices.Clone(s.clients), nil) // nil: franz-go
	for _, c := range producers {
		name := franzName
		if c != nil {
			name = c.name()
		}
		for _, codec := range codecs {
			var recs []sendRecord
			for i := range perCodec {
				recs = append(recs, sendRecord{Key: ptr(codec), Value: value(name, codec, i) + "|" + filler})
			}
			var err error
			if c == nil {
				err = s.produceFranz(t, "codecs", codec, recs)
			} else {
				err = c.produce(t, "codecs", codec, recs)
			}
			if err != nil {
				t.Errorf("%s %s: %v", name, codec, err)
			}
		}
	}

	ref := s.b.readAll(t, "codecs")
	type sent struct{ producer, codec string }
	count := map[sent]int{}
	stored := map[sent]map[uint8]bool{} // codecs of the batches holding each run's records
	for _, r := range ref {
		producer, codec, _, ok := parseValue(r.Value)
		if !ok {
			t.Errorf("unexpected record %q in codecs", r.Value)
			continue
		}
		k := sent{producer, codec}
		count[k]++
		if stored[k] == nil {
			stored[k] = map[uint8]bool{}
		}
		stored[k][r.Attrs.CompressionType()] = true
	}
	for _, c := range producers {
		name := franzName
		if c != nil {
			name = c.name()
		}
		for _, codec := range codecs {
			k := sent{name, codec}
			if count[k] != perCodec {
				t.Errorf("%s: %d %s records read back, want %d", name, count[k], codec, perCodec)
			}
			if want := codecAttr[codec]; len(stored[k]) != 1 || !stored[k][want] {
				t.Errorf("%s: records sent with %s are stored in batches with codecs %v, want only %d%s",
					name, codec, slices.Sorted(maps.Keys(stored[k])), want, librdkafkaCodecNote(name, codec))
			}
		}
	}
	// Each client decompresses every other client's batches.
	for _, c := range s.clients {
		got, err := c.consume(t, "codecs")
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		compareRecords(t, c.name(), ref, got)
	}
}

// librdkafkaCodecNote explains a known cause when a librdkafka client sent a batch without
// the codec it was configured with.
func librdkafkaCodecNote(producer, codec string) string {
	if producer != "kcat" && producer != "confluent-kafka-python" {
		return ""
	}
	switch codec {
	case "gzip", "snappy":
		return " (librdkafka before 2.11.1 compresses with gzip, snappy and lz4 only if the broker's" +
			" ApiVersions lists Produce v0; it then logs \"Broker does not support compression type\")"
	case "lz4":
		return " (librdkafka before 2.11.1 compresses with lz4 only if the broker's ApiVersions lists" +
			" Produce v0 and FindCoordinator v0)"
	}
	return ""
}

// bigValue is a 900 KiB text value that depends on its producer, and that compression
// could not shrink much.
func bigValue(producer string) string {
	const size = 900 << 10
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	seed := sha256.Sum256([]byte(producer))
	rng := rand.New(rand.NewChaCha8(seed))
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteString(value(producer, "big", 0) + "|")
	for sb.Len() < size {
		sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
	}
	return sb.String()
}

func (s *suite) largeRecord(t *testing.T) {
	producers := append(slices.Clone(s.clients), nil) // nil: franz-go
	want := map[string]string{}
	for _, c := range producers {
		name := franzName
		if c != nil {
			name = c.name()
		}
		want[name] = bigValue(name)
		recs := []sendRecord{{Key: ptr("big"), Value: want[name]}}
		var err error
		if c == nil {
			err = s.produceFranz(t, "big", "none", recs)
		} else {
			err = c.produce(t, "big", "none", recs)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	ref := s.b.readAll(t, "big")
	got := map[string]bool{}
	for _, r := range ref {
		producer, _, _, ok := parseValue(r.Value)
		if !ok || string(r.Value) != want[producer] {
			t.Errorf("big@%d holds %s, not a value any producer sent", r.Offset, describe(r.Value))
			continue
		}
		got[producer] = true
	}
	if len(got) != len(producers) {
		t.Errorf("big holds the records of %v, want one from each of the %d producers", got, len(producers))
	}
	for _, c := range s.clients {
		recs, err := c.consume(t, "big")
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		compareRecords(t, c.name(), ref, recs)
	}
}

// describe prints a value short enough for a failure message.
func describe[T string | []byte](v T) string {
	if len(v) <= 80 {
		return strconv.Quote(string(v))
	}
	return fmt.Sprintf("%q… (%d bytes, sha256 %x)", string(v[:40]), len(v), sha256.Sum256([]byte(v)))
}

// compareRecords fails the test, with the first few differences, unless a client decoded
// exactly the records franz-go read.
func compareRecords(t *testing.T, who string, want []*kgo.Record, got []gotRecord) {
	t.Helper()
	const maxReports = 5
	diffs := diffRecords(want, got)
	for i, d := range diffs {
		if i == maxReports {
			t.Errorf("%s: %d more differences", who, len(diffs)-maxReports)
			break
		}
		t.Errorf("%s: %s", who, d)
	}
}

// diffRecords lists how got differs from want: records missing, read twice or unknown, and
// differing keys, values, headers, timestamps or timestamp types. Order does not matter.
func diffRecords(want []*kgo.Record, got []gotRecord) []string {
	type at struct {
		topic     string
		partition int32
		offset    int64
	}
	var diffs []string
	byOffset := map[at]gotRecord{}
	for _, g := range got {
		k := at{g.Topic, g.Partition, g.Offset}
		if _, dup := byOffset[k]; dup {
			diffs = append(diffs, fmt.Sprintf("read %s[%d]@%d twice", g.Topic, g.Partition, g.Offset))
		}
		byOffset[k] = g
	}
	for _, w := range want {
		k := at{w.Topic, w.Partition, w.Offset}
		g, ok := byOffset[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("did not read %s[%d]@%d (%s)", w.Topic, w.Partition, w.Offset, describe(w.Value)))
			continue
		}
		delete(byOffset, k)
		where := fmt.Sprintf("%s[%d]@%d", w.Topic, w.Partition, w.Offset)
		if (g.Key == nil) != (w.Key == nil) || (g.Key != nil && *g.Key != string(w.Key)) {
			diffs = append(diffs, fmt.Sprintf("%s key %s, want %s", where, describeOpt(g.Key), describeOpt(w.Key)))
		}
		if (g.Value == nil) != (w.Value == nil) || (g.Value != nil && *g.Value != string(w.Value)) {
			diffs = append(diffs, fmt.Sprintf("%s value %s, want %s", where, describeOpt(g.Value), describeOpt(w.Value)))
		}
		if wh := headerPairs(w.Headers); !slices.Equal(g.Headers, wh) {
			diffs = append(diffs, fmt.Sprintf("%s headers %q, want %q", where, g.Headers, wh))
		}
		if g.Timestamp != w.Timestamp.UnixMilli() {
			diffs = append(diffs, fmt.Sprintf("%s timestamp %d, want %d", where, g.Timestamp, w.Timestamp.UnixMilli()))
		}
		if wt := timestampTypes[w.Attrs.TimestampType()]; g.TimestampType != wt {
			diffs = append(diffs, fmt.Sprintf("%s timestamp type %s, want %s", where, g.TimestampType, wt))
		}
	}
	var extra []at
	for k := range byOffset {
		extra = append(extra, k)
	}
	slices.SortFunc(extra, func(a, b at) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
	})
	for _, k := range extra {
		diffs = append(diffs, fmt.Sprintf("read %s[%d]@%d, which franz-go did not", k.topic, k.partition, k.offset))
	}
	return diffs
}

// timestampTypes names kgo's timestamp types as the client scripts report them.
var timestampTypes = map[int8]string{0: "create", 1: "log_append"}

// describeOpt describes a nullable key or value.
func describeOpt[T *string | []byte](v T) string {
	switch v := any(v).(type) {
	case *string:
		if v != nil {
			return describe(*v)
		}
	case []byte:
		if v != nil {
			return describe(v)
		}
	}
	return "null"
}
