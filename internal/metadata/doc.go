// Package metadata holds Poste's cluster metadata: the typed records that make
// up the metadata log, the immutable Image they fold into, and the Store that
// replicates the log with hashicorp/raft and publishes a new Image after every
// committed entry.
//
// The package takes no decisions. Whether a topic may be created, where its
// replicas go or which producer ids a broker gets is decided by
// internal/controller, which hands the resulting records to Store.Apply.
// Folding only checks that a batch is internally consistent with the image it
// applies to (for example, a partition of an unknown topic); a batch that is
// not is rejected as a whole, deterministically, so every replica agrees.
//
// # Encoding
//
// A raft entry carries one batch of records (applied atomically):
//
//	entry   = format:uint8(=1) count:uvarint record*
//	record  = type:uint8 version:uint8 size:uvarint payload[size]
//
// Payloads are big-endian binary: int8/16/32/64 fixed width, strings and byte
// arrays as uvarint length + bytes, nullable strings and arrays as varint
// length with -1 for null, UUIDs as 16 raw bytes. Each record type has its own
// version; a decoder reads the fields of the versions it knows and rejects
// unknown types and versions with ErrCorrupt. Adding a field means bumping the
// version of that record type and appending the field to the payload.
//
// A snapshot is the image written back as records, in an order that folds
// into an identical image:
//
//	snapshot = magic "PMS1" appliedIndex:uint64 entry
package metadata
