#!/usr/bin/python3
"""Drives confluent-kafka-python (librdkafka) against a Poste broker for compat_test.go.

Usage: /usr/bin/python3 compat.py BOOTSTRAP COMMAND < request.json > result.json

Commands, their JSON request and result (compat.js takes and returns the same):
  create_topic       {"topic": T, "partitions": N}                      -> {"created": true}
  produce            {"topic": T, "compression": "none|gzip|snappy|lz4|zstd",
                      "records": [{"key": K|null, "value": V, "headers": [[k, v], ...],
                                   "timestamp": ms|null, "partition": P|null}]}
                                                                        -> {"sent": N}
  consume            {"topics": [T, ...]}  every partition from its start to its end
                                           (the end as listed when reading starts)
                     -> {"records": [{"topic", "partition", "offset", "key", "value",
                                      "headers": [[k, v], ...], "timestamp",
                                      "timestamp_type": "create|log_append"}]}
  offsets_for_times  {"topic": T, "partition": P, "timestamps": [ms, ...]}
                     -> {"offsets": [O, ...]}  (-1 where no record is that recent)
  group_consume      {"group": G, "topic": T, "members": N, "ends": {"P": O, ...}}
                     N consumers of group G subscribed to T, from the group's committed
                     offsets (the earliest where none), until together they have read every
                     partition up to its end; they commit and leave the group.
                     -> {"members": [{"assignments": [[P, ...], ...], "records": [...]}]}
Keys, values and header values are text. Any failure exits non-zero with the reason on stderr.
"""

import json
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT = 30.0


def create_topic(bootstrap, req):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(req["topic"], num_partitions=req["partitions"], replication_factor=1)],
        operation_timeout=TIMEOUT,
    )
    for f in futures.values():
        f.result(timeout=TIMEOUT)
    return {"created": True}


def produce(bootstrap, req):
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            # librdkafka's default (consistent_random) hashes keys with CRC32; murmur2_random
            # places keys as the Java client does.
            "partitioner": "murmur2_random",
            # Without this, unkeyed records sent within 10 ms all stick to one partition.
            "sticky.partitioning.linger.ms": 0,
            "compression.type": req.get("compression") or "none",
            # Idempotence exercises InitProducerId and per-partition sequence numbers.
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "message.max.bytes": 2 << 20,
        }
    )
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    for r in req["records"]:
        kwargs = {"value": r["value"].encode(), "on_delivery": delivered}
        if r.get("key") is not None:
            kwargs["key"] = r["key"].encode()
        if r.get("headers"):
            kwargs["headers"] = [(k, v.encode()) for k, v in r["headers"]]
        if r.get("timestamp") is not None:
            kwargs["timestamp"] = r["timestamp"]
        if r.get("partition") is not None:
            kwargs["partition"] = r["partition"]
        producer.produce(req["topic"], **kwargs)
        producer.poll(0)
    left = producer.flush(TIMEOUT)
    if left:
        raise RuntimeError(f"{left} records not delivered within {TIMEOUT}s")
    if errors:
        raise RuntimeError("delivery failed: " + "; ".join(errors))
    return {"sent": len(req["records"])}


def transact(bootstrap, req):
    # One transaction committed, then one aborted, from one transactional producer; the
    # aborted records are acknowledged before the abort, so they are in the log.
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": req["transactional_id"],
            "linger.ms": 5,
        }
    )
    producer.init_transactions(TIMEOUT)
    for values, commit in ((req["commit"], True), (req["abort"], False)):
        producer.begin_transaction()
        for v in values:
            producer.produce(req["topic"], value=v.encode(), partition=req.get("partition", 0))
        left = producer.flush(TIMEOUT)
        if left:
            raise RuntimeError(f"{left} records not delivered within {TIMEOUT}s")
        if commit:
            producer.commit_transaction(TIMEOUT)
        else:
            producer.abort_transaction(TIMEOUT)
    return {"committed": len(req["commit"]), "aborted": len(req["abort"])}


def new_consumer(bootstrap):
    # The client insists on a group.id, but assign() never joins the group and, with offsets
    # neither stored nor committed, no group API is needed.
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "poste-compat-python",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "fetch.message.max.bytes": 2 << 20,
        }
    )


def text(b):
    return None if b is None else b.decode()


def record_of(msg):
    ts_type, ts = msg.timestamp()
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": text(msg.key()),
        "value": text(msg.value()),
        "headers": [[k, text(v)] for k, v in (msg.headers() or [])],
        "timestamp": ts,
        "timestamp_type": "create" if ts_type == TIMESTAMP_CREATE_TIME else "log_append",
    }


def consume(bootstrap, req):
    consumer = new_consumer(bootstrap)
    try:
        assignment = []
        ends = {}
        for topic in req["topics"]:
            meta = consumer.list_topics(topic, timeout=TIMEOUT).topics[topic]
            if meta.error is not None:
                raise KafkaException(meta.error)
            for p in sorted(meta.partitions):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)
                ends[(topic, p)] = high
                assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        consumer.assign(assignment)
        pending = {tp for tp, high in ends.items() if high > 0}
        records = []
        while pending:
            msg = consumer.poll(TIMEOUT)
            if msg is None:
                raise RuntimeError(f"no record within {TIMEOUT}s; still reading {sorted(pending)}")
            tp = (msg.topic(), msg.partition())
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if tp in pending and msg.offset() >= ends[tp]:
                        pending.discard(tp)
                    continue
                raise KafkaException(msg.error())
            records.append(record_of(msg))
            if msg.offset() + 1 >= ends[tp]:
                pending.discard(tp)
        return {"records": records}
    finally:
        consumer.close()


def offsets_for_times(bootstrap, req):
    consumer = new_consumer(bootstrap)
    try:
        offsets = []
        # One lookup per timestamp: a list naming a partition twice is not a valid request.
        for ts in req["timestamps"]:
            (tp,) = consumer.offsets_for_times(
                [TopicPartition(req["topic"], req["partition"], ts)], timeout=TIMEOUT
            )
            if tp.error is not None:
                raise KafkaException(tp.error)
            offsets.append(tp.offset)
        return {"offsets": offsets}
    finally:
        consumer.close()


def group_consume(bootstrap, req):
    topic = req["topic"]
    # Partitions still to read, with the offset of the last record of each.
    pending = {int(p): end - 1 for p, end in req["ends"].items() if end > 0}
    members = []
    for _ in range(req["members"]):
        member = {"assignments": [], "records": []}

        def on_assign(consumer, partitions, member=member):
            member["assignments"].append(sorted(tp.partition for tp in partitions))

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": req["group"],
                "auto.offset.reset": "earliest",
                # Offsets are stored as records reach the application and committed below.
                "enable.auto.commit": False,
                "fetch.message.max.bytes": 2 << 20,
            }
        )
        consumer.subscribe([topic], on_assign=on_assign)
        members.append((consumer, member))
    try:
        deadline = time.monotonic() + TIMEOUT
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"group read nothing more within {TIMEOUT}s; still reading {sorted(pending)}")
            # Polling every member in turn keeps each one's rebalance callbacks served.
            for consumer, member in members:
                msg = consumer.poll(0.1)
                if msg is None:
                    continue
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                deadline = time.monotonic() + TIMEOUT
                member["records"].append(record_of(msg))
                if pending.get(msg.partition(), -1) <= msg.offset():
                    pending.pop(msg.partition(), None)
        for consumer, _ in members:
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:
                # A member that read nothing has nothing to commit.
                if e.args[0].code() != KafkaError._NO_OFFSET:
                    raise
    finally:
        for consumer, _ in members:
            consumer.close()
    return {"members": [m for _, m in members]}


COMMANDS = {
    "create_topic": create_topic,
    "produce": produce,
    "consume": consume,
    "offsets_for_times": offsets_for_times,
    "group_consume": group_consume,
    "transact": transact,
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in COMMANDS:
        sys.exit(f"usage: compat.py BOOTSTRAP {{{'|'.join(COMMANDS)}}}")
    req = json.loads(sys.stdin.read() or "{}")
    result = COMMANDS[sys.argv[2]](sys.argv[1], req)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
