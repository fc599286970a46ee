package streams

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Windowed is a key with the window it was aggregated in. For time and sliding windows End
// is Start plus the window size; for session windows Start and End are the first and last
// record times of the session (both inclusive).
type Windowed[K any] struct {
	Key        K
	Start, End time.Time
}

// suffixKV holds window and session stores. Their changelog keys are Kafka's layout: the
// serialized key followed by fixed-width big-endian times (start for windows; end then start
// for sessions). In memory each key is prefixed by its length, so that the entries of one key
// are contiguous and ordered by time even when another key extends it as a byte prefix.
// get/put/del/scan take and give changelog-layout keys. The inner store (memory or Pebble)
// holds the prefixed keys.
type suffixKV struct {
	m      kvBytes
	suffix int // bytes of times after the key: 8 or 16
}

func (s *suffixKV) in(k []byte) []byte {
	n := max(len(k)-s.suffix, 0) // a malformed changelog key sorts as an empty key
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(k)), uint32(n))
	return append(out, k...)
}

func (s *suffixKV) get(k []byte) ([]byte, bool) { return s.m.get(s.in(k)) }
func (s *suffixKV) put(k, v []byte)             { s.m.put(s.in(k), v) }
func (s *suffixKV) del(k []byte)                { s.m.del(s.in(k)) }
func (s *suffixKV) len() int                    { return s.m.len() }
func (s *suffixKV) err() error                  { return s.m.err() }
func (s *suffixKV) close() error                { return s.m.close() }

func (s *suffixKV) scan(from, to []byte, fn func(k, v []byte) bool) {
	if from != nil {
		from = s.in(from)
	}
	if to != nil {
		to = s.in(to)
	}
	s.m.scan(from, to, func(k, v []byte) bool { return fn(k[4:], v) })
}

// appendTimes appends times as 8-byte big-endian values; negative times are clamped to 0
// (windows never start before the epoch).
func appendTimes(b []byte, ts ...int64) []byte {
	for _, t := range ts {
		b = binary.BigEndian.AppendUint64(b, uint64(max(t, 0)))
	}
	return b
}

func timeAt(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// WindowStore is a typed view of a task's window store: one value per key and window start.
// Same rules as KeyValueStore: only the task's goroutine may use it; writes go to the
// changelog when logging is on.
type WindowStore[K, V any] struct {
	s    *storeInst
	ks   Serde[K]
	vs   Serde[V]
	size int64
}

// Name is the store's name.
func (w WindowStore[K, V]) Name() string { return w.s.spec.name }

// key is k's store key for the window starting at start: a new slice (a serializer may hand
// out its input, whose spare capacity must not be written).
func (w WindowStore[K, V]) key(k K, start int64) ([]byte, error) {
	return w.appendKey(nil, k, start)
}

// appendKey appends the store key of k's window starting at start to buf (nil: a new slice
// of the exact size).
func (w WindowStore[K, V]) appendKey(buf []byte, k K, start int64) ([]byte, error) {
	kb, err := w.ks.Serialize(w.s.changelog, k)
	if err != nil {
		return nil, err
	}
	if buf == nil {
		buf = make([]byte, 0, len(kb)+8)
	}
	return appendTimes(append(buf, kb...), start), nil
}

// fetchRaw is Fetch by store key.
func (w WindowStore[K, V]) fetchRaw(kb []byte) (V, bool, error) {
	var zero V
	vb, ok := w.s.get(kb, true)
	if !ok {
		return zero, false, w.s.kv.err()
	}
	v, err := w.vs.Deserialize(w.s.changelog, vb)
	return v, err == nil, err
}

// putRaw is Put by store key.
func (w WindowStore[K, V]) putRaw(kb []byte, v V) error {
	vb, err := w.vs.Serialize(w.s.changelog, v)
	if err != nil {
		return err
	}
	if vb == nil {
		vb = []byte{}
	}
	return w.s.put(kb, vb)
}

// Fetch returns the value of k's window starting at start.
func (w WindowStore[K, V]) Fetch(k K, start time.Time) (V, bool, error) {
	kb, err := w.key(k, start.UnixMilli())
	if err != nil {
		var zero V
		return zero, false, err
	}
	return w.fetchRaw(kb)
}

// decode deserializes a store entry into its windowed key and value (vb nil: a deletion,
// decoded as a nil value).
func (w WindowStore[K, V]) decode(kb, vb []byte) (any, any, error) {
	n := len(kb) - 8
	if n < 0 {
		return nil, nil, fmt.Errorf("%w: window store key of %d bytes", ErrSerde, len(kb))
	}
	k, err := w.ks.Deserialize(w.s.changelog, kb[:n])
	if err != nil {
		return nil, nil, err
	}
	start := timeAt(kb[n:])
	key := Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(start + w.size)}
	if vb == nil {
		return key, nil, nil
	}
	v, err := w.vs.Deserialize(w.s.changelog, vb)
	return key, v, err
}

// Put stores v as the value of k's window starting at start.
func (w WindowStore[K, V]) Put(k K, start time.Time, v V) error {
	kb, err := w.key(k, start.UnixMilli())
	if err != nil {
		return err
	}
	return w.putRaw(kb, v)
}

// Delete removes k's window starting at start.
func (w WindowStore[K, V]) Delete(k K, start time.Time) error {
	kb, err := w.key(k, start.UnixMilli())
	if err != nil {
		return err
	}
	return w.s.put(kb, nil)
}

// FetchRange calls fn for k's windows starting in [from, to], oldest first, until fn
// returns false.
func (w WindowStore[K, V]) FetchRange(k K, from, to time.Time, fn func(Windowed[K], V) bool) error {
	kb, err := w.ks.Serialize(w.s.changelog, k)
	if err != nil {
		return err
	}
	lo := appendTimes(append([]byte(nil), kb...), from.UnixMilli())
	hi := appendTimes(append([]byte(nil), kb...), to.UnixMilli())
	if to.UnixMilli() < 0 {
		return nil
	}
	return w.scan(lo, hi, fn)
}

// All calls fn for every window of every key until fn returns false.
func (w WindowStore[K, V]) All(fn func(Windowed[K], V) bool) error { return w.scan(nil, nil, fn) }

// Len is the number of windows held.
func (w WindowStore[K, V]) Len() int { return w.s.len() }

func (w WindowStore[K, V]) scan(lo, hi []byte, fn func(Windowed[K], V) bool) error {
	var ferr error
	w.s.scan(lo, hi, func(kb, vb []byte) bool {
		n := len(kb) - 8
		k, err := w.ks.Deserialize(w.s.changelog, kb[:n])
		if err == nil {
			var v V
			if v, err = w.vs.Deserialize(w.s.changelog, vb); err == nil {
				start := timeAt(kb[n:])
				return fn(Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(start + w.size)}, v)
			}
		}
		ferr = err
		return false
	})
	if ferr == nil {
		ferr = w.s.kv.err()
	}
	return ferr
}

// SessionStore is a typed view of a task's session store: one value per key and session
// (start and end both inclusive). Same rules as KeyValueStore.
type SessionStore[K, V any] struct {
	s  *storeInst
	ks Serde[K]
	vs Serde[V]
}

// Name is the store's name.
func (s SessionStore[K, V]) Name() string { return s.s.spec.name }

func (s SessionStore[K, V]) key(w Windowed[K]) ([]byte, error) {
	kb, err := s.ks.Serialize(s.s.changelog, w.Key)
	if err != nil {
		return nil, err
	}
	return appendTimes(kb, w.End.UnixMilli(), w.Start.UnixMilli()), nil
}

// Put stores v for session w.
func (s SessionStore[K, V]) Put(w Windowed[K], v V) error {
	kb, err := s.key(w)
	if err != nil {
		return err
	}
	vb, err := s.vs.Serialize(s.s.changelog, v)
	if err != nil {
		return err
	}
	if vb == nil {
		vb = []byte{}
	}
	return s.s.put(kb, vb)
}

// Remove deletes session w.
func (s SessionStore[K, V]) Remove(w Windowed[K]) error {
	kb, err := s.key(w)
	if err != nil {
		return err
	}
	return s.s.put(kb, nil)
}

// FindSessions calls fn for k's sessions that end at or after earliestEnd and start at or
// before latestStart, by end time, until fn returns false.
func (s SessionStore[K, V]) FindSessions(k K, earliestEnd, latestStart time.Time, fn func(Windowed[K], V) bool) error {
	kb, err := s.ks.Serialize(s.s.changelog, k)
	if err != nil {
		return err
	}
	lo := appendTimes(append([]byte(nil), kb...), earliestEnd.UnixMilli(), 0)
	hi := appendTimes(append([]byte(nil), kb...), math.MaxInt64, math.MaxInt64)
	ls := latestStart.UnixMilli()
	return s.scan(lo, hi, func(w Windowed[K], v V) bool {
		if w.Start.UnixMilli() > ls {
			return true
		}
		return fn(w, v)
	})
}

// All calls fn for every session of every key until fn returns false.
func (s SessionStore[K, V]) All(fn func(Windowed[K], V) bool) error { return s.scan(nil, nil, fn) }

// Len is the number of sessions held.
func (s SessionStore[K, V]) Len() int { return s.s.len() }

func (s SessionStore[K, V]) scan(lo, hi []byte, fn func(Windowed[K], V) bool) error {
	var ferr error
	s.s.scan(lo, hi, func(kb, vb []byte) bool {
		n := len(kb) - 16
		k, err := s.ks.Deserialize(s.s.changelog, kb[:n])
		if err == nil {
			var v V
			if v, err = s.vs.Deserialize(s.s.changelog, vb); err == nil {
				return fn(Windowed[K]{Key: k, End: time.UnixMilli(timeAt(kb[n:])), Start: time.UnixMilli(timeAt(kb[n+8:]))}, v)
			}
		}
		ferr = err
		return false
	})
	if ferr == nil {
		ferr = s.s.kv.err()
	}
	return ferr
}

// WindowStoreSpec declares a window store: windows of Size, one value per key and start;
// Type chooses memory or Pebble as for StoreSpec.
type WindowStoreSpec[K, V any] struct {
	Name    string
	Keys    Serde[K]
	Values  Serde[V]
	Size    time.Duration
	Logging bool
	Type    StoreType
}

// AddWindowStore registers a window store, logged to "<application.id>-<name>-changelog"
// when Logging is set, and connects it to processors.
func AddWindowStore[K, V any](t *Topology, spec WindowStoreSpec[K, V], processors ...string) {
	if spec.Size <= 0 {
		t.fail("window store %q: size must be positive", spec.Name)
		return
	}
	addStore(t, &storeSpec{name: spec.Name, logging: spec.Logging, keys: spec.Keys, values: spec.Values,
		typ: spec.Type, suffix: 8, kind: windowStore, size: spec.Size.Milliseconds()}, spec.Keys == nil || spec.Values == nil, processors)
}

// AddSessionStore registers a session store (see AddWindowStore).
func AddSessionStore[K, V any](t *Topology, spec StoreSpec[K, V], processors ...string) {
	addStore(t, &storeSpec{name: spec.Name, logging: spec.Logging, keys: spec.Keys, values: spec.Values,
		typ: spec.Type, suffix: 16, kind: sessionStore}, spec.Keys == nil || spec.Values == nil, processors)
}

func addStore(t *Topology, sp *storeSpec, noSerdes bool, processors []string) {
	if sp.name == "" || noSerdes {
		t.fail("store %q: name and serdes are required", sp.name)
		return
	}
	if _, dup := t.stores[sp.name]; dup {
		t.fail("duplicate store %q", sp.name)
		return
	}
	t.stores[sp.name] = sp
	t.storeOr = append(t.storeOr, sp.name)
	for _, p := range processors {
		t.ConnectStore(p, sp.name)
	}
}

func typedSerdes[K, V any](p StoreProvider, name string, kind storeKind) (*storeInst, Serde[K], Serde[V], error) {
	si, err := p.rawStore(name)
	if err != nil {
		return nil, nil, nil, err
	}
	ks, ok1 := si.spec.keys.(Serde[K])
	vs, ok2 := si.spec.values.(Serde[V])
	if !ok1 || !ok2 || si.spec.kind != kind {
		return nil, nil, nil, fmt.Errorf("%w: store %q is of another kind or has other key/value types", ErrUnknownStore, name)
	}
	return si, ks, vs, nil
}

// GetWindowStore returns the typed window store name from p.
func GetWindowStore[K, V any](p StoreProvider, name string) (WindowStore[K, V], error) {
	si, ks, vs, err := typedSerdes[K, V](p, name, windowStore)
	if err != nil {
		return WindowStore[K, V]{}, err
	}
	return WindowStore[K, V]{s: si, ks: ks, vs: vs, size: si.spec.size}, nil
}

// GetSessionStore returns the typed session store name from p.
func GetSessionStore[K, V any](p StoreProvider, name string) (SessionStore[K, V], error) {
	si, ks, vs, err := typedSerdes[K, V](p, name, sessionStore)
	if err != nil {
		return SessionStore[K, V]{}, err
	}
	return SessionStore[K, V]{s: si, ks: ks, vs: vs}, nil
}

type windowedSerde[K any] struct {
	inner   Serde[K]
	size    int64 // time windows: end = start + size
	session bool
}

func (s windowedSerde[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	kb, err := s.inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, err
	}
	kb = append([]byte(nil), kb...)
	if s.session {
		return appendTimes(kb, w.End.UnixMilli(), w.Start.UnixMilli()), nil
	}
	return appendTimes(kb, w.Start.UnixMilli()), nil
}

func (s windowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	n := 8
	if s.session {
		n = 16
	}
	if b == nil {
		return Windowed[K]{}, nil
	}
	if len(b) < n {
		return Windowed[K]{}, fmt.Errorf("%w: windowed key needs at least %d bytes, got %d", ErrSerde, n, len(b))
	}
	k, err := s.inner.Deserialize(topic, b[:len(b)-n])
	if err != nil {
		return Windowed[K]{}, err
	}
	t := b[len(b)-n:]
	if s.session {
		return Windowed[K]{Key: k, End: time.UnixMilli(timeAt(t)), Start: time.UnixMilli(timeAt(t[8:]))}, nil
	}
	start := timeAt(t)
	return Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(start + s.size)}, nil
}

// TimeWindowedSerde writes a windowed key as Kafka's TimeWindowedSerializer does: the inner
// key followed by the window start as an 8-byte big-endian millisecond count. Reading needs
// the window size to restore End.
func TimeWindowedSerde[K any](inner Serde[K], size time.Duration) Serde[Windowed[K]] {
	return windowedSerde[K]{inner: inner, size: size.Milliseconds()}
}

// SessionWindowedSerde writes a session key as Kafka's SessionWindowedSerializer does: the
// inner key, then the end and the start, 8-byte big-endian milliseconds each.
func SessionWindowedSerde[K any](inner Serde[K]) Serde[Windowed[K]] {
	return windowedSerde[K]{inner: inner, session: true}
}
