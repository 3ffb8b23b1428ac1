import t from 'tap'
import { Redis } from 'ioredis'
import { PAGE_AFTER_SCRIPT } from '../src/revocation/redis-copy.ts'
import { RedisRevocationList } from '../src/revocation/index.ts'
import { revocationContract } from './revocation-contract.ts'
import { startRedisLists, sleep } from './fixtures/redis-lists.ts'

const { server, connect, createList } = await startRedisLists(t)

/** Bound for a wait: generous, a loaded 2-core machine is many times slower. */
const WAIT_MS = 30_000

/** Polls `check` every millisecond for up to `ms`; returns the time it took, or -1. */
async function waitFor (check: () => boolean, ms = WAIT_MS): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < ms) {
    if (check()) return performance.now() - start
    await sleep(1)
  }
  return check() ? performance.now() - start : -1
}

let contractRun = 0
revocationContract(t, 'redis', async (clock) =>
  createList({ clock, keyPrefix: `gatehouse:contract-${++contractRun}:` }))

t.test('redis: the layout the gateway team reads', async (t) => {
  const raw = connect()
  const sub = connect()
  const messages: string[] = []
  sub.on('message', (_channel: string, message: string) => messages.push(message))
  await sub.subscribe('gatehouse:revocations')
  const list = createList()
  await list.ready()

  const before = Date.now()
  await list.revoke({ jti: 'j1', sid: 's1' }, 60)
  const after = Date.now()
  for (const [kind, id] of [['jti', 'j1'], ['sid', 's1']] as const) {
    const key = `gatehouse:{revocations}:${kind}`
    t.equal(await raw.type(key), 'zset', `${key} is a sorted set`)
    const score = Number(await raw.zscore(key, id))
    t.ok(score >= before + 60_000 && score <= after + 60_000, `${key} scores ${id} with its expiry in ms`)
    const pttl = await raw.pttl(key)
    t.ok(pttl > 59_000 && pttl <= 60_000, `${key} has a TTL covering its latest score (${pttl} ms)`)
    await waitFor(() => messages.length === 2)
    t.same(messages.map((m) => JSON.parse(m)).find((m) => m.t === kind), { t: kind, id, exp: score })
  }
  t.equal(await raw.exists('gatehouse:{revocations}:jti'), 1)
})

t.test('redis: writes drop expired members and only ever raise the key TTL', async (t) => {
  const raw = connect()
  let now = Date.now()
  const list = createList({ clock: { now: () => now }, keyPrefix: 'gatehouse:sweep:' })
  await list.ready()
  await list.revoke({ jti: 'long' }, 300)
  await list.revoke({ jti: 'short' }, 1)
  t.ok(await raw.pttl('gatehouse:sweep:{revocations}:jti') > 299_000, 'a shorter entry keeps the longer TTL')
  now += 2000
  await list.revoke({ jti: 'new' }, 1)
  t.same(await raw.zrange('gatehouse:sweep:{revocations}:jti', 0, -1), ['new', 'long'], '"short" was swept')
})

t.test('redis: a revoke through A is seen by B', async (t) => {
  const a = createList({ keyPrefix: 'gatehouse:ab:' })
  const b = createList({ keyPrefix: 'gatehouse:ab:' })
  await Promise.all([a.ready(), b.ready()])
  const delays: number[] = []
  for (let i = 0; i < 20; i++) {
    await a.revoke(i % 2 === 0 ? { jti: `j${i}` } : { sid: `s${i}` }, 60)
    const claims = i % 2 === 0 ? { jti: `j${i}` } : { jti: 'x', sid: `s${i}` }
    const delay = await waitFor(() => b.isRevoked(claims))
    t.ok(delay >= 0, `entry ${i} reached B`)
    delays.push(delay)
  }
  t.comment(`A -> B delay over 20 revokes: max ${Math.max(...delays).toFixed(2)} ms, ` +
    `median ${delays.sort((x, y) => x - y)[10]?.toFixed(2)} ms`)
  t.equal(b.size, 20)
})

t.test('redis: a resync loads 20,000 pre-seeded entries, skips expired ones', async (t) => {
  const raw = connect()
  const now = Date.now()
  const jti = 'gatehouse:seed:{revocations}:jti'
  const sid = 'gatehouse:seed:{revocations}:sid'
  const seed = raw.pipeline()
  // 12,000 entries share one score, more than a 10,000 page: the cursor must cross a tie.
  const tied: Array<number | string> = []
  for (let i = 0; i < 12_000; i++) tied.push(now + 600_000, `tied-${i}`)
  seed.zadd(jti, ...tied)
  for (let i = 0; i < 3000; i++) seed.zadd(jti, now + 60_000 + i, `spread-${i}`)
  for (let i = 0; i < 1000; i++) seed.zadd(jti, now - 1000 - i, `expired-${i}`)
  for (let i = 0; i < 5000; i++) seed.zadd(sid, now + 60_000 + i * 7, `session-${i}`)
  seed.pexpire(jti, 700_000).pexpire(sid, 700_000)
  await seed.exec()

  const list = createList({ keyPrefix: 'gatehouse:seed:' })
  const start = performance.now()
  await list.ready()
  t.comment(`resync of 20,000 entries: ${(performance.now() - start).toFixed(1)} ms`)
  t.equal(list.size, 20_000)
  t.ok(Array.from({ length: 12_000 }, (_, i) => `tied-${i}`).every((id) => list.isRevoked({ jti: id })), 'tied')
  t.ok(Array.from({ length: 3000 }, (_, i) => `spread-${i}`).every((id) => list.isRevoked({ jti: id })), 'spread')
  t.ok(Array.from({ length: 5000 }, (_, i) => `session-${i}`).every((id) => list.isRevoked({ sid: id })), 'sid')
  t.notOk(list.isRevoked({ jti: 'expired-0' }), 'expired entries are not loaded')
})

t.test('redis: a page after a cursor that moved restarts at the cursor\'s score', async (t) => {
  const raw = connect()
  const key = 'gatehouse:cursor:{revocations}:jti'
  await raw.zadd(key, 5, 'a', 5, 'b', 5, 'c', 5, 'd', 9, 'e')
  await raw.pexpire(key, 60_000)
  t.same(await raw.eval(PAGE_AFTER_SCRIPT, 1, key, 2, 'b', '5'), ['c', '5', 'd', '5'], 'right after b')
  await raw.zadd(key, 7, 'b') // re-revoked while we copy: the rank of b means nothing now
  t.same(await raw.eval(PAGE_AFTER_SCRIPT, 1, key, 3, 'b', '5'), ['a', '5', 'c', '5', 'd', '5'])
  await raw.zrem(key, 'a')
  t.same(await raw.eval(PAGE_AFTER_SCRIPT, 1, key, 3, 'a', '5'), ['c', '5', 'd', '5', 'b', '7'])
})

t.test('redis: revocations published during a resync are not lost', async (t) => {
  const raw = connect()
  const now = Date.now()
  const args: Array<number | string> = []
  for (let i = 0; i < 50_000; i++) args.push(now + 600_000 + i, `pre-${i}`)
  await raw.zadd('gatehouse:race:{revocations}:jti', ...args)
  await raw.pexpire('gatehouse:race:{revocations}:jti', 700_000)

  const writer = createList({ keyPrefix: 'gatehouse:race:' })
  const reader = createList({ keyPrefix: 'gatehouse:race:', pageSize: 1000 })
  const written: string[] = []
  let writtenDuringSync = -1
  const syncing = reader.ready().then(() => { writtenDuringSync = written.length })
  while (written.length < 200) {
    const id = `during-${written.length}`
    await writer.revoke({ jti: id }, 60)
    written.push(id)
  }
  await syncing
  t.comment(`${writtenDuringSync} of 200 revokes landed while the reader was syncing`)
  t.ok(writtenDuringSync > 0, 'the writes did overlap the sync')
  t.ok(await waitFor(() => written.every((id) => reader.isRevoked({ jti: id }))) >= 0, 'all 200 seen')
  t.equal(reader.size, 50_200)
})

t.test('redis: malformed messages are logged and ignored', async (t) => {
  const warnings: string[] = []
  const list = createList({ keyPrefix: 'gatehouse:junk:', log: { warn: (_obj, msg) => { warnings.push(msg) } } })
  await list.ready()
  const raw = connect()
  await raw.publish('gatehouse:junk:revocations', 'not json')
  await raw.publish('gatehouse:junk:revocations', '{"t":"nope","id":"x","exp":1}')
  t.ok(await waitFor(() => warnings.length === 2) >= 0)
  t.equal(list.size, 0)
})

t.test('redis: close() quits only the connections it created', async (t) => {
  const redis = connect()
  const given = connect()
  const shared = new RedisRevocationList({ redis, subscriber: given, keyPrefix: 'gatehouse:close:' })
  await shared.ready()
  await shared.close()
  t.equal(redis.status, 'ready', 'the command connection is the caller\'s')
  t.equal(given.status, 'ready', 'a given subscriber stays open')
  let made: Redis | undefined
  const owned = new RedisRevocationList({ redis, subscriber: () => (made = new Redis(server.url)) })
  await owned.ready()
  await owned.close()
  t.equal(made?.status, 'end', 'a factory\'s subscriber is quit')
  await t.rejects(owned.ready(), /closed/)
})

t.test('redis: ready() during the subscriber\'s handshake does not fail its ready check', async (t) => {
  const subscriber = connect()
  let reconnects = 0
  subscriber.on('close', () => reconnects++)
  t.equal(subscriber.status, 'connecting')
  const list = createList({ subscriber, keyPrefix: 'gatehouse:handshake:' })
  await new Promise<void>((resolve) => subscriber.once('connect', () => resolve()))
  t.equal(subscriber.status, 'connect', 'socket open, ready check pending')
  await list.ready()
  t.equal(subscriber.status, 'ready')
  t.equal(reconnects, 0, 'the ready check did not fail')
})

t.test('redis: every key written has a TTL, but the epoch', async (t) => {
  const raw = connect()
  const keys = await raw.keys('*')
  t.ok(keys.length >= 10, `${keys.length} keys`)
  for (const key of keys) {
    // The epoch is one small key per list, gone only when Redis loses its data (revocation-writeback.test.ts).
    if (key.endsWith('{revocations}:epoch') || key.endsWith('{revocations}:run')) t.equal(await raw.pttl(key), -1, `${key} has none`)
    else t.ok(await raw.pttl(key) > 0, `${key} has a TTL`)
  }
  t.ok(keys.every((key) => key.startsWith('gatehouse:')), 'and the gatehouse: prefix')
})

t.test('redis: staleness grows while Redis is down and recovers after a restart', async (t) => {
  const writer = createList({ keyPrefix: 'gatehouse:restart:', heartbeatMs: 50 })
  const reader = createList({ keyPrefix: 'gatehouse:restart:', heartbeatMs: 50 })
  await Promise.all([writer.ready(), reader.ready()])
  await writer.revoke({ sid: 'before' }, 600)
  t.ok(await waitFor(() => reader.isRevoked({ sid: 'before' })) >= 0)
  // Heartbeats every 50 ms keep it low while connected, whatever the load.
  t.ok(await waitFor(() => reader.staleness < 200) >= 0, `connected: staleness ${reader.staleness} ms`)

  await server.kill()
  t.ok(await waitFor(() => reader.staleness >= 900) >= 0, `Redis down: staleness grows (${reader.staleness} ms)`)
  t.ok(reader.isRevoked({ sid: 'before' }), 'the mirror still answers')

  await server.start() // empty: nothing was persisted
  await writer.revoke({ sid: 'after' }, 600)
  const delay = await waitFor(() => reader.isRevoked({ sid: 'after' }))
  t.ok(delay >= 0, 'an entry written after the restart is mirrored')
  t.ok(await waitFor(() => reader.staleness < 200) >= 0, `staleness recovered (${reader.staleness} ms)`)
  t.ok(reader.isRevoked({ sid: 'before' }), 'a resync is a union: entries Redis lost stay until they expire')
  t.equal(reader.size, 2)
})
