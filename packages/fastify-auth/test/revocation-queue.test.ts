/**
 * Revocations written while Redis is unreachable are queued, and flushed when it is back, so
 * other instances see them even though the restarted Redis came back empty.
 */
import t from 'tap'
import { startRedisLists, sleep } from './fixtures/redis-lists.ts'

const { server, clients, connect, createList } = await startRedisLists(t, { heartbeatMs: 50, writeTimeoutMs: 200 })
/** Bound for a wait: generous, a loaded 2-core machine is many times slower (it returns at once when the check passes). */
const WAIT_MS = 30_000

async function waitFor (check: () => boolean, ms = WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await sleep(5)
  }
  return check()
}

t.test('an error reply from Redis still rejects (a retry would not help)', async (t) => {
  const raw = connect()
  await raw.set('gatehouse:wrongtype:{revocations}:jti', 'not a sorted set', 'EX', 60)
  const list = createList({ keyPrefix: 'gatehouse:wrongtype:' })
  await t.rejects(list.revoke({ jti: 'j1' }, 60), /WRONGTYPE/)
  t.ok(list.isRevoked({ jti: 'j1' }), 'the local mirror has it anyway')
  t.equal(list.pendingWrites, 0, 'nothing queued')
})

t.test('kill Redis, revoke through A, restart it empty: B sees the entry after A\'s flush', async (t) => {
  const warnings: string[] = []
  const log = { warn: (_obj: object, msg: string) => { warnings.push(msg) } }
  const writer = createList({ log }) // revokes only, like the issuer: never calls ready()
  const a = createList({ log })
  const b = createList()
  await Promise.all([a.ready(), b.ready()])
  await writer.revoke({ jti: 'warm-up' }, 600) // connects the writer

  await server.kill()
  t.ok(await waitFor(() => clients.every((c) => c.status !== 'ready')), 'every client saw the drop')
  // Redis stays down until these resolve (maxRetriesPerRequest: null would wait for it forever).
  await writer.revoke({ sid: 'sid-during-outage' }, 600)
  await a.revoke({ jti: 'jti-during-outage' }, 600)
  t.equal(server.pid, undefined, 'revoke() resolved while Redis was still down')
  t.ok(writer.isRevoked({ sid: 'sid-during-outage' }) && a.isRevoked({ jti: 'jti-during-outage' }), 'own mirrors at once')
  t.equal(writer.pendingWrites + a.pendingWrites, 2, 'both writes queued')
  t.notOk(b.isRevoked({ jti: 'jti-during-outage' }), 'B cannot know yet')
  t.ok(warnings.some((m) => m.includes('queued')), 'a warning was logged')

  await server.start() // empty: nothing was persisted
  t.ok(await waitFor(() => b.isRevoked({ jti: 'x', sid: 'sid-during-outage' })), 'B sees the writer\'s sid')
  t.ok(await waitFor(() => b.isRevoked({ jti: 'jti-during-outage' })), 'B sees A\'s jti')
  t.ok(await waitFor(() => writer.pendingWrites + a.pendingWrites === 0), 'the queues are empty')

  const raw = connect()
  t.ok(Number(await raw.zscore('gatehouse:{revocations}:sid', 'sid-during-outage')) > Date.now(), 'in Redis')
  t.ok(await raw.pttl('gatehouse:{revocations}:jti') > 0, 'with a TTL')
  const c = createList()
  await c.ready()
  t.ok(c.isRevoked({ jti: 'jti-during-outage' }) && c.isRevoked({ sid: 'sid-during-outage' }),
    'a list started afterwards loads both from Redis')
})

t.test('writes queued in order keep going to Redis in order after a flush', async (t) => {
  const a = createList({ keyPrefix: 'gatehouse:order:' })
  const b = createList({ keyPrefix: 'gatehouse:order:' })
  await Promise.all([a.ready(), b.ready()])
  await server.kill()
  await waitFor(() => clients.every((c) => c.status !== 'ready'))
  for (let i = 0; i < 20; i++) await a.revoke({ jti: `j${i}` }, 600)
  await a.revoke({ jti: 'j0' }, 1200) // extends j0: ZADD GT keeps the later expiry either way
  t.equal(a.pendingWrites, 21)
  await server.start()
  t.ok(await waitFor(() => b.size === 20), 'all 20 reached B')
  const raw = connect()
  const score = Number(await raw.zscore('gatehouse:order:{revocations}:jti', 'j0'))
  t.ok(score > Date.now() + 900_000, 'j0 has the later expiry')
})

t.test('close() with writes still queued logs them as lost', async (t) => {
  const warnings: string[] = []
  const list = createList({ keyPrefix: 'gatehouse:lost:', log: { warn: (_obj, msg) => { warnings.push(msg) } } })
  await list.ready()
  await server.kill()
  await waitFor(() => clients.every((c) => c.status !== 'ready'))
  await list.revoke({ jti: 'lost' }, 60)
  await list.close()
  t.ok(warnings.some((m) => m.includes('never written')))
  await server.start()
})
