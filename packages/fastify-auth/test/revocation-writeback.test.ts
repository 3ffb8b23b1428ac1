/**
 * Nothing is lost when Redis loses the list (issue 15): an instance that held an entry writes
 * it back, and every instance, including one started after the loss, ends up holding it.
 * Real redis-servers: restarted empty, flushed under running lists, and restarted from an
 * older snapshot (what a failover to a lagging replica does: the epoch is kept, the last
 * writes are not).
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { RedisRevocationList } from '../src/revocation/index.ts'
import { startRedisLists, sleep } from './fixtures/redis-lists.ts'

const { server, clients, connect, createList } = await startRedisLists(t, { heartbeatMs: 50, writeBackJitterMs: 50 })

/** Bound for a wait: generous, a loaded 2-core machine is many times slower. */
const WAIT_MS = 30_000

async function waitFor (check: () => boolean | Promise<boolean>, ms = WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(10)
  }
  return await check()
}

const JTI = 'gatehouse:{revocations}:jti'
const SID = 'gatehouse:{revocations}:sid'
const EPOCH = 'gatehouse:{revocations}:epoch'

t.test('the epoch key: created once, no TTL, the same for every instance', async (t) => {
  const raw = connect()
  const a = createList()
  const b = createList()
  await Promise.all([a.ready(), b.ready()])
  const epoch = await raw.get(EPOCH)
  t.match(epoch, /^[0-9a-f-]{36}\.\d{13}$/, 'a random id and when it began (Redis time, ms)')
  t.equal(await raw.pttl(EPOCH), -1, 'no TTL: it goes only when Redis loses its data')
  t.equal(a.writtenBack + b.writtenBack, 0, 'nothing written back on a first sync')
})

t.test('Redis restarted empty: the survivors write their mirrors back, a list started after it gets every entry', async (t) => {
  const warnings: Array<{ obj: object, msg: string }> = []
  const log = { warn: (obj: object, msg: string) => { warnings.push({ obj, msg }) } }
  // The first test's lists, on the default prefix, would write back the same entries.
  const keyPrefix = 'gatehouse:restart:'
  const [JTI, SID, EPOCH] = ['jti', 'sid', 'epoch'].map((k) => `${keyPrefix}{revocations}:${k}`) as [string, string, string]
  const a = createList({ log, keyPrefix })
  const b = createList({ log, keyPrefix })
  await Promise.all([a.ready(), b.ready()])
  for (let i = 0; i < 50; i++) await a.revoke({ jti: `a-${i}` }, 600)
  await b.revoke({ sid: 'alice' }, 600)
  t.ok(await waitFor(() => b.isRevoked({ jti: 'a-49' }) && a.isRevoked({ sid: 'alice' })), 'both mirrors hold all 51')
  const raw = connect()
  const epochBefore = await raw.get(EPOCH)

  await server.kill()
  t.ok(await waitFor(() => clients.every((c) => c.status !== 'ready')), 'every client saw the drop')
  await server.start() // empty: nothing was persisted
  // Started at once, maybe before the survivors are back: its first copy may find Redis empty.
  const c = createList({ keyPrefix })
  await c.ready()
  t.ok(await waitFor(() => c.isRevoked({ sid: 'alice' }) && c.isRevoked({ jti: 'a-0' }) && c.isRevoked({ jti: 'a-49' })), 'the new list holds every entry')
  t.equal(c.size, 51)
  t.ok(await waitFor(async () => await raw.zcard(JTI) === 50 && await raw.zcard(SID) === 1), 'Redis holds them again')
  t.ok(await raw.pttl(JTI) > 500_000 && await raw.pttl(SID) > 500_000, 'with TTLs covering their expiries')
  t.not(await raw.get(EPOCH), epochBefore, 'a new epoch')
  t.ok(await waitFor(() => a.writtenBack + b.writtenBack === 51 && a.staleness < 1000 && b.staleness < 1000), 'both live again')
  t.equal(a.writtenBack + b.writtenBack, 51, 'each entry counted once as written back, however many wrote it')
  const warning = warnings.find((w) => w.msg.includes('wrote them back'))
  t.ok(warning, 'the write-back is logged')
  t.match(warning?.obj, { reason: /epoch changed/ })
})

t.test('a FLUSHALL under running lists: seen by the heartbeat, written back without a reconnect', async (t) => {
  const a = createList()
  const b = createList()
  await Promise.all([a.ready(), b.ready()])
  await a.revoke({ jti: 'flushed-j', sid: 'flushed-s' }, 600)
  t.ok(await waitFor(() => b.isRevoked({ jti: 'flushed-j' })))
  const raw = connect()
  await raw.flushall()
  t.ok(await waitFor(async () => Number(await raw.zscore(JTI, 'flushed-j')) > Date.now() && Number(await raw.zscore(SID, 'flushed-s')) > Date.now()), 'back in Redis')
  const c = createList()
  await c.ready()
  t.ok(c.isRevoked({ jti: 'flushed-j' }) && c.isRevoked({ sid: 'flushed-s' }), 'a list started afterwards has them')
})

t.test('many instances writing back at once: Redis ends with exactly the union, never a shorter expiry', async (t) => {
  const raw = connect()
  await raw.flushall()
  const lists = Array.from({ length: 5 }, () => createList({ keyPrefix: 'gatehouse:herd:' }))
  await Promise.all(lists.map(async (l) => await l.ready()))
  const before = lists.reduce((n, l) => n + l.writtenBack, 0)
  // 2,000 entries through the lists, and one Redis will hold longer than any mirror knows.
  for (let i = 0; i < 2000; i++) await (lists[i % 5] as RedisRevocationList).revoke({ jti: `h-${i}` }, 600)
  t.ok(await waitFor(() => lists.every((l) => l.size === 2000)), 'every mirror has all 2,000')
  await raw.del('gatehouse:herd:{revocations}:jti', 'gatehouse:herd:{revocations}:epoch')
  const later = Date.now() + 3_600_000
  await raw.zadd('gatehouse:herd:{revocations}:jti', later, 'h-7')
  t.ok(await waitFor(async () => await raw.zcard('gatehouse:herd:{revocations}:jti') === 2000), 'all 2,000 back')
  t.ok(await waitFor(() => lists.every((l) => l.staleness < 1000)), 'every list live again')
  t.ok(await waitFor(() => lists.reduce((n, l) => n + l.writtenBack, 0) - before >= 1999))
  t.equal(lists.reduce((n, l) => n + l.writtenBack, 0) - before, 1999, 'each lost entry counted once (h-7 was not lost)')
  t.equal(Number(await raw.zscore('gatehouse:herd:{revocations}:jti', 'h-7')), later, 'the longer expiry in Redis stays')
  t.ok(await raw.pttl('gatehouse:herd:{revocations}:jti') > 3_500_000, 'and the key TTL covers it')
})

t.test('restarted from an older snapshot (a lagging replica): same epoch, new run_id, the last writes come back', async (t) => {
  const dir = t.testdir()
  const snapshotted = await startRedis({ args: ['--dir', dir, '--dbfilename', 'dump.rdb'] })
  const own: Redis[] = []
  const client = (): Redis => {
    const c = new Redis(snapshotted.url, { retryStrategy: () => 50, maxRetriesPerRequest: null })
    c.on('error', () => {})
    own.push(c)
    return c
  }
  const a = new RedisRevocationList({ redis: client(), heartbeatMs: 50, writeBackJitterMs: 50 })
  t.teardown(async () => {
    await a.close()
    for (const c of own) c.disconnect()
    await snapshotted.stop()
  })
  await a.ready()
  await a.revoke({ jti: 'in-snapshot' }, 600)
  const raw = client()
  await raw.save()
  const epoch = await raw.get(EPOCH)
  await a.revoke({ jti: 'after-snapshot' }, 600)
  await snapshotted.kill()
  await snapshotted.start()
  const raw2 = client()
  t.equal(await raw2.get(EPOCH), epoch, 'the snapshot kept the epoch')
  t.ok(await waitFor(async () => await raw2.zscore(JTI, 'after-snapshot') !== null), 'the write the snapshot missed is back')
  t.equal(await raw2.get(EPOCH), epoch, 'still the same epoch')
  t.equal(a.writtenBack, 1, 'only what Redis lacked counts')
})

t.test('a list started right after the loss, before any survivor is back, waits for their write-back before ready', async (t) => {
  const keyPrefix = 'gatehouse:settle:'
  const own: Redis[] = []
  // The survivor reconnects 1.5 s after a drop (ioredis' back-off reaches 2 s in a long outage).
  const slow = new Redis(server.url, { retryStrategy: () => 1500, maxRetriesPerRequest: null })
  slow.on('error', () => {})
  own.push(slow)
  const survivor = new RedisRevocationList({ redis: slow, keyPrefix, heartbeatMs: 50, writeBackJitterMs: 200, settleMs: 0 })
  t.teardown(async () => {
    await survivor.close()
    for (const c of own) c.disconnect()
  })
  await survivor.ready()
  await survivor.revoke({ sid: 'alice' }, 600)
  await server.kill()
  await server.start()
  const warnings: string[] = []
  const started = performance.now()
  const late = createList({ keyPrefix, settleMs: 3000, log: { warn: (_obj: object, msg: string) => { warnings.push(msg) } } })
  await late.ready()
  t.comment(`ready after ${Math.round(performance.now() - started)} ms`)
  t.ok(late.isRevoked({ sid: 'alice' }), 'ready with the survivor\'s entry')
  t.ok(warnings.some((m) => m.includes('waiting for other instances')), 'the wait is logged')
  t.ok(survivor.writtenBack >= 1, 'the survivor wrote it back')

  // The epoch began at the restart, before `late` started: it is over 3 s old by now.
  const warmWarnings: string[] = []
  const warm = createList({ keyPrefix, settleMs: 3000, log: { warn: (_obj: object, msg: string) => { warmWarnings.push(msg) } } })
  await warm.ready()
  t.same(warmWarnings, [], 'an epoch older than settleMs: no wait')
  t.ok(warm.isRevoked({ sid: 'alice' }))
})

t.test('a member scored +inf, written back, keeps its set from being given a short TTL by a later revoke', async (t) => {
  const keyPrefix = 'gatehouse:forever:'
  const jtiKey = `${keyPrefix}{revocations}:jti`
  const raw = connect()
  await raw.zadd(jtiKey, '+inf', 'forever')
  await raw.pexpire(jtiKey, 600_000)
  const a = createList({ keyPrefix })
  await a.ready()
  await a.revoke({ jti: 'ten-minutes' }, 600)
  await raw.del(jtiKey, `${keyPrefix}{revocations}:epoch`)
  t.ok(await waitFor(async () => await raw.zcard(jtiKey) === 2), 'written back')
  t.equal(await raw.pttl(jtiKey), -1, 'a set holding a +inf member keeps no TTL')
  await a.revoke({ jti: 'short' }, 2)
  t.equal(await raw.pttl(jtiKey), -1, 'and a short revoke does not give it one')
})

t.test('restarted from a snapshot with an old epoch: a list started right after still waits for the survivors', async (t) => {
  const dir = t.testdir()
  const snapshotted = await startRedis({ args: ['--dir', dir, '--dbfilename', 'dump.rdb'] })
  const own: Redis[] = []
  const client = (retry = 50): Redis => {
    const c = new Redis(snapshotted.url, { retryStrategy: () => retry, maxRetriesPerRequest: null })
    c.on('error', () => {})
    own.push(c)
    return c
  }
  const survivor = new RedisRevocationList({ redis: client(1000), heartbeatMs: 50, writeBackJitterMs: 50, settleMs: 0 })
  const lists = [survivor]
  t.teardown(async () => {
    for (const l of lists) await l.close()
    for (const c of own) c.disconnect()
    await snapshotted.stop()
  })
  await survivor.ready()
  const raw = client()
  await raw.save()
  await survivor.revoke({ jti: 'after-snapshot' }, 600)
  // The epoch is older than settleMs by now.
  await waitFor(async () => Date.now() - Number(String(await raw.get(EPOCH)).split('.').at(-1)) > 3100)
  await snapshotted.kill()
  await snapshotted.start()
  const late = new RedisRevocationList({ redis: client(), settleMs: 3000 })
  lists.push(late)
  await late.ready()
  t.ok(late.isRevoked({ jti: 'after-snapshot' }), 'ready with the write the snapshot missed (the run_id is new)')
})

t.test('an epoch stamped in the future (a copied dump, a skewed replica) waits settleMs at most; close() ends the wait', async (t) => {
  const keyPrefix = 'gatehouse:future:'
  const raw = connect()
  const stamp = Date.now() + 3_600_000
  await raw.set(`${keyPrefix}{revocations}:epoch`, `00000000-0000-0000-0000-000000000000.${stamp}`)
  const warnings: Array<{ obj: object, msg: string }> = []
  const first = createList({ keyPrefix, settleMs: 300, log: { warn: (obj: object, msg: string) => { warnings.push({ obj, msg }) } } })
  const started = performance.now()
  await first.ready()
  t.ok(performance.now() - started < 10_000, 'not an hour')
  t.match(warnings.find((w) => w.msg.includes('waiting'))?.obj, { waitMs: 300 }, 'settleMs, no more')
  await raw.set(`${keyPrefix}{revocations}:run`, `x.${Date.now()}`) // a run_id just seen: young again
  const second = createList({ keyPrefix, settleMs: 60_000 })
  const outcome = second.ready().then(() => 'resolved', (err: Error) => err.message)
  await sleep(100)
  const closing = performance.now()
  await second.close()
  t.match(await outcome, /closed/, 'close() ends the wait and ready() rejects')
  t.ok(performance.now() - closing < 10_000, 'at once, not after settleMs')
})
