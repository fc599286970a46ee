#!/usr/bin/env node
// Drives kafkajs against a Poste broker for the compatibility suite (compat_test.go).
//
// Usage: node compat.js BOOTSTRAP COMMAND < request.json > result.json
// The request and result shapes are the same as compat.py's; see the comment there.
// Any failure exits non-zero with the reason on stderr.
'use strict'

const { Kafka, Partitioners, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
// kafkajs has no consumer without a consumer group: reading without one (consume) goes
// through kafkajs's own cluster and broker objects (the ones its consumer uses), which issue
// Metadata, ListOffsets and Fetch and decode the batches, compressed or not. groupConsume
// uses kafkajs's consumer and its group.
const Cluster = require('kafkajs/src/cluster')
const { createLogger } = require('kafkajs/src/loggers')
const LoggerConsole = require('kafkajs/src/loggers/console')
const defaultSocketFactory = require('kafkajs/src/network/socketFactory')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
const zstd = require('@mongodb-js/zstd')

// kafkajs ships gzip only; the other codecs are plugged in here. @kafkajs/zstd needs a native
// build that fails on Node 20, so zstd uses @mongodb-js/zstd (prebuilt) through a small adapter.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: async encoder => zstd.compress(encoder.buffer),
  decompress: async buffer => zstd.decompress(buffer),
})

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

const clientId = 'poste-compat-kafkajs'

function newKafka(bootstrap) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 5000,
    retry: { retries: 3 },
  })
}

async function createTopic(bootstrap, req) {
  const admin = newKafka(bootstrap).admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: req.topic, numPartitions: req.partitions, replicationFactor: 1 }],
    })
    if (!created) throw new Error(`topic ${req.topic} already existed`)
    return { created: true }
  } finally {
    await admin.disconnect()
  }
}

async function produce(bootstrap, req) {
  const compression = codecs[req.compression || 'none']
  if (compression === undefined) throw new Error(`unknown compression ${req.compression}`)
  // The default partitioner of kafkajs 2.x hashes keys with murmur2 as the Java client does;
  // naming it keeps kafkajs from warning that the default changed in 2.0.
  const producer = newKafka(bootstrap).producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  })
  await producer.connect()
  try {
    const messages = req.records.map(r => {
      const m = { key: r.key === null || r.key === undefined ? null : r.key, value: r.value }
      if (r.headers) m.headers = Object.fromEntries(r.headers)
      if (r.timestamp !== null && r.timestamp !== undefined) m.timestamp = String(r.timestamp)
      if (r.partition !== null && r.partition !== undefined) m.partition = r.partition
      return m
    })
    // One send is one produce request; records of a partition keep their order in it.
    const acks = await producer.send({ topic: req.topic, acks: -1, compression, messages })
    for (const a of acks) {
      if (a.errorCode !== 0) throw new Error(`partition ${a.partition}: error code ${a.errorCode}`)
    }
    return { sent: messages.length }
  } finally {
    await producer.disconnect()
  }
}

// transact commits one transaction and aborts another from one transactional producer.
async function transact(bootstrap, req) {
  const producer = newKafka(bootstrap).producer({
    transactionalId: req.transactional_id,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  })
  await producer.connect()
  try {
    for (const [values, commit] of [[req.commit, true], [req.abort, false]]) {
      const txn = await producer.transaction()
      await txn.send({
        topic: req.topic,
        acks: -1,
        messages: values.map(v => ({ value: v, partition: req.partition || 0 })),
      })
      if (commit) await txn.commit()
      else await txn.abort()
    }
    return { committed: req.commit.length, aborted: req.abort.length }
  } finally {
    await producer.disconnect()
  }
}

function newCluster(bootstrap) {
  return new Cluster({
    logger: createLogger({ level: logLevel.WARN, logCreator: LoggerConsole }),
    socketFactory: defaultSocketFactory(),
    brokers: [bootstrap],
    clientId,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 3 },
    allowAutoTopicCreation: false,
  })
}

async function consume(bootstrap, req) {
  const admin = newKafka(bootstrap).admin()
  const cluster = newCluster(bootstrap)
  await admin.connect()
  await cluster.connect()
  try {
    const records = []
    for (const topic of req.topics) {
      // ListOffsets (latest) through the admin client gives each partition's end.
      const ends = await admin.fetchTopicOffsets(topic)
      await cluster.addTargetTopic(topic)
      await cluster.refreshMetadata()
      for (const p of cluster.findTopicPartitionMetadata(topic)) {
        const end = BigInt(ends.find(e => e.partition === p.partitionId).high)
        const broker = await cluster.findBroker({ nodeId: p.leader })
        let next = 0n
        while (next < end) {
          const res = await broker.fetch({
            maxWaitTime: 500,
            minBytes: 1,
            maxBytes: 4 << 20,
            isolationLevel: 1,
            topics: [
              { topic, partitions: [{ partition: p.partitionId, fetchOffset: String(next), maxBytes: 2 << 20 }] },
            ],
          })
          const part = res.responses[0].partitions[0]
          if (part.errorCode !== 0) throw new Error(`fetch ${topic}/${p.partitionId}: error code ${part.errorCode}`)
          for (const m of part.messages) {
            const offset = BigInt(m.offset)
            // A fetch may return a whole batch that starts before the requested offset.
            if (offset < next || m.isControlRecord) continue
            records.push({
              topic,
              partition: p.partitionId,
              offset: Number(offset),
              key: m.key === null ? null : m.key.toString(),
              value: m.value === null ? null : m.value.toString(),
              headers: headerPairs(m.headers),
              timestamp: Number(m.timestamp),
              timestamp_type: m.batchContext.timestampType === 0 ? 'create' : 'log_append',
            })
            next = offset + 1n
          }
        }
      }
    }
    return { records }
  } finally {
    await cluster.disconnect()
    await admin.disconnect()
  }
}

// kafkajs decodes headers into an object whose repeated keys hold arrays; the suite compares
// ordered pairs, so repeated keys are not used by its scenarios.
function headerPairs(headers) {
  const pairs = []
  for (const [k, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) pairs.push([k, one.toString()])
  }
  return pairs
}

async function offsetsForTimes(bootstrap, req) {
  const admin = newKafka(bootstrap).admin()
  await admin.connect()
  try {
    const offsets = []
    for (const ts of req.timestamps) {
      const res = await admin.fetchTopicOffsetsByTimestamp(req.topic, ts)
      offsets.push(Number(res.find(r => r.partition === req.partition).offset))
    }
    return { offsets }
  } finally {
    await admin.disconnect()
  }
}

// groupConsume runs req.members consumers of group req.group subscribed to req.topic, from
// the group's committed offsets (the earliest where none), until together they have read
// every partition up to req.ends; kafkajs commits what each has read after every batch, and
// disconnecting leaves the group.
async function groupConsume(bootstrap, req) {
  const kafka = newKafka(bootstrap)
  // Partitions still to read, with the offset of the last record of each.
  const pending = new Map()
  for (const [p, end] of Object.entries(req.ends)) if (end > 0) pending.set(Number(p), BigInt(end) - 1n)
  let done
  const allRead = new Promise(resolve => (done = resolve))
  if (pending.size === 0) done()
  const members = []
  const consumers = []
  for (let i = 0; i < req.members; i++) {
    const member = { assignments: [], records: [] }
    const consumer = kafka.consumer({ groupId: req.group, maxBytesPerPartition: 2 << 20, allowAutoTopicCreation: false })
    consumer.on(consumer.events.GROUP_JOIN, e => {
      member.assignments.push([...(e.payload.memberAssignment[req.topic] || [])].sort((a, b) => a - b))
    })
    members.push(member)
    consumers.push(consumer)
  }
  try {
    // run() resolves only once its consumer has joined: the members start together, so that
    // they join within the group's initial rebalance delay and share its first generation.
    await Promise.all(
      consumers.map(async (consumer, i) => {
        await consumer.connect()
        await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
        await consumer.run({
          eachMessage: async ({ topic, partition, message }) => {
            members[i].records.push({
              topic,
              partition,
              offset: Number(message.offset),
              key: message.key === null ? null : message.key.toString(),
              value: message.value === null ? null : message.value.toString(),
              headers: headerPairs(message.headers),
              timestamp: Number(message.timestamp),
              timestamp_type: message.batchContext.timestampType === 0 ? 'create' : 'log_append',
            })
            const last = pending.get(partition)
            if (last !== undefined && BigInt(message.offset) >= last) {
              pending.delete(partition)
              if (pending.size === 0) done()
            }
          },
        })
      })
    )
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`group still reading partitions ${[...pending.keys()]} after 60s`)), 60000)
    })
    await Promise.race([allRead, timeout]).finally(() => clearTimeout(timer))
  } finally {
    // stop() lets each member finish its batch, whose offsets it then commits.
    for (const consumer of consumers) await consumer.disconnect()
  }
  return { members }
}

const commands = {
  create_topic: createTopic,
  produce,
  consume,
  offsets_for_times: offsetsForTimes,
  group_consume: groupConsume,
  transact,
}

async function main() {
  const [bootstrap, command] = process.argv.slice(2)
  const run = commands[command]
  if (!bootstrap || !run) throw new Error(`usage: compat.js BOOTSTRAP {${Object.keys(commands).join('|')}}`)
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  const req = JSON.parse(Buffer.concat(chunks).toString() || '{}')
  const result = await run(bootstrap, req)
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch(err => {
  process.stderr.write(`compat.js: ${err.stack || err}\n`)
  process.exit(1)
})
