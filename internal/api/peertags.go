package api

import "github.com/twmb/franz-go/pkg/kmsg"

// Tagged fields that only Poste's brokers send to each other, in requests of flexible
// versions. They are trusted as the listener they arrive on is: Poste's listeners do not
// authenticate, so a client could set them as it could join any group. Kafka's own tags are
// small numbers; these sit far above them.

// TagTxnOffsetsOf is a tagged field of OffsetCommit (v8+) that only Poste's brokers send to
// each other: the transactional id of a committed transaction whose coordinator, on another
// broker, completes its offsets for a group coordinated here. This broker checked the member
// and generation when it passed the TxnOffsetCommit on (txn.NoteRemotePending); such offsets
// are committed whatever the group's members did since, as Kafka's transaction marker does.
// Offsets this broker did not pass on (a restart forgot them, or anyone else sends the tag)
// are checked like any commit.
const TagTxnOffsetsOf uint32 = 0x50_0001

// TagCheckedByPeer is a tagged field of TxnOffsetCommit (v3+) that only Poste's brokers send
// to each other: the group's coordinator checked the member and generation of the offsets it
// passes on to the transaction's coordinator. Without it, a transaction's coordinator that
// does not coordinate the group answers NOT_COORDINATOR, as Kafka's brokers do.
const TagCheckedByPeer uint32 = 0x50_0002

// peerTag returns the value of tag key among a request's unknown tags (decoded only for
// flexible versions).
func peerTag(tags *kmsg.Tags, key uint32) (val []byte, ok bool) {
	tags.Each(func(k uint32, v []byte) {
		if k == key {
			val, ok = v, true
		}
	})
	return val, ok
}

func hasPeerTag(tags *kmsg.Tags, key uint32) bool {
	_, ok := peerTag(tags, key)
	return ok
}
