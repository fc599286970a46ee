package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
)

// Partition is one partition of a topic as the metadata log last described
// it. ID is its index in Topic.Partitions.
//
// Invariants (checked by Fold): Replicas is non-empty and distinct; ISR, ELR,
// AddingReplicas and RemovingReplicas are subsets of Replicas; ELR and ISR
// are disjoint, as are AddingReplicas and RemovingReplicas; Leader is
// NoLeader or a replica. ELR, LastKnownELR, AddingReplicas and
// RemovingReplicas are nil when empty, so equal states compare equal.
type Partition struct {
	ID             int32
	Replicas       []int32
	ISR            []int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	// ELR are the eligible leader replicas of KIP-966: replicas that left
	// the ISR while it was below min.insync.replicas and so still hold every
	// committed record. LastKnownELR is the ELR as it was when the partition
	// last lost its leader, kept for operators and recovery.
	ELR          []int32
	LastKnownELR []int32
	// AddingReplicas and RemovingReplicas describe an ongoing reassignment
	// (KIP-455): Replicas is then the union of the target and the original
	// replicas, the target being Replicas minus RemovingReplicas.
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// TargetReplicas is the replica set p will have once its reassignment
// completes (Replicas without RemovingReplicas); a new slice.
func (p *Partition) TargetReplicas() []int32 {
	out := make([]int32, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		if !slices.Contains(p.RemovingReplicas, r) {
			out = append(out, r)
		}
	}
	return out
}

// Topic is a topic of an Image. Partitions are dense: Partitions[i].ID == i.
// A Topic reachable from a published Image is shared between images and must
// never be modified, slices included.
type Topic struct {
	Name       string
	ID         [16]byte
	Partitions []Partition
}

// Broker is a registered broker. Shared between images; never modify it.
//
// Epoch is the index of the metadata entry that holds the broker's latest
// RegisterBrokerRecord, the same on every replica of the log; requests from
// the broker carry it so that the controller can reject an older
// incarnation. A fenced broker leads no partition and may not join an ISR;
// one in controlled shutdown is giving its leaderships away.
type Broker struct {
	ID                   int32
	IncarnationID        [16]byte
	Endpoints            []Endpoint
	Rack                 *string
	Epoch                int64
	Fenced               bool
	InControlledShutdown bool
}

// Usable reports whether b may lead partitions and join ISRs: unfenced and
// not in controlled shutdown.
func (b *Broker) Usable() bool { return b != nil && !b.Fenced && !b.InControlledShutdown }

// Addr returns host:port of the broker's endpoint on listener, or "" if it has none.
func (b *Broker) Addr(listener string) string {
	if b == nil {
		return ""
	}
	for _, e := range b.Endpoints {
		if e.Name == listener {
			return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
		}
	}
	return ""
}

// LeaderAddr returns the leader of a topic partition and the address of its endpoint on
// listener. ErrUnknownPartition: no such partition; ErrNoLeaderAddr: no leader, or a leader
// not registered or without that listener (the leader id is still returned).
func (img *Image) LeaderAddr(topic string, partition int32, listener string) (int32, string, error) {
	t := img.Topic(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return -1, "", fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, partition)
	}
	leader := t.Partitions[partition].Leader
	addr := img.Broker(leader).Addr(listener)
	if leader < 0 || addr == "" {
		return leader, "", fmt.Errorf("%w: %s-%d has leader %d, with no %s endpoint", ErrNoLeaderAddr, topic, partition, leader, listener)
	}
	return leader, addr, nil
}

// Image is the cluster metadata folded from the log up to AppliedIndex.
//
// Invariants: an Image is immutable once returned by Fold, so any goroutine
// may read it without locks; a newer image shares every unchanged Topic and
// Broker with the one it was built from. A nil *Image reads as the empty
// image (what Watch passes as prev on its first call).
type Image struct {
	appliedIndex   uint64
	clusterID      string
	nextProducerID int64

	topics        map[string]*Topic
	topicsByID    map[[16]byte]*Topic
	brokers       map[int32]*Broker
	topicConfigs  map[string]map[string]string // topic name → config
	brokerConfigs map[string]map[string]string // "" (cluster default) or broker id → config

	sortOnce sync.Once
	sorted   []*Topic // by name, built on first Topics call
}

// Empty returns an image with no state, the start of every fold.
func Empty() *Image {
	return &Image{
		topics:        map[string]*Topic{},
		topicsByID:    map[[16]byte]*Topic{},
		brokers:       map[int32]*Broker{},
		topicConfigs:  map[string]map[string]string{},
		brokerConfigs: map[string]map[string]string{},
	}
}

// AppliedIndex is the index of the last metadata log entry in this image.
func (img *Image) AppliedIndex() uint64 {
	if img == nil {
		return 0
	}
	return img.appliedIndex
}

// ClusterID is the cluster id, "" before bootstrap wrote it.
func (img *Image) ClusterID() string {
	if img == nil {
		return ""
	}
	return img.clusterID
}

// NextProducerID is the first producer id not yet handed out.
func (img *Image) NextProducerID() int64 {
	if img == nil {
		return 0
	}
	return img.nextProducerID
}

// Topic returns the topic by name, or nil.
func (img *Image) Topic(name string) *Topic {
	if img == nil {
		return nil
	}
	return img.topics[name]
}

// TopicByID returns the topic by id, or nil.
func (img *Image) TopicByID(id [16]byte) *Topic {
	if img == nil {
		return nil
	}
	return img.topicsByID[id]
}

// NumTopics is the number of topics.
func (img *Image) NumTopics() int {
	if img == nil {
		return 0
	}
	return len(img.topics)
}

// Topics returns every topic sorted by name. The slice is shared: do not
// modify it.
func (img *Image) Topics() []*Topic {
	if img == nil {
		return nil
	}
	img.sortOnce.Do(func() {
		img.sorted = slices.SortedFunc(maps.Values(img.topics), func(a, b *Topic) int { return cmp.Compare(a.Name, b.Name) })
	})
	return img.sorted
}

// TopicConfigs returns a copy of the dynamic configs set on a topic (only
// explicitly set keys; defaults are internal/config's business).
func (img *Image) TopicConfigs(name string) map[string]string {
	if img == nil {
		return map[string]string{}
	}
	return maps.Clone(img.topicConfigs[name]) // Clone(nil) is nil
}

// BrokerConfigs returns a copy of the dynamic configs set for one broker.
func (img *Image) BrokerConfigs(id int32) map[string]string {
	if img == nil {
		return map[string]string{}
	}
	return maps.Clone(img.brokerConfigs[strconv.FormatInt(int64(id), 10)])
}

// DefaultBrokerConfigs returns a copy of the cluster-wide dynamic broker
// configs (resource name "").
func (img *Image) DefaultBrokerConfigs() map[string]string {
	if img == nil {
		return map[string]string{}
	}
	return maps.Clone(img.brokerConfigs[""])
}

// Broker returns a registered broker, or nil.
func (img *Image) Broker(id int32) *Broker {
	if img == nil {
		return nil
	}
	return img.brokers[id]
}

// Brokers returns the registered brokers sorted by id.
func (img *Image) Brokers() []*Broker {
	if img == nil {
		return nil
	}
	return slices.SortedFunc(maps.Values(img.brokers), func(a, b *Broker) int { return cmp.Compare(a.ID, b.ID) })
}

// NumBrokers is the number of registered brokers.
func (img *Image) NumBrokers() int {
	if img == nil {
		return 0
	}
	return len(img.brokers)
}

// UnfencedBrokers returns the ids of the unfenced brokers, sorted (brokers in
// controlled shutdown included).
func (img *Image) UnfencedBrokers() []int32 {
	if img == nil {
		return nil
	}
	var ids []int32
	for id, b := range img.brokers {
		if !b.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TopicPartition names one partition by topic id.
type TopicPartition struct {
	TopicID   [16]byte
	Partition int32
}

// PartitionsOn returns the partitions that list broker as a replica, by topic
// name then partition. It scans every partition: meant for decisions, not for
// every fold.
func (img *Image) PartitionsOn(broker int32) []TopicPartition {
	var out []TopicPartition
	for _, t := range img.Topics() {
		for i := range t.Partitions {
			if slices.Contains(t.Partitions[i].Replicas, broker) {
				out = append(out, TopicPartition{TopicID: t.ID, Partition: int32(i)})
			}
		}
	}
	return out
}

// Partition returns a partition by topic id and index, or nil. The result
// points into the image: do not modify it.
func (img *Image) Partition(topicID [16]byte, partition int32) *Partition {
	t := img.TopicByID(topicID)
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil
	}
	return &t.Partitions[partition]
}

// TopicConfig returns one dynamic config of a topic without copying the map.
func (img *Image) TopicConfig(topic, key string) (string, bool) {
	if img == nil {
		return "", false
	}
	v, ok := img.topicConfigs[topic][key]
	return v, ok
}

// DefaultBrokerConfig returns one cluster-wide dynamic broker config.
func (img *Image) DefaultBrokerConfig(key string) (string, bool) {
	if img == nil {
		return "", false
	}
	v, ok := img.brokerConfigs[""][key]
	return v, ok
}

// Records returns records that fold, from Empty, into an image equal to img
// (except AppliedIndex). Snapshots are written this way.
func (img *Image) Records() []Record {
	var recs []Record
	if img.ClusterID() != "" {
		recs = append(recs, ClusterIDRecord{ClusterID: img.clusterID})
	}
	for _, b := range img.Brokers() {
		recs = append(recs, RegisterBrokerRecord{BrokerID: b.ID, IncarnationID: b.IncarnationID, Endpoints: b.Endpoints, Rack: b.Rack,
			Fenced: b.Fenced, Epoch: b.Epoch})
		if b.InControlledShutdown {
			recs = append(recs, BrokerRegistrationChangeRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch, Fenced: Unchanged, InControlledShutdown: SetTrue})
		}
	}
	for _, t := range img.Topics() {
		recs = append(recs, TopicRecord{Name: t.Name, ID: t.ID})
		for _, p := range t.Partitions {
			recs = append(recs, PartitionRecord{TopicID: t.ID, Partition: p.ID, Replicas: p.Replicas, ISR: p.ISR,
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
				ELR: p.ELR, LastKnownELR: p.LastKnownELR, AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas})
		}
		recs = appendConfigRecords(recs, ResourceTopic, t.Name, img.topicConfigs[t.Name])
	}
	if img != nil {
		for _, name := range slices.Sorted(maps.Keys(img.brokerConfigs)) {
			recs = appendConfigRecords(recs, ResourceBroker, name, img.brokerConfigs[name])
		}
	}
	if img.NextProducerID() > 0 {
		recs = append(recs, ProducerIDsRecord{BrokerID: -1, NextProducerID: img.nextProducerID})
	}
	return recs
}

func appendConfigRecords(recs []Record, typ int8, resource string, cfg map[string]string) []Record {
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[k]
		recs = append(recs, ConfigRecord{ResourceType: typ, ResourceName: resource, Name: k, Value: &v})
	}
	return recs
}

// Fold applies a batch of records, as the log entry at index, and returns the
// new image. The batch is atomic: on error (wrapping ErrInvalidRecord) img is
// returned unchanged in meaning and no new image exists. img itself is never
// modified; a nil img folds from Empty.
func (img *Image) Fold(index uint64, recs []Record) (*Image, error) {
	if img == nil {
		img = Empty()
	}
	b := &builder{prev: img, next: &Image{
		appliedIndex:   index,
		clusterID:      img.clusterID,
		nextProducerID: img.nextProducerID,
		topics:         img.topics,
		topicsByID:     img.topicsByID,
		brokers:        img.brokers,
		topicConfigs:   img.topicConfigs,
		brokerConfigs:  img.brokerConfigs,
	}}
	for i, r := range recs {
		if err := b.apply(r); err != nil {
			return nil, fmt.Errorf("%w: record %d (%v): %s", ErrInvalidRecord, i, r.Type(), err)
		}
	}
	return b.next, nil
}

// builder is the copy-on-write delta of one Fold: each map of prev is cloned
// at its first write, each topic at its first change within the batch.
type builder struct {
	prev, next *Image

	topicsOwned, byIDOwned, brokersOwned, topicCfgOwned, brokerCfgOwned bool
	ownedTopics                                                         map[[16]byte]bool
}

func (b *builder) writeTopics() {
	if !b.topicsOwned {
		b.next.topics = maps.Clone(b.next.topics)
		b.next.topicsByID = maps.Clone(b.next.topicsByID)
		b.topicsOwned = true
	}
}

// ownTopic returns a private copy of the topic that this batch may modify.
func (b *builder) ownTopic(t *Topic) *Topic {
	if b.ownedTopics[t.ID] {
		return t
	}
	b.writeTopics()
	c := &Topic{Name: t.Name, ID: t.ID, Partitions: slices.Clone(t.Partitions)}
	b.next.topics[c.Name] = c
	b.next.topicsByID[c.ID] = c
	if b.ownedTopics == nil {
		b.ownedTopics = map[[16]byte]bool{}
	}
	b.ownedTopics[c.ID] = true
	return c
}

func (b *builder) configs(typ int8) map[string]map[string]string {
	if typ == ResourceTopic {
		if !b.topicCfgOwned {
			b.next.topicConfigs = maps.Clone(b.next.topicConfigs)
			b.topicCfgOwned = true
		}
		return b.next.topicConfigs
	}
	if !b.brokerCfgOwned {
		b.next.brokerConfigs = maps.Clone(b.next.brokerConfigs)
		b.brokerCfgOwned = true
	}
	return b.next.brokerConfigs
}

func (b *builder) apply(r Record) error {
	switch r := r.(type) {
	case ClusterIDRecord:
		if _, err := ParseUUID(r.ClusterID); err != nil {
			return err
		}
		if b.next.clusterID != "" && b.next.clusterID != r.ClusterID {
			return fmt.Errorf("cluster id is already %s", b.next.clusterID)
		}
		b.next.clusterID = r.ClusterID
	case RegisterBrokerRecord:
		if r.BrokerID < 0 {
			return fmt.Errorf("negative broker id %d", r.BrokerID)
		}
		epoch := int64(b.next.appliedIndex)
		if r.Epoch != 0 {
			if r.Epoch < 0 || uint64(r.Epoch) > b.next.appliedIndex {
				return fmt.Errorf("broker %d epoch %d is not an earlier entry index (entry %d)", r.BrokerID, r.Epoch, b.next.appliedIndex)
			}
			epoch = r.Epoch
		}
		b.writeBrokers()
		b.next.brokers[r.BrokerID] = &Broker{ID: r.BrokerID, IncarnationID: r.IncarnationID,
			Endpoints: slices.Clone(r.Endpoints), Rack: cloneString(r.Rack), Epoch: epoch, Fenced: r.Fenced}
	case BrokerRegistrationChangeRecord:
		old := b.next.brokers[r.BrokerID]
		if old == nil {
			return fmt.Errorf("broker %d is not registered", r.BrokerID)
		}
		if old.Epoch != r.BrokerEpoch {
			return fmt.Errorf("broker %d has epoch %d, not %d", r.BrokerID, old.Epoch, r.BrokerEpoch)
		}
		nb := *old
		var err error
		if nb.Fenced, err = triState(r.Fenced, nb.Fenced); err != nil {
			return err
		}
		if nb.InControlledShutdown, err = triState(r.InControlledShutdown, nb.InControlledShutdown); err != nil {
			return err
		}
		b.writeBrokers()
		b.next.brokers[r.BrokerID] = &nb
	case UnregisterBrokerRecord:
		old := b.next.brokers[r.BrokerID]
		if old == nil {
			return fmt.Errorf("broker %d is not registered", r.BrokerID)
		}
		if old.Epoch != r.BrokerEpoch {
			return fmt.Errorf("broker %d has epoch %d, not %d", r.BrokerID, old.Epoch, r.BrokerEpoch)
		}
		b.writeBrokers()
		delete(b.next.brokers, r.BrokerID)
	case TopicRecord:
		if r.Name == "" || r.ID == ([16]byte{}) {
			return fmt.Errorf("topic needs a name and a non-zero id")
		}
		if b.next.topics[r.Name] != nil {
			return fmt.Errorf("topic %q exists", r.Name)
		}
		if b.next.topicsByID[r.ID] != nil {
			return fmt.Errorf("topic id %s exists", UUIDString(r.ID))
		}
		b.writeTopics()
		t := &Topic{Name: r.Name, ID: r.ID}
		b.next.topics[t.Name] = t
		b.next.topicsByID[t.ID] = t
		if b.ownedTopics == nil {
			b.ownedTopics = map[[16]byte]bool{}
		}
		b.ownedTopics[t.ID] = true
	case PartitionRecord:
		t := b.next.topicsByID[r.TopicID]
		if t == nil {
			return fmt.Errorf("unknown topic id %s", UUIDString(r.TopicID))
		}
		if r.Partition < 0 || int(r.Partition) > len(t.Partitions) {
			return fmt.Errorf("partition %d of %q leaves a gap after %d partitions", r.Partition, t.Name, len(t.Partitions))
		}
		p := Partition{ID: r.Partition, Replicas: slices.Clone(r.Replicas), ISR: slices.Clone(r.ISR),
			Leader: r.Leader, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			ELR: cloneNonEmpty(r.ELR), LastKnownELR: cloneNonEmpty(r.LastKnownELR),
			AddingReplicas: cloneNonEmpty(r.AddingReplicas), RemovingReplicas: cloneNonEmpty(r.RemovingReplicas)}
		if err := checkPartition(&p); err != nil {
			return err
		}
		t = b.ownTopic(t)
		if int(r.Partition) == len(t.Partitions) {
			t.Partitions = append(t.Partitions, p)
		} else {
			t.Partitions[r.Partition] = p
		}
	case PartitionChangeRecord:
		t := b.next.topicsByID[r.TopicID]
		if t == nil {
			return fmt.Errorf("unknown topic id %s", UUIDString(r.TopicID))
		}
		if r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
			return fmt.Errorf("unknown partition %d of %q", r.Partition, t.Name)
		}
		p := t.Partitions[r.Partition]
		if r.Replicas != nil {
			p.Replicas = slices.Clone(r.Replicas)
		}
		if r.ISR != nil {
			p.ISR = slices.Clone(r.ISR)
		}
		if r.ELR != nil {
			p.ELR = cloneNonEmpty(r.ELR)
		}
		if r.LastKnownELR != nil {
			p.LastKnownELR = cloneNonEmpty(r.LastKnownELR)
		}
		if r.AddingReplicas != nil {
			p.AddingReplicas = cloneNonEmpty(r.AddingReplicas)
		}
		if r.RemovingReplicas != nil {
			p.RemovingReplicas = cloneNonEmpty(r.RemovingReplicas)
		}
		if r.Leader != NoLeaderChange && r.Leader != p.Leader {
			p.Leader = r.Leader
			p.LeaderEpoch++
		}
		p.PartitionEpoch++
		if err := checkPartition(&p); err != nil {
			return err
		}
		t = b.ownTopic(t)
		t.Partitions[r.Partition] = p
	case RemoveTopicRecord:
		t := b.next.topicsByID[r.TopicID]
		if t == nil {
			return fmt.Errorf("unknown topic id %s", UUIDString(r.TopicID))
		}
		b.writeTopics()
		delete(b.next.topics, t.Name)
		delete(b.next.topicsByID, t.ID)
		delete(b.ownedTopics, t.ID)
		if _, ok := b.next.topicConfigs[t.Name]; ok {
			delete(b.configs(ResourceTopic), t.Name)
		}
	case ConfigRecord:
		switch r.ResourceType {
		case ResourceTopic:
			if b.next.topics[r.ResourceName] == nil {
				return fmt.Errorf("config for unknown topic %q", r.ResourceName)
			}
		case ResourceBroker:
			if r.ResourceName != "" {
				if _, err := strconv.ParseInt(r.ResourceName, 10, 32); err != nil {
					return fmt.Errorf("broker config resource %q is not a broker id", r.ResourceName)
				}
			}
		default:
			return fmt.Errorf("unsupported config resource type %d", r.ResourceType)
		}
		if r.Name == "" {
			return fmt.Errorf("empty config name")
		}
		all := b.configs(r.ResourceType)
		// Clone the resource's map too: the old one belongs to prev.
		cfg := maps.Clone(all[r.ResourceName])
		if cfg == nil {
			cfg = map[string]string{}
		}
		if r.Value == nil {
			delete(cfg, r.Name)
		} else {
			cfg[r.Name] = *r.Value
		}
		if len(cfg) == 0 {
			delete(all, r.ResourceName)
		} else {
			all[r.ResourceName] = cfg
		}
	case ProducerIDsRecord:
		if r.NextProducerID <= b.next.nextProducerID {
			return fmt.Errorf("next producer id %d does not exceed %d", r.NextProducerID, b.next.nextProducerID)
		}
		b.next.nextProducerID = r.NextProducerID
	default:
		return fmt.Errorf("unhandled record type %v", r.Type())
	}
	return nil
}

// checkPartition checks the invariants of Partition.
func checkPartition(p *Partition) error {
	if err := checkReplicas(p.Replicas, p.ISR, p.Leader); err != nil {
		return err
	}
	for _, set := range [][]int32{p.ELR, p.AddingReplicas, p.RemovingReplicas} {
		for i, r := range set {
			if !slices.Contains(p.Replicas, r) || slices.Contains(set[:i], r) {
				return fmt.Errorf("%v is not a set of replicas of %v", set, p.Replicas)
			}
		}
	}
	for _, r := range p.ELR {
		if slices.Contains(p.ISR, r) {
			return fmt.Errorf("elr %v overlaps isr %v", p.ELR, p.ISR)
		}
	}
	for _, r := range p.AddingReplicas {
		if slices.Contains(p.RemovingReplicas, r) {
			return fmt.Errorf("adding replicas %v overlap removing replicas %v", p.AddingReplicas, p.RemovingReplicas)
		}
	}
	return nil
}

// checkReplicas: replicas non-empty and distinct, ISR a subset of them, the
// leader NoLeader or a replica.
func checkReplicas(replicas, isr []int32, leader int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("empty replica list")
	}
	for i, r := range replicas {
		if r < 0 || slices.Contains(replicas[:i], r) {
			return fmt.Errorf("replica list %v has a negative or repeated broker", replicas)
		}
	}
	for _, r := range isr {
		if !slices.Contains(replicas, r) {
			return fmt.Errorf("isr %v is not a subset of replicas %v", isr, replicas)
		}
	}
	if leader != NoLeader && !slices.Contains(replicas, leader) {
		return fmt.Errorf("leader %d is not a replica in %v", leader, replicas)
	}
	return nil
}

func (b *builder) writeBrokers() {
	if !b.brokersOwned {
		b.next.brokers = maps.Clone(b.next.brokers)
		b.brokersOwned = true
	}
}

// triState applies an Unchanged/SetFalse/SetTrue change to v.
func triState(change int8, v bool) (bool, error) {
	switch change {
	case Unchanged:
		return v, nil
	case SetFalse:
		return false, nil
	case SetTrue:
		return true, nil
	}
	return v, fmt.Errorf("tri-state value %d is not -1, 0 or 1", change)
}

// cloneNonEmpty copies s, mapping empty to nil (the canonical form of the
// optional partition sets).
func cloneNonEmpty(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}
