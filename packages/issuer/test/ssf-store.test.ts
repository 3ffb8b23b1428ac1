/**
 * The Shared Signals store: one contract on the embedded file store, Redis and a one-node
 * Redis Cluster; then what only one backend has (files on disk and restarts; Redis keys, TTLs,
 * slots, epochs and pub/sub between instances).
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { EVENTS_FILE, FileSignalStore, STREAMS_FILE } from '../src/stores/file-signals.ts'
import { RedisSignalStore } from '../src/stores/redis-signals.ts'
import { createRedisClient, createSubscriberClient } from '../src/stores/redis-connection.ts'
import type { SignalStore } from '../src/stores/types.ts'
import { makeEvent, makeStream, SignalClock, signalStoreContract } from './fixtures/signal-store-contract.ts'
import { waitFor } from './fixtures/flows.ts'

const HOUR = 3_600_000

const server = await startRedis()
const cluster = await startRedis({
  // Without an announced IP a lone node lists itself as "" in CLUSTER SLOTS.
  args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(t.testdir(), 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1']
})
const raw = new Redis(server.url)
const rawCluster = new Redis(cluster.url)
await rawCluster.cluster('ADDSLOTSRANGE', 0, 16383)
const deadline = Date.now() + 60_000
while (!(await rawCluster.cluster('INFO') as string).includes('cluster_state:ok')) {
  if (Date.now() > deadline) throw new Error('the one-node cluster never reached cluster_state:ok')
  await sleep(20)
}
const client = createRedisClient({ url: server.url })
const subscriber = createSubscriberClient(client)
const clusterClient = createRedisClient({ cluster: { nodes: [{ host: '127.0.0.1', port: cluster.port }] } })
const clusterSubscriber = createSubscriberClient(clusterClient)
t.teardown(async () => {
  for (const c of [client, subscriber, clusterClient, clusterSubscriber, raw, rawCluster]) c.disconnect()
  await server.stop()
  await cluster.stop()
})

/** An opened store, closed when the subtest ends. */
async function opened<S extends SignalStore> (t: Test, store: S): Promise<S> {
  await store.open()
  t.teardown(async () => await store.close())
  return store
}

t.test('FileSignalStore', async (t) => {
  signalStoreContract(t, async (t) => await opened(t, new FileSignalStore(join(t.testdir(), 'data'))), new SignalClock())
})

t.test('RedisSignalStore', async (t) => {
  signalStoreContract(t, async (t) => {
    await raw.flushdb()
    return await opened(t, new RedisSignalStore({ redis: client, subscriber }))
  }, new SignalClock())
})

t.test('RedisSignalStore on Cluster', async (t) => {
  signalStoreContract(t, async (t) => {
    await rawCluster.flushdb()
    return await opened(t, new RedisSignalStore({ redis: clusterClient, subscriber: clusterSubscriber }))
  }, new SignalClock())
})

t.test('file store: a restart keeps the log, the streams and what they acknowledged', async (t) => {
  const dir = join(t.testdir(), 'data')
  const clock = new SignalClock()
  const first = new FileSignalStore(dir)
  await first.open()
  const events = [makeEvent(clock), makeEvent(clock), makeEvent(clock)]
  await first.append(events, clock.now() + HOUR, clock.now())
  const stream = makeStream(clock)
  await first.createStream(stream, 10, clock.now())
  await first.poll(stream.id, { ack: [events[0]!.jti], max: 0, since: 0, now: clock.now() })
  await first.close()
  t.equal((await stat(dir)).mode & 0o777, 0o700)
  t.same((await readdir(dir)).sort(), [EVENTS_FILE, STREAMS_FILE], 'no temp file left')
  for (const file of [EVENTS_FILE, STREAMS_FILE]) t.equal((await stat(join(dir, file))).mode & 0o777, 0o600, `${file} is 0600`)

  const second = await opened(t, new FileSignalStore(dir))
  t.same(await second.getStream(stream.id, clock.now()), stream)
  const result = await second.poll(stream.id, { ack: [], max: 10, since: 0, now: clock.now() })
  t.same(result?.events.map((e) => e.jti), [events[1]!.jti, events[2]!.jti], 'the acknowledgement survived the close')
  const later = makeEvent(clock)
  await second.append([later], clock.now() + HOUR, clock.now())
  const all = await second.poll(stream.id, { ack: [], max: 10, since: 0, now: clock.now() })
  t.ok(all!.events.at(-1)!.seq > result!.events.at(-1)!.seq, 'numbering goes on after the restart')
})

t.test('file store: after a crash no event is lost; acknowledgements are written within a second', async (t) => {
  const dir = join(t.testdir(), 'data')
  const clock = new SignalClock()
  const crashed = new FileSignalStore(dir)
  await crashed.open()
  const stream = makeStream(clock)
  await crashed.createStream(stream, 10, clock.now())
  const event = makeEvent(clock)
  await crashed.append([event], clock.now() + HOUR, clock.now())
  // No close: what is on disk is what a crash leaves.
  const afterCrash = new FileSignalStore(dir)
  await afterCrash.open()
  t.same((await afterCrash.poll(stream.id, { ack: [], max: 10, since: 0, now: clock.now() }))?.events.map((e) => e.jti), [event.jti], 'the stream and the event were written before they answered')
  await afterCrash.close()

  await crashed.poll(stream.id, { ack: [event.jti], max: 0, since: 0, now: clock.now() })
  const flushed = await waitFor(async () => (await readFile(join(dir, STREAMS_FILE), 'utf8')).includes('"acked":[]') &&
    JSON.parse(await readFile(join(dir, STREAMS_FILE), 'utf8')).streams[0].cursor >= 1)
  t.not(flushed, -1, `the acknowledgement reached the disk (after ${flushed} ms) without a close`)
  const reopened = await opened(t, new FileSignalStore(dir))
  t.same((await reopened.poll(stream.id, { ack: [], max: 10, since: 0, now: clock.now() }))?.events, [])
  await crashed.close()
})

t.test('file store: a torn last line and an unreadable streams file do not stop it', async (t) => {
  const dir = join(t.testdir(), 'data')
  const clock = new SignalClock()
  const first = new FileSignalStore(dir)
  await first.open()
  const kept = makeEvent(clock)
  await first.append([kept], clock.now() + HOUR, clock.now())
  await first.close()
  await appendFile(join(dir, EVENTS_FILE), '{"seq":2,"jti":"torn')
  await writeFile(join(dir, STREAMS_FILE), 'not json')
  const warnings: string[] = []
  const store = await opened(t, new FileSignalStore(dir, { warn: (_obj: unknown, message?: string) => { warnings.push(String(message)) } } as never))
  t.equal(warnings.length, 2, warnings.join('; '))
  t.ok((await readdir(dir)).some((f) => f.startsWith(`${STREAMS_FILE}.unreadable-`)), 'the unreadable file is kept aside')
  const next = makeEvent(clock)
  await store.append([next], clock.now() + HOUR, clock.now())
  const stream = makeStream(clock)
  await store.createStream(stream, 10, clock.now())
  t.same((await store.poll(stream.id, { ack: [], max: 10, since: 0, now: clock.now() }))?.events.map((e) => e.jti), [kept.jti, next.jti])
  const lines = (await readFile(join(dir, EVENTS_FILE), 'utf8')).split('\n')
  t.equal(lines.length, 3, 'two whole lines and the final newline')
})

t.test('file store: pruning rewrites a log that is mostly dead lines', async (t) => {
  const dir = join(t.testdir(), 'data')
  const clock = new SignalClock()
  const store = await opened(t, new FileSignalStore(dir))
  await store.append(Array.from({ length: 150 }, () => makeEvent(clock)), clock.now() + HOUR, clock.now())
  clock.advance(1000)
  const kept = makeEvent(clock)
  await store.append([kept], clock.now() + HOUR, clock.now())
  await store.prune(clock.now(), clock.now())
  const lines = (await readFile(join(dir, EVENTS_FILE), 'utf8')).trim().split('\n')
  t.same(lines.map((l) => JSON.parse(l).jti), [kept.jti])
})

t.test('redis: keys, hash tags and TTLs', async (t) => {
  await raw.flushdb()
  const clock = new SignalClock()
  const store = await opened(t, new RedisSignalStore({ redis: client, subscriber }))
  const stream = makeStream(clock, 'we{ir}d:client', { expiresAt: clock.now() + HOUR })
  await store.createStream(stream, 10, clock.now())
  await store.append([makeEvent(clock)], clock.now() + 2 * HOUR, clock.now())
  await store.poll(stream.id, { ack: ['nope'], max: 10, since: 0, now: clock.now() })
  await store.lease(stream.id, 'me', 30_000)
  const keys = (await raw.keys('*')).sort()
  t.same(keys, [
    'gatehouse:{ssf}:client:we%007bir%007dd%003aclient',
    'gatehouse:{ssf}:events',
    'gatehouse:{ssf}:head',
    'gatehouse:{ssf}:jti',
    `gatehouse:{ssf}:lease:${stream.id}`,
    `gatehouse:{ssf}:stream:${stream.id}`,
    'gatehouse:{ssf}:streams'
  ])
  for (const key of keys) {
    const pttl = await raw.pttl(key)
    t.ok(pttl > 0 && pttl <= 2 * HOUR, `${key}: PTTL ${pttl}`)
  }
  t.ok(await raw.pttl('gatehouse:{ssf}:events') > HOUR, 'the log lives as long as retention asks')
})

t.test('redis cluster: every key in one slot', async (t) => {
  await rawCluster.flushdb()
  const clock = new SignalClock()
  const store = await opened(t, new RedisSignalStore({ redis: clusterClient, subscriber: clusterSubscriber }))
  const stream = makeStream(clock, 'a}client{')
  await store.createStream(stream, 10, clock.now())
  const event = makeEvent(clock)
  await store.append([event], clock.now() + HOUR, clock.now())
  await store.poll(stream.id, { ack: [event.jti], max: 10, since: 0, now: clock.now() })
  const keys = await rawCluster.keys('*')
  t.ok(keys.length >= 5, keys.join(', '))
  const slots = new Set(await Promise.all(keys.map(async (key) => await rawCluster.cluster('KEYSLOT', key))))
  t.same([...slots], [await rawCluster.cluster('KEYSLOT', 'ssf')])
})

t.test('redis: a log lost from Redis starts a new epoch; streams start over from its top', async (t) => {
  await raw.flushdb()
  const clock = new SignalClock()
  const store = await opened(t, new RedisSignalStore({ redis: client, subscriber }))
  const stream = makeStream(clock)
  await store.createStream(stream, 10, clock.now())
  const early = Array.from({ length: 3 }, () => makeEvent(clock))
  await store.append(early, clock.now() + HOUR, clock.now())
  await store.poll(stream.id, { ack: early.map((e) => e.jti), max: 10, since: 0, now: clock.now() })
  await raw.del('gatehouse:{ssf}:head', 'gatehouse:{ssf}:events', 'gatehouse:{ssf}:jti')
  const after = makeEvent(clock)
  await store.append([after], clock.now() + HOUR, clock.now())
  const result = await store.poll(stream.id, { ack: [], max: 10, since: 0, now: clock.now() })
  t.same(result?.events.map((e) => e.jti), [after.jti], 'numbered 1 again, below the old cursor, and still delivered')
  t.equal(result?.events[0]?.seq, 1)
})

t.test('redis: an append on one instance reaches the listeners of another', async (t) => {
  await raw.flushdb()
  const clock = new SignalClock()
  const otherClient = createRedisClient({ url: server.url })
  const otherSubscriber = createSubscriberClient(otherClient)
  t.teardown(() => { otherClient.disconnect(); otherSubscriber.disconnect() })
  const a = await opened(t, new RedisSignalStore({ redis: client, subscriber }))
  const b = await opened(t, new RedisSignalStore({ redis: otherClient, subscriber: otherSubscriber }))
  let heard = 0
  b.onAppend(() => { heard++ })
  await a.append([makeEvent(clock)], clock.now() + HOUR, clock.now())
  t.not(await waitFor(() => heard > 0), -1, 'b heard a\'s append')
})
