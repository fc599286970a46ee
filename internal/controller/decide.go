package controller

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

// The decisions below are pure: from an image, a request and the time they
// compute the records to apply and the per-item results. They never read the
// store, so tests run them on hand-built images. Topic ids come from
// Options.NewID, the only source of non-determinism, injected.

// MaxPartitions bounds one topic's partition count: each partition is a
// directory of segment files on every replica.
const MaxPartitions = 100_000

// Options configures the controller's decisions.
type Options struct {
	// NodeID is this node; with no broker registered, it is the only replica.
	NodeID int32
	// DefaultPartitions and DefaultReplicationFactor replace -1 in requests
	// (num.partitions and default.replication.factor); 0 means 1.
	DefaultPartitions        int32
	DefaultReplicationFactor int16
	// ValidateTopicConfigs checks a topic's complete set of dynamic configs
	// (after the change); nil accepts everything. Its error message is
	// returned to the client.
	ValidateTopicConfigs func(map[string]*string) error
	// ValidateBrokerConfigs does the same for broker configs; nil accepts.
	ValidateBrokerConfigs func(map[string]*string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewID makes topic ids; nil means metadata.NewUUID.
	NewID func() [16]byte

	// SessionTimeout (broker.session.timeout.ms) fences a broker whose
	// heartbeats stop for longer; 0 means 9 s.
	SessionTimeout time.Duration
	// LostGrace fences a broker that long after the connection of its last heartbeat
	// closed, if no heartbeat came since (it reconnects within one heartbeat interval when
	// alive); and the previous active controller that long after this node took over. 0
	// means the session timeout (no faster fencing).
	LostGrace time.Duration
	// AutoLeaderRebalance (auto.leader.rebalance.enable) runs preferred
	// leader elections every LeaderImbalanceCheckInterval (0 means 300 s)
	// for brokers whose share of preferred partitions led by others exceeds
	// LeaderImbalancePercentage (0 means 10).
	AutoLeaderRebalance          bool
	LeaderImbalanceCheckInterval time.Duration
	LeaderImbalancePercentage    int
	// DefaultMinISR (min.insync.replicas, 0 means 1) and
	// UncleanLeaderElection (unclean.leader.election.enable) are the broker
	// defaults; topic configs and cluster-wide dynamic configs override them.
	DefaultMinISR         int
	UncleanLeaderElection bool
}

func (o Options) withDefaults() Options {
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = 1
	}
	if o.DefaultReplicationFactor <= 0 {
		o.DefaultReplicationFactor = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = metadata.NewUUID
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 9 * time.Second
	}
	if o.LostGrace <= 0 || o.LostGrace > o.SessionTimeout {
		o.LostGrace = o.SessionTimeout
	}
	if o.LeaderImbalanceCheckInterval <= 0 {
		o.LeaderImbalanceCheckInterval = 300 * time.Second
	}
	if o.LeaderImbalancePercentage <= 0 {
		o.LeaderImbalancePercentage = 10
	}
	if o.DefaultMinISR <= 0 {
		o.DefaultMinISR = 1
	}
	return o
}

// TopicSpec is one topic of a CreateTopics request.
type TopicSpec struct {
	Name              string
	NumPartitions     int32 // -1: DefaultPartitions
	ReplicationFactor int16 // -1: DefaultReplicationFactor
	// Assignments, if set, gives the replicas of every partition 0..n-1;
	// NumPartitions and ReplicationFactor must then be -1.
	Assignments map[int32][]int32
	Configs     map[string]*string
}

// TopicResult is the outcome for one TopicSpec. On error NumPartitions and
// ReplicationFactor are -1 and ID is zero; a validate-only success has the
// counts but a zero ID.
type TopicResult struct {
	Name              string
	ID                [16]byte
	NumPartitions     int32
	ReplicationFactor int16
	Err               error
}

// DeleteResult is the outcome for one topic of DeleteTopics: Name and ID are
// both filled when the topic was found, whichever the request used.
type DeleteResult struct {
	Name string
	ID   [16]byte
	Err  error
}

// PartitionsSpec asks to grow Topic to Count partitions. Assignments, if set,
// gives the replicas of each new partition, in order.
type PartitionsSpec struct {
	Topic       string
	Count       int32
	Assignments [][]int32
}

// Result is the outcome for one named item.
type Result struct {
	Name string
	Err  error
}

// ConfigChange changes the dynamic configs of one resource. A nil value
// deletes the key; with Replace, every key not in Configs is deleted too
// (the legacy AlterConfigs semantics). Incremental APPEND/SUBTRACT are
// resolved into values by the caller, which knows the list-typed keys.
type ConfigChange struct {
	ResourceType int8 // metadata.ResourceTopic or metadata.ResourceBroker
	ResourceName string
	Configs      map[string]*string
	Replace      bool
}

// ConfigResult is the outcome for one ConfigChange.
type ConfigResult struct {
	ResourceType int8
	ResourceName string
	Err          error
}

// registeredBrokers are the brokers a manual assignment may name, sorted:
// the registered ones, or this node alone before any registration.
func registeredBrokers(img *metadata.Image, o Options) []int32 {
	bs := img.Brokers()
	if len(bs) == 0 {
		return []int32{o.NodeID}
	}
	ids := make([]int32, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	return ids
}

// checkAssignment validates one manual replica list against the brokers.
func checkAssignment(p int32, reps []int32, brokers []int32) error {
	if len(reps) == 0 {
		return errorf(ErrInvalidReplicaAssignment, "The replica assignment of partition %d is empty.", p)
	}
	for i, r := range reps {
		if slices.Contains(reps[:i], r) {
			return errorf(ErrInvalidReplicaAssignment, "The replica assignment of partition %d lists broker %d more than once.", p, r)
		}
		if !slices.Contains(brokers, r) {
			return errorf(ErrInvalidReplicaAssignment, "The replica assignment of partition %d lists broker %d, which is not registered.", p, r)
		}
	}
	return nil
}

// initialState is a new partition's ISR (its unfenced replicas) and leader
// (the first usable one); before any registration every replica counts.
func initialState(img *metadata.Image, reps []int32) (isr []int32, leader int32) {
	if img.NumBrokers() == 0 {
		return slices.Clone(reps), reps[0]
	}
	leader = metadata.NoLeader
	for _, r := range reps {
		if b := img.Broker(r); b != nil && !b.Fenced {
			isr = append(isr, r)
			if leader == metadata.NoLeader && b.Usable() {
				leader = r
			}
		}
	}
	return isr, leader
}

// checkStartable rejects a manual assignment no replica of which can lead.
func checkStartable(img *metadata.Image, p int32, reps []int32) error {
	if _, leader := initialState(img, reps); leader == metadata.NoLeader {
		return errorf(ErrInvalidReplicaAssignment, "No broker in the replica assignment %v of partition %d is unfenced and available to lead it.", reps, p)
	}
	return nil
}

func partitionRecords(img *metadata.Image, id [16]byte, first int32, assignment [][]int32) []metadata.Record {
	recs := make([]metadata.Record, len(assignment))
	for i, reps := range assignment {
		isr, leader := initialState(img, reps)
		recs[i] = metadata.PartitionRecord{TopicID: id, Partition: first + int32(i), Replicas: reps,
			ISR: isr, Leader: leader, LeaderEpoch: 0, PartitionEpoch: 0}
	}
	return recs
}

// requireValues rejects nil values, which only deletes allow.
func requireValues(cfg map[string]*string) error {
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if cfg[k] == nil {
			return errorf(ErrInvalidConfig, "Config %s has no value; a value is required when creating a topic.", k)
		}
	}
	return nil
}

func validateConfigs(validate func(map[string]*string) error, cfg map[string]*string) error {
	if validate == nil {
		return nil
	}
	if err := validate(cfg); err != nil {
		return errorf(ErrInvalidConfig, "%s", err.Error())
	}
	return nil
}

func configRecords(typ int8, resource string, cfg map[string]*string) []metadata.Record {
	var recs []metadata.Record
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		recs = append(recs, metadata.ConfigRecord{ResourceType: typ, ResourceName: resource, Name: k, Value: cfg[k]})
	}
	return recs
}

// decideCreateTopics checks each spec in Kafka's order (duplicates in the
// request, name rules, reserved names, existence, collisions, counts and
// assignments, configs) and returns the records creating the valid ones.
func decideCreateTopics(img *metadata.Image, o Options, specs []TopicSpec, validateOnly bool, _ time.Time) ([]metadata.Record, []TopicResult) {
	results := make([]TopicResult, len(specs))
	count := map[string]int{}
	for _, s := range specs {
		count[s.Name]++
	}
	brokers := registeredBrokers(img, o)
	usable := placementBrokers(img, o)
	accepted := map[string]string{} // collision key → name accepted earlier in this request
	var recs []metadata.Record
	for i, s := range specs {
		res, topicRecs := decideOneTopic(img, o, s, count[s.Name] > 1, brokers, usable, accepted, i)
		results[i] = res
		if res.Err != nil {
			results[i].NumPartitions, results[i].ReplicationFactor = -1, -1
			continue
		}
		accepted[collisionKey(s.Name)] = s.Name
		if validateOnly {
			continue
		}
		id := o.NewID()
		for id == ([16]byte{}) || img.TopicByID(id) != nil || slices.ContainsFunc(recs, func(r metadata.Record) bool {
			t, ok := r.(metadata.TopicRecord)
			return ok && t.ID == id
		}) {
			id = o.NewID()
		}
		results[i].ID = id
		recs = append(recs, metadata.TopicRecord{Name: s.Name, ID: id})
		recs = append(recs, topicRecs(id)...)
	}
	return recs, results
}

// decideOneTopic validates one spec; on success it returns a function that
// builds its partition and config records for the chosen id.
func decideOneTopic(img *metadata.Image, o Options, s TopicSpec, duplicate bool, brokers []int32, usable []placed, accepted map[string]string, index int) (TopicResult, func([16]byte) []metadata.Record) {
	res := TopicResult{Name: s.Name}
	fail := func(err error) (TopicResult, func([16]byte) []metadata.Record) {
		res.Err = err
		return res, nil
	}
	if duplicate {
		return fail(duplicateError("Topic", s.Name))
	}
	if err := ValidateTopicName(s.Name); err != nil {
		return fail(err)
	}
	if s.Name == MetadataTopic {
		return fail(errorf(ErrInvalidRequest, "Topic %s is reserved for the cluster metadata and cannot be created.", s.Name))
	}
	if img.Topic(s.Name) != nil {
		return fail(existsError(s.Name))
	}
	key := collisionKey(s.Name)
	if other, ok := accepted[key]; ok {
		return fail(collisionError(s.Name, other))
	}
	for _, t := range img.Topics() {
		if collisionKey(t.Name) == key {
			return fail(collisionError(s.Name, t.Name))
		}
	}

	var assignment [][]int32
	if len(s.Assignments) > 0 {
		if s.NumPartitions != -1 || s.ReplicationFactor != -1 {
			return fail(errorf(ErrInvalidRequest, "A replica assignment was given together with a partition count or replication factor; use one or the other."))
		}
		n := int32(len(s.Assignments))
		if n > MaxPartitions {
			return fail(errorf(ErrInvalidPartitions, "%d partitions exceed the maximum of %d per topic.", n, MaxPartitions))
		}
		assignment = make([][]int32, n)
		for p := range n {
			reps, ok := s.Assignments[p]
			if !ok {
				return fail(errorf(ErrInvalidReplicaAssignment, "The replica assignment must cover partitions 0 to %d without gaps; partition %d is missing.", n-1, p))
			}
			if err := checkAssignment(p, reps, brokers); err != nil {
				return fail(err)
			}
			if err := checkStartable(img, p, reps); err != nil {
				return fail(err)
			}
			if p > 0 && len(reps) != len(assignment[0]) {
				return fail(errorf(ErrInvalidReplicaAssignment, "Every partition must have the same number of replicas; partition %d has %d, partition 0 has %d.", p, len(reps), len(assignment[0])))
			}
			assignment[p] = slices.Clone(reps)
		}
	} else {
		n, rf := s.NumPartitions, s.ReplicationFactor
		if n == -1 {
			n = o.DefaultPartitions
		}
		if rf == -1 {
			rf = o.DefaultReplicationFactor
		}
		if n <= 0 {
			return fail(errorf(ErrInvalidPartitions, "The number of partitions must be positive, or -1 for the default; got %d.", s.NumPartitions))
		}
		if n > MaxPartitions {
			return fail(errorf(ErrInvalidPartitions, "%d partitions exceed the maximum of %d per topic.", n, MaxPartitions))
		}
		if rf <= 0 {
			return fail(errorf(ErrInvalidReplicationFactor, "The replication factor must be positive, or -1 for the default; got %d.", s.ReplicationFactor))
		}
		if err := checkReplicationFactor(int(rf), usable); err != nil {
			return fail(err)
		}
		// Start each topic at a different broker so leaders spread out.
		assignment = place(usable, img.NumTopics()+index, 0, int(n), int(rf))
	}

	if err := requireValues(s.Configs); err != nil {
		return fail(err)
	}
	if err := validateConfigs(o.ValidateTopicConfigs, s.Configs); err != nil {
		return fail(err)
	}
	res.NumPartitions = int32(len(assignment))
	res.ReplicationFactor = int16(len(assignment[0]))
	return res, func(id [16]byte) []metadata.Record {
		recs := partitionRecords(img, id, 0, assignment)
		return append(recs, configRecords(metadata.ResourceTopic, s.Name, s.Configs)...)
	}
}

// decideDeleteTopics resolves names then ids; a topic referenced more than
// once fails every reference, as Kafka does.
func decideDeleteTopics(img *metadata.Image, names []string, ids [][16]byte, _ time.Time) ([]metadata.Record, []DeleteResult) {
	results := make([]DeleteResult, 0, len(names)+len(ids))
	refs := map[any]int{} // resolved topic id, or the raw name/id when unknown
	key := func(r DeleteResult, raw any) any {
		if r.Err == nil {
			return r.ID
		}
		return raw
	}
	for _, n := range names {
		r := DeleteResult{Name: n}
		if t := img.Topic(n); t != nil {
			r.ID = t.ID
		} else {
			r.Err = errorf(ErrUnknownTopic, "Topic '%s' does not exist.", n)
		}
		results = append(results, r)
		refs[key(r, n)]++
	}
	for _, id := range ids {
		r := DeleteResult{ID: id}
		if t := img.TopicByID(id); t != nil {
			r.Name = t.Name
		} else {
			r.Err = errorf(ErrUnknownTopicID, "Topic id %s does not exist.", metadata.UUIDString(id))
		}
		results = append(results, r)
		refs[key(r, id)]++
	}
	var recs []metadata.Record
	for i, r := range results {
		raw := any(r.Name)
		if i >= len(names) {
			raw = r.ID
		}
		if refs[key(r, raw)] > 1 {
			results[i].Err = duplicateError("Topic", describe(r))
			continue
		}
		if r.Err == nil {
			recs = append(recs, metadata.RemoveTopicRecord{TopicID: r.ID})
		}
	}
	return recs, results
}

func describe(r DeleteResult) string {
	if r.Name != "" {
		return "'" + r.Name + "'"
	}
	return metadata.UUIDString(r.ID)
}

// decideCreatePartitions grows topics; it never shrinks or rewrites existing
// partitions. New partitions keep the replication factor of partition 0.
func decideCreatePartitions(img *metadata.Image, o Options, specs []PartitionsSpec, validateOnly bool, _ time.Time) ([]metadata.Record, []Result) {
	results := make([]Result, len(specs))
	count := map[string]int{}
	for _, s := range specs {
		count[s.Topic]++
	}
	brokers := registeredBrokers(img, o)
	usable := placementBrokers(img, o)
	var recs []metadata.Record
	for i, s := range specs {
		results[i].Name = s.Topic
		newRecs, err := decideOnePartitions(img, s, count[s.Topic] > 1, brokers, usable)
		if err != nil {
			results[i].Err = err
			continue
		}
		if !validateOnly {
			recs = append(recs, newRecs...)
		}
	}
	return recs, results
}

func decideOnePartitions(img *metadata.Image, s PartitionsSpec, duplicate bool, brokers []int32, usable []placed) ([]metadata.Record, error) {
	if duplicate {
		return nil, duplicateError("Topic", "'"+s.Topic+"'")
	}
	t := img.Topic(s.Topic)
	if t == nil {
		return nil, errorf(ErrUnknownTopic, "Topic '%s' does not exist.", s.Topic)
	}
	cur := int32(len(t.Partitions))
	switch {
	case s.Count == cur:
		return nil, errorf(ErrInvalidPartitions, "Topic '%s' already has %d partitions.", s.Topic, cur)
	case s.Count < cur:
		return nil, errorf(ErrInvalidPartitions, "Topic '%s' has %d partitions; the count can only grow, not become %d.", s.Topic, cur, s.Count)
	case s.Count > MaxPartitions:
		return nil, errorf(ErrInvalidPartitions, "%d partitions exceed the maximum of %d per topic.", s.Count, MaxPartitions)
	}
	rf := 1
	if cur > 0 {
		rf = len(t.Partitions[0].Replicas)
	}
	add := int(s.Count - cur)
	var assignment [][]int32
	if s.Assignments != nil {
		if len(s.Assignments) != add {
			return nil, errorf(ErrInvalidReplicaAssignment, "Growing from %d to %d partitions needs %d replica assignments; got %d.", cur, s.Count, add, len(s.Assignments))
		}
		for i, reps := range s.Assignments {
			p := cur + int32(i)
			if err := checkAssignment(p, reps, brokers); err != nil {
				return nil, err
			}
			if err := checkStartable(img, p, reps); err != nil {
				return nil, err
			}
			if len(reps) != rf {
				return nil, errorf(ErrInvalidReplicaAssignment, "Partition %d is assigned %d replicas; the topic's partitions have %d.", p, len(reps), rf)
			}
			assignment = append(assignment, slices.Clone(reps))
		}
	} else {
		if err := checkReplicationFactor(rf, usable); err != nil {
			return nil, err
		}
		assignment = place(usable, 0, int(cur), add, rf)
	}
	return partitionRecords(img, t.ID, cur, assignment), nil
}

// decideAllocateProducerIDs hands out the next count ids.
func decideAllocateProducerIDs(img *metadata.Image, brokerID int32, count int64, _ time.Time) ([]metadata.Record, int64, error) {
	if count <= 0 {
		return nil, 0, errorf(ErrInvalidRequest, "Producer id block size must be positive; got %d.", count)
	}
	first := img.NextProducerID()
	if first > (1<<63-1)-count {
		return nil, 0, errorf(ErrInvalidRequest, "Producer ids are exhausted.")
	}
	return []metadata.Record{metadata.ProducerIDsRecord{BrokerID: brokerID, NextProducerID: first + count}}, first, nil
}

// decideAlterConfigs computes each resource's resulting configs, validates
// them whole and emits records for the keys that actually change.
func decideAlterConfigs(img *metadata.Image, o Options, changes []ConfigChange, validateOnly bool, _ time.Time) ([]metadata.Record, []ConfigResult) {
	results := make([]ConfigResult, len(changes))
	type res struct {
		typ  int8
		name string
	}
	count := map[res]int{}
	for _, c := range changes {
		count[res{c.ResourceType, c.ResourceName}]++
	}
	var recs []metadata.Record
	for i, c := range changes {
		results[i] = ConfigResult{ResourceType: c.ResourceType, ResourceName: c.ResourceName}
		if count[res{c.ResourceType, c.ResourceName}] > 1 {
			results[i].Err = duplicateError("Resource", "'"+c.ResourceName+"'")
			continue
		}
		newRecs, err := decideOneConfig(img, o, c)
		if err != nil {
			results[i].Err = err
			continue
		}
		if !validateOnly {
			recs = append(recs, newRecs...)
		}
	}
	return recs, results
}

func decideOneConfig(img *metadata.Image, o Options, c ConfigChange) ([]metadata.Record, error) {
	var current map[string]string
	var validate func(map[string]*string) error
	switch c.ResourceType {
	case metadata.ResourceTopic:
		if img.Topic(c.ResourceName) == nil {
			return nil, errorf(ErrUnknownTopic, "Topic '%s' does not exist.", c.ResourceName)
		}
		current, validate = img.TopicConfigs(c.ResourceName), o.ValidateTopicConfigs
	case metadata.ResourceBroker:
		if c.ResourceName == "" {
			current = img.DefaultBrokerConfigs()
		} else {
			id, err := strconv.ParseInt(c.ResourceName, 10, 32)
			if err != nil || id < 0 {
				return nil, errorf(ErrInvalidRequest, "Broker resource name %q is not a broker id.", c.ResourceName)
			}
			current = img.BrokerConfigs(int32(id))
		}
		validate = o.ValidateBrokerConfigs
	default:
		return nil, errorf(ErrInvalidRequest, "Config resource type %d is not supported.", c.ResourceType)
	}
	for k := range c.Configs {
		if k == "" {
			return nil, errorf(ErrInvalidConfig, "A config name is empty.")
		}
	}
	result := map[string]*string{}
	if !c.Replace {
		for k, v := range current {
			result[k] = &v
		}
	}
	for k, v := range c.Configs {
		if v == nil {
			delete(result, k)
		} else {
			result[k] = v
		}
	}
	if err := validateConfigs(validate, result); err != nil {
		return nil, err
	}
	changed := map[string]*string{}
	for k, v := range result {
		if old, ok := current[k]; !ok || old != *v {
			changed[k] = v
		}
	}
	for k := range current {
		if _, ok := result[k]; !ok {
			changed[k] = nil
		}
	}
	return configRecords(c.ResourceType, c.ResourceName, changed), nil
}
