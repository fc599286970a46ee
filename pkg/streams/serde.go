package streams

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// Serde turns values of type T into record bytes and back.
//
// Implementations must be safe for concurrent use: one Serde value is shared by every task
// of a topology. A nil byte slice is Kafka's null; Deserialize(nil) returns the zero value
// of T and no error, and operators that care about null (tables: a null value deletes the
// key) look at the raw bytes before deserializing.
type Serde[T any] interface {
	Serialize(topic string, v T) ([]byte, error)
	Deserialize(topic string, b []byte) (T, error)
}

// SerdeFuncs adapts two plain functions to a Serde.
type SerdeFuncs[T any] struct {
	Ser   func(topic string, v T) ([]byte, error)
	Deser func(topic string, b []byte) (T, error)
}

// Serialize calls Ser.
func (s SerdeFuncs[T]) Serialize(topic string, v T) ([]byte, error) { return s.Ser(topic, v) }

// Deserialize calls Deser.
func (s SerdeFuncs[T]) Deserialize(topic string, b []byte) (T, error) { return s.Deser(topic, b) }

type bytesSerde struct{}

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error)   { return v, nil }
func (bytesSerde) Deserialize(_ string, b []byte) ([]byte, error) { return b, nil }

// Bytes passes byte slices through unchanged (Kafka's ByteArraySerializer).
func Bytes() Serde[[]byte] { return bytesSerde{} }

type stringSerde struct{}

func (stringSerde) Serialize(_ string, v string) ([]byte, error)   { return []byte(v), nil }
func (stringSerde) Deserialize(_ string, b []byte) (string, error) { return string(b), nil }

// String encodes strings as UTF-8 bytes (Kafka's StringSerializer).
func String() Serde[string] { return stringSerde{} }

type int32Serde struct{}

func (int32Serde) Serialize(_ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(nil, uint32(v)), nil
}

func (int32Serde) Deserialize(_ string, b []byte) (int32, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: int32 needs 4 bytes, got %d", ErrSerde, len(b))
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

// Int32 encodes int32 as 4 big-endian bytes (Kafka's IntegerSerializer).
func Int32() Serde[int32] { return int32Serde{} }

type int64Serde struct{}

func (int64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}

func (int64Serde) Deserialize(_ string, b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: int64 needs 8 bytes, got %d", ErrSerde, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Int64 encodes int64 as 8 big-endian bytes (Kafka's LongSerializer).
func Int64() Serde[int64] { return int64Serde{} }

type float64Serde struct{}

func (float64Serde) Serialize(_ string, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)), nil
}

func (float64Serde) Deserialize(_ string, b []byte) (float64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: float64 needs 8 bytes, got %d", ErrSerde, len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// Float64 encodes float64 as its IEEE 754 bits in 8 big-endian bytes (Kafka's DoubleSerializer).
func Float64() Serde[float64] { return float64Serde{} }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Serialize(_ string, v T) ([]byte, error) { return json.Marshal(v) }

func (jsonSerde[T]) Deserialize(_ string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: %v", ErrSerde, err)
	}
	return v, nil
}

// JSON encodes values with encoding/json.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }
