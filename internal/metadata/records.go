package metadata

import (
	"fmt"
)

// RecordType identifies a record kind in the metadata log. Values are part of
// the on-disk format and must never be reused.
type RecordType uint8

const (
	TypeClusterID       RecordType = 1
	TypeRegisterBroker  RecordType = 2
	TypeTopic           RecordType = 3
	TypePartition       RecordType = 4
	TypePartitionChange RecordType = 5
	TypeRemoveTopic     RecordType = 6
	TypeConfig          RecordType = 7
	TypeProducerIDs     RecordType = 8
	// TypeBrokerRegistrationChange and TypeUnregisterBroker follow KIP-631's
	// BrokerRegistrationChangeRecord and UnregisterBrokerRecord.
	TypeBrokerRegistrationChange RecordType = 9
	TypeUnregisterBroker         RecordType = 10
)

func (t RecordType) String() string {
	switch t {
	case TypeClusterID:
		return "ClusterID"
	case TypeRegisterBroker:
		return "RegisterBroker"
	case TypeTopic:
		return "Topic"
	case TypePartition:
		return "Partition"
	case TypePartitionChange:
		return "PartitionChange"
	case TypeRemoveTopic:
		return "RemoveTopic"
	case TypeConfig:
		return "Config"
	case TypeProducerIDs:
		return "ProducerIDs"
	case TypeBrokerRegistrationChange:
		return "BrokerRegistrationChange"
	case TypeUnregisterBroker:
		return "UnregisterBroker"
	}
	return fmt.Sprintf("RecordType(%d)", uint8(t))
}

// Config resource types, numbered as Kafka's ConfigResource types.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// NoLeaderChange in PartitionChangeRecord.Leader keeps the current leader.
// NoLeader (-1) means the partition has no leader.
const (
	NoLeader       int32 = -1
	NoLeaderChange int32 = -2
)

// Record is one typed entry of the metadata log. The set of implementations is
// closed (the methods are unexported): the records of this package, passed by
// value. Records handed to Store.Apply must not be modified afterwards.
type Record interface {
	Type() RecordType
	version() uint8
	encode(e *encoder)
}

// ClusterIDRecord sets the cluster id, a 22-character URL-safe base64 UUID
// (see UUIDString). It is written once, when the cluster is bootstrapped.
type ClusterIDRecord struct {
	ClusterID string
}

// Endpoint is one listener a broker advertises. SecurityProtocol uses Kafka's
// numbering (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
type Endpoint struct {
	Name             string
	Host             string
	Port             int32
	SecurityProtocol int16
}

// RegisterBrokerRecord registers a broker, or replaces its registration when
// the same id registers again (a restart gets a new IncarnationID). The
// broker's epoch becomes the index of the entry holding the record, unless
// Epoch is set: snapshots carry the epoch a broker registered with, so that
// it survives a restore. A new registration clears InControlledShutdown.
//
// Version 0 had neither Fenced nor Epoch: such records decode as unfenced
// brokers (the single-node logs written before fencing existed).
type RegisterBrokerRecord struct {
	BrokerID      int32
	IncarnationID [16]byte
	Endpoints     []Endpoint
	Rack          *string
	Fenced        bool  // v1
	Epoch         int64 // v1; 0 means the index of the entry
}

// Values of the int8 tri-states of BrokerRegistrationChangeRecord.
const (
	Unchanged int8 = -1
	SetFalse  int8 = 0
	SetTrue   int8 = 1
)

// BrokerRegistrationChangeRecord changes the state of the registration of
// BrokerID whose epoch is BrokerEpoch; folding rejects it for another epoch
// (a change decided for an older incarnation). Fenced and
// InControlledShutdown take Unchanged, SetFalse or SetTrue.
type BrokerRegistrationChangeRecord struct {
	BrokerID             int32
	BrokerEpoch          int64
	Fenced               int8
	InControlledShutdown int8
}

// UnregisterBrokerRecord removes a broker's registration (the
// UnregisterBroker API). Partitions keep naming it as a replica.
type UnregisterBrokerRecord struct {
	BrokerID    int32
	BrokerEpoch int64
}

// TopicRecord creates a topic with no partitions; PartitionRecords follow it,
// normally in the same batch.
type TopicRecord struct {
	Name string
	ID   [16]byte
}

// PartitionRecord creates partition Partition of a topic (it must be the next
// one: partitions are dense from 0) or replaces an existing one wholesale.
// Version 1 appends the eligible leader replicas (KIP-966) and the replicas
// being added and removed by a reassignment (KIP-455).
type PartitionRecord struct {
	TopicID          [16]byte
	Partition        int32
	Replicas         []int32
	ISR              []int32
	Leader           int32
	LeaderEpoch      int32
	PartitionEpoch   int32
	ELR              []int32 // v1
	LastKnownELR     []int32 // v1
	AddingReplicas   []int32 // v1
	RemovingReplicas []int32 // v1
}

// PartitionChangeRecord changes the leader, ISR, replicas, ELR or
// reassignment state of an existing partition. A nil slice and Leader ==
// NoLeaderChange leave a field unchanged; an empty non-nil slice sets it to
// empty (the encoding keeps the two apart: null is length -1). Folding bumps
// PartitionEpoch always and LeaderEpoch when the leader changes.
type PartitionChangeRecord struct {
	TopicID          [16]byte
	Partition        int32
	Leader           int32
	ISR              []int32
	Replicas         []int32
	ELR              []int32 // v1
	LastKnownELR     []int32 // v1
	AddingReplicas   []int32 // v1
	RemovingReplicas []int32 // v1
}

// RemoveTopicRecord deletes a topic, its partitions and its configs.
type RemoveTopicRecord struct {
	TopicID [16]byte
}

// ConfigRecord sets (Value non-nil) or removes (Value nil) one dynamic config
// of a resource. For ResourceTopic, ResourceName is the topic name; for
// ResourceBroker it is the broker id in decimal, or "" for the cluster-wide
// default.
type ConfigRecord struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        *string
}

// ProducerIDsRecord records that BrokerID was given the block of producer ids
// ending just before NextProducerID, which becomes the next id the cluster
// hands out. It must grow strictly.
type ProducerIDsRecord struct {
	BrokerID       int32
	NextProducerID int64
}

func (ClusterIDRecord) Type() RecordType       { return TypeClusterID }
func (RegisterBrokerRecord) Type() RecordType  { return TypeRegisterBroker }
func (TopicRecord) Type() RecordType           { return TypeTopic }
func (PartitionRecord) Type() RecordType       { return TypePartition }
func (PartitionChangeRecord) Type() RecordType { return TypePartitionChange }
func (RemoveTopicRecord) Type() RecordType     { return TypeRemoveTopic }
func (ConfigRecord) Type() RecordType          { return TypeConfig }
func (ProducerIDsRecord) Type() RecordType     { return TypeProducerIDs }
func (BrokerRegistrationChangeRecord) Type() RecordType {
	return TypeBrokerRegistrationChange
}
func (UnregisterBrokerRecord) Type() RecordType { return TypeUnregisterBroker }

// version is the version a record type is written at; decoders also read
// every older version (see maxVersion).
func (ClusterIDRecord) version() uint8                { return 0 }
func (RegisterBrokerRecord) version() uint8           { return 1 }
func (TopicRecord) version() uint8                    { return 0 }
func (PartitionRecord) version() uint8                { return 1 }
func (PartitionChangeRecord) version() uint8          { return 1 }
func (RemoveTopicRecord) version() uint8              { return 0 }
func (ConfigRecord) version() uint8                   { return 0 }
func (ProducerIDsRecord) version() uint8              { return 0 }
func (BrokerRegistrationChangeRecord) version() uint8 { return 0 }
func (UnregisterBrokerRecord) version() uint8         { return 0 }

// maxVersion is the newest version of each type this code decodes.
func maxVersion(t RecordType) uint8 {
	switch t {
	case TypeRegisterBroker, TypePartition, TypePartitionChange:
		return 1
	}
	return 0
}

func (r ClusterIDRecord) encode(e *encoder) { e.string(r.ClusterID) }

func (r RegisterBrokerRecord) encode(e *encoder) {
	e.int32(r.BrokerID)
	e.uuid(r.IncarnationID)
	e.uvarint(uint64(len(r.Endpoints)))
	for _, ep := range r.Endpoints {
		e.string(ep.Name)
		e.string(ep.Host)
		e.int32(ep.Port)
		e.int16(ep.SecurityProtocol)
	}
	e.nullableString(r.Rack)
	e.bool(r.Fenced)
	e.int64(r.Epoch)
}

func (r BrokerRegistrationChangeRecord) encode(e *encoder) {
	e.int32(r.BrokerID)
	e.int64(r.BrokerEpoch)
	e.int8(r.Fenced)
	e.int8(r.InControlledShutdown)
}

func (r UnregisterBrokerRecord) encode(e *encoder) {
	e.int32(r.BrokerID)
	e.int64(r.BrokerEpoch)
}

func (r TopicRecord) encode(e *encoder) {
	e.string(r.Name)
	e.uuid(r.ID)
}

func (r PartitionRecord) encode(e *encoder) {
	e.uuid(r.TopicID)
	e.int32(r.Partition)
	e.int32s(r.Replicas)
	e.int32s(r.ISR)
	e.int32(r.Leader)
	e.int32(r.LeaderEpoch)
	e.int32(r.PartitionEpoch)
	e.int32s(r.ELR)
	e.int32s(r.LastKnownELR)
	e.int32s(r.AddingReplicas)
	e.int32s(r.RemovingReplicas)
}

func (r PartitionChangeRecord) encode(e *encoder) {
	e.uuid(r.TopicID)
	e.int32(r.Partition)
	e.int32(r.Leader)
	e.int32s(r.ISR)
	e.int32s(r.Replicas)
	e.int32s(r.ELR)
	e.int32s(r.LastKnownELR)
	e.int32s(r.AddingReplicas)
	e.int32s(r.RemovingReplicas)
}

func (r RemoveTopicRecord) encode(e *encoder) { e.uuid(r.TopicID) }

func (r ConfigRecord) encode(e *encoder) {
	e.int8(r.ResourceType)
	e.string(r.ResourceName)
	e.string(r.Name)
	e.nullableString(r.Value)
}

func (r ProducerIDsRecord) encode(e *encoder) {
	e.int32(r.BrokerID)
	e.int64(r.NextProducerID)
}

// decodePayload decodes one record payload of type t at version v.
func decodePayload(t RecordType, v uint8, d *decoder) (Record, error) {
	if v > maxVersion(t) {
		return nil, fmt.Errorf("%w: %v record version %d", ErrCorrupt, t, v)
	}
	var r Record
	switch t {
	case TypeClusterID:
		r = ClusterIDRecord{ClusterID: d.string()}
	case TypeRegisterBroker:
		var b RegisterBrokerRecord
		b.BrokerID = d.int32()
		b.IncarnationID = d.uuid()
		if n := d.count(8); n > 0 {
			b.Endpoints = make([]Endpoint, n)
			for i := range b.Endpoints {
				b.Endpoints[i] = Endpoint{Name: d.string(), Host: d.string(), Port: d.int32(), SecurityProtocol: d.int16()}
			}
		}
		b.Rack = d.nullableString()
		if v >= 1 {
			b.Fenced = d.bool()
			b.Epoch = d.int64()
		}
		r = b
	case TypeTopic:
		r = TopicRecord{Name: d.string(), ID: d.uuid()}
	case TypePartition:
		p := PartitionRecord{TopicID: d.uuid(), Partition: d.int32(), Replicas: d.int32s(), ISR: d.int32s(),
			Leader: d.int32(), LeaderEpoch: d.int32(), PartitionEpoch: d.int32()}
		if v >= 1 {
			p.ELR, p.LastKnownELR, p.AddingReplicas, p.RemovingReplicas = d.int32s(), d.int32s(), d.int32s(), d.int32s()
		}
		r = p
	case TypePartitionChange:
		c := PartitionChangeRecord{TopicID: d.uuid(), Partition: d.int32(), Leader: d.int32(), ISR: d.int32s(), Replicas: d.int32s()}
		if v >= 1 {
			c.ELR, c.LastKnownELR, c.AddingReplicas, c.RemovingReplicas = d.int32s(), d.int32s(), d.int32s(), d.int32s()
		}
		r = c
	case TypeBrokerRegistrationChange:
		r = BrokerRegistrationChangeRecord{BrokerID: d.int32(), BrokerEpoch: d.int64(), Fenced: d.int8(), InControlledShutdown: d.int8()}
	case TypeUnregisterBroker:
		r = UnregisterBrokerRecord{BrokerID: d.int32(), BrokerEpoch: d.int64()}
	case TypeRemoveTopic:
		r = RemoveTopicRecord{TopicID: d.uuid()}
	case TypeConfig:
		r = ConfigRecord{ResourceType: d.int8(), ResourceName: d.string(), Name: d.string(), Value: d.nullableString()}
	case TypeProducerIDs:
		r = ProducerIDsRecord{BrokerID: d.int32(), NextProducerID: d.int64()}
	default:
		return nil, fmt.Errorf("%w: unknown record type %d", ErrCorrupt, uint8(t))
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in %v record", ErrCorrupt, len(d.b), t)
	}
	return r, nil
}

const entryFormat = 1

// EncodeRecords encodes a batch of records as one metadata log entry.
func EncodeRecords(recs []Record) []byte {
	e := &encoder{b: make([]byte, 0, 64*len(recs)+8)}
	e.b = append(e.b, entryFormat)
	e.uvarint(uint64(len(recs)))
	var p encoder
	for _, r := range recs {
		p.b = p.b[:0]
		r.encode(&p)
		e.b = append(e.b, byte(r.Type()), r.version())
		e.uvarint(uint64(len(p.b)))
		e.b = append(e.b, p.b...)
	}
	return e.b
}

// DecodeRecords decodes an entry written by EncodeRecords. It fails with
// ErrCorrupt on any malformed, truncated or unknown input.
func DecodeRecords(b []byte) ([]Record, error) {
	d := &decoder{b: b}
	if f := d.int8(); d.err == nil && f != entryFormat {
		return nil, fmt.Errorf("%w: entry format %d", ErrCorrupt, f)
	}
	n := d.count(3) // type, version, size: at least 3 bytes per record
	if d.err != nil {
		return nil, d.err
	}
	recs := make([]Record, 0, n)
	for range n {
		t := RecordType(d.int8())
		v := uint8(d.int8())
		size := d.uvarint()
		if d.err == nil && size > uint64(len(d.b)) {
			d.fail("record size")
		}
		payload := d.take(int(size), "record payload")
		if d.err != nil {
			return nil, d.err
		}
		r, err := decodePayload(t, v, &decoder{b: payload})
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after records", ErrCorrupt, len(d.b))
	}
	return recs, nil
}
