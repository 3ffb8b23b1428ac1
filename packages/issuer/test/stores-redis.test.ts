import t from 'tap'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { RedisKeyStore, RedisRefreshTokenStore } from '../src/stores/redis.ts'
import { RedisCodeStore } from '../src/stores/redis-codes.ts'
import { RedisFailureCounter } from '../src/stores/redis-failures.ts'
import { RedisConsentStore, RedisSessionStore } from '../src/stores/redis-sessions.ts'
import { createRedisClient, createSubscriberClient } from '../src/stores/redis-connection.ts'
import { CODE_REPLAY_WINDOW_MS } from '../src/stores/policy.ts'
import { keyStoreContract, makeKeyRecord, refreshTokenStoreContract, TestClock } from './stores-contract.ts'
import { codeStoreContract, makeCode } from './stores-contract-codes.ts'
import { consentStoreContract, makeSession, sessionStoreContract } from './stores-contract-sessions.ts'
import { failureCounterContract } from './stores-contract-failures.ts'

const HOUR = 3_600_000

const server = await startRedis()
const client = createRedisClient({ url: server.url })
// A second, plain connection to look at what the stores wrote.
const raw = new Redis(server.url)
t.teardown(async () => {
  client.disconnect()
  raw.disconnect()
  await server.stop()
})

t.test('RedisKeyStore', async (t) => {
  keyStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisKeyStore(client)
  })
})

t.test('RedisRefreshTokenStore', async (t) => {
  const clock = new TestClock()
  refreshTokenStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisRefreshTokenStore(client)
  }, clock)
})

t.test('RedisCodeStore', async (t) => {
  const clock = new TestClock()
  codeStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisCodeStore(client)
  }, clock)
})

t.test('RedisSessionStore', async (t) => {
  const clock = new TestClock()
  sessionStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisSessionStore(client)
  }, clock)
})

t.test('RedisConsentStore', async (t) => {
  const clock = new TestClock()
  consentStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisConsentStore(client)
  }, clock)
})

t.test('RedisFailureCounter', async (t) => {
  const clock = new TestClock()
  failureCounterContract(t, async () => {
    await raw.flushdb()
    return new RedisFailureCounter(client)
  }, clock)
})

t.test('failure counts: key names and a TTL to the end of the window', async (t) => {
  await raw.flushdb()
  const clock = new TestClock()
  const failures = new RedisFailureCounter(client)
  await failures.add('username', 'alice', 300_000, clock.now())
  clock.advance(100_000)
  await failures.add('username', 'alice', 300_000, clock.now())
  await failures.add('client-ip', '::1', 60_000, clock.now())
  await failures.add('client', 'we{ir}d:id', 60_000, clock.now())
  t.same(await allKeys(), [
    'gatehouse:fail:client-ip:{%003a%003a1}',
    'gatehouse:fail:client:{we%007bir%007dd%003aid}',
    'gatehouse:fail:username:{alice}'
  ])
  const pttl = await raw.pttl('gatehouse:fail:username:{alice}')
  t.ok(pttl > 195_000 && pttl <= 200_000, `PTTL ${pttl}: the window's end, from the caller's clock`)
  t.same(await raw.hgetall('gatehouse:fail:username:{alice}'), { count: '2', resetAt: String(clock.now() - 100_000 + 300_000) })
  t.same(await new RedisFailureCounter(client, 'app:').add('login-ip', '10.0.0.1', 1000, clock.now()), { count: 1, resetAt: clock.now() + 1000 })
  t.ok(await raw.exists('app:fail:login-ip:{10.0.0.1}'), 'another key prefix')
})

async function allKeys (): Promise<string[]> {
  return (await raw.keys('*')).sort()
}

t.test('every key has the prefix and a TTL, except the signing keys', async (t) => {
  await raw.flushdb()
  const clock = new TestClock()
  const keys = new RedisKeyStore(client)
  const tokens = new RedisRefreshTokenStore(client)
  await keys.addIfEmpty(await makeKeyRecord('k1'))
  await keys.add(await makeKeyRecord('k2'))

  const now = clock.now()
  const family = { id: 'f1', clientId: 'c', subject: 's', scope: 'openid', audience: ['a'], createdAt: now, expiresAt: now + 10 * HOUR }
  const first = { hash: 'h1', familyId: 'f1', issuedAt: now, expiresAt: now + HOUR }
  await tokens.create(family, first, { jti: 'j1', expiresAt: now + HOUR / 4 })
  clock.advance(HOUR / 2)
  // Outlives its family: its TTL must stop at the family's end.
  const second = { hash: 'h2', familyId: 'f1', issuedAt: clock.now(), expiresAt: clock.now() + 100 * HOUR }
  t.equal((await tokens.rotate('f1', 'h1', second, { jti: 'j2', expiresAt: clock.now() + HOUR / 4 }, clock.now())).status, 'rotated')
  t.equal((await tokens.rotate('f1', 'h1', { ...second, hash: 'h3' }, { jti: 'j3', expiresAt: clock.now() + HOUR }, clock.now())).status, 'reused')

  t.same(await allKeys(), [
    'gatehouse:rt:{f1}:family',
    'gatehouse:rt:{f1}:t:h1',
    'gatehouse:rt:{f1}:t:h2',
    'gatehouse:{keys}:signing'
  ], 'no token is stored by a rotation that failed')
  t.equal(await raw.pttl('gatehouse:{keys}:signing'), -1, 'signing keys are pruned by remove, not a TTL')

  // TTLs count from the caller's clock at write time, not from Redis time.
  const within = async (key: string, expected: number): Promise<void> => {
    const pttl = await raw.pttl(key)
    t.ok(pttl > expected - 5_000 && pttl <= expected, `${key}: PTTL ${pttl} close to ${expected}`)
  }
  await within('gatehouse:rt:{f1}:family', 10 * HOUR)
  await within('gatehouse:rt:{f1}:t:h1', HOUR)
  await within('gatehouse:rt:{f1}:t:h2', 10 * HOUR - HOUR / 2)
  t.match(JSON.parse((await raw.get('gatehouse:rt:{f1}:t:h1'))!), { hash: 'h1', usedAt: now + HOUR / 2 }, 'kept, marked used')

  await tokens.revokeFamily('f1', clock.now())
  await within('gatehouse:rt:{f1}:family', 10 * HOUR)
  t.same(await raw.hgetall('gatehouse:rt:{f1}:family'), {
    data: JSON.stringify(family), revoked: '1', 'at:j2': String(second.issuedAt + HOUR / 4)
  }, 'j1 (expired) was pruned; j3 (of the reuse) never recorded')
})

t.test('codes, sessions, consents and secrets: key names and TTLs', async (t) => {
  await raw.flushdb()
  const clock = new TestClock()
  const codes = new RedisCodeStore(client)
  const sessions = new RedisSessionStore(client)
  const consents = new RedisConsentStore(client)
  const keys = new RedisKeyStore(client)
  const within = async (key: string, expected: number): Promise<void> => {
    const pttl = await raw.pttl(key)
    t.ok(pttl > expected - 5_000 && pttl <= expected, `${key}: PTTL ${pttl} close to ${expected}`)
  }

  t.equal(await keys.sharedSecret('cookie', () => 's3cret'), 's3cret')
  const code = { ...makeCode(clock), hash: 'abc_-XYZ' }
  const used = { ...makeCode(clock), hash: 'used' }
  await codes.save(code)
  await codes.save(used)
  await codes.consume('used', clock.now())
  await codes.recordIssued('used', { accessToken: { jti: 'j', expiresAt: clock.now() + HOUR } })
  const session = { ...makeSession(clock, 8 * HOUR), sid: 'sid-1' }
  await sessions.create(session)
  await sessions.addClient('sid-1', 'client-1')
  await sessions.addFamily('sid-1', 'fam-1')
  await consents.grant('alice@example.com', 'client-1', ['openid'], 30 * 24 * HOUR, clock.now())
  await consents.grant('we{ir}d:sub', 'c:1', ['openid'], HOUR, clock.now())

  t.same(await allKeys(), [
    'gatehouse:code:{abc_-XYZ}',
    'gatehouse:code:{used}',
    'gatehouse:consent:{alice@example.com}:client-1',
    'gatehouse:consent:{we%007bir%007dd%003asub}:c%003a1',
    'gatehouse:session:{sid-1}',
    'gatehouse:{keys}:secret:cookie'
  ])
  t.equal(await raw.get('gatehouse:{keys}:secret:cookie'), 's3cret')
  t.equal(await raw.pttl('gatehouse:{keys}:secret:cookie'), -1, 'a shared secret is kept for good')
  await within('gatehouse:code:{abc_-XYZ}', 60_000)
  await within('gatehouse:code:{used}', CODE_REPLAY_WINDOW_MS)
  await within('gatehouse:session:{sid-1}', 8 * HOUR)
  await within('gatehouse:consent:{alice@example.com}:client-1', 30 * 24 * HOUR)
  await within('gatehouse:consent:{we%007bir%007dd%003asub}:c%003a1', HOUR)
  t.same(Object.keys(await raw.hgetall('gatehouse:code:{used}')).sort(), ['data', 'issued', 'replayUntil', 'usedAt'])
  t.same(await raw.hgetall('gatehouse:session:{sid-1}'), { data: JSON.stringify(session), 'client:client-1': '1', 'family:fam-1': '1' })
  t.same(await raw.hgetall('gatehouse:consent:{alice@example.com}:client-1'), { openid: String(clock.now() + 30 * 24 * HOUR) })

  // A consent key lives as long as its last scope; expired scopes are dropped by the next grant.
  await consents.grant('bob', 'client-1', ['openid'], 10 * HOUR, clock.now())
  await consents.grant('bob', 'client-1', ['email'], HOUR, clock.now())
  await within('gatehouse:consent:{bob}:client-1', 10 * HOUR)
  clock.advance(HOUR)
  await consents.grant('bob', 'client-1', ['profile'], HOUR, clock.now())
  t.same(Object.keys(await raw.hgetall('gatehouse:consent:{bob}:client-1')).sort(), ['openid', 'profile'])
  await within('gatehouse:consent:{bob}:client-1', 9 * HOUR)
  await raw.del('gatehouse:consent:{bob}:client-1')

  // Writes to what is not there never create a key without a TTL.
  await codes.recordIssued('gone', { accessToken: { jti: 'j', expiresAt: clock.now() + HOUR } })
  await sessions.addClient('gone', 'client-1')
  await sessions.addFamily('gone', 'fam-1')
  t.equal((await allKeys()).length, 6)
  for (const key of await allKeys()) {
    if (!key.startsWith('gatehouse:{keys}:')) t.ok(await raw.pttl(key) > 0, `${key} has a TTL`)
  }
})

t.test('another key prefix', async (t) => {
  await raw.flushdb()
  const now = Date.now()
  await new RedisKeyStore(client, 'app:').add(await makeKeyRecord('k'))
  await new RedisRefreshTokenStore(client, 'app:').create(
    { id: 'f', clientId: 'c', subject: 's', scope: '', audience: [], createdAt: now, expiresAt: now + HOUR },
    { hash: 'h', familyId: 'f', issuedAt: now, expiresAt: now + HOUR },
    { jti: 'j', expiresAt: now + HOUR })
  await new RedisKeyStore(client, 'app:').sharedSecret('cookie', () => 's')
  const clock = new TestClock()
  await new RedisCodeStore(client, 'app:').save({ ...makeCode(clock), hash: 'c' })
  await new RedisSessionStore(client, 'app:').create({ ...makeSession(clock), sid: 's' })
  await new RedisConsentStore(client, 'app:').grant('alice', 'client', ['openid'], HOUR, now)
  t.same(await allKeys(), [
    'app:code:{c}', 'app:consent:{alice}:client', 'app:rt:{f}:family', 'app:rt:{f}:t:h',
    'app:session:{s}', 'app:{keys}:secret:cookie', 'app:{keys}:signing'
  ])
})

t.test('scripts survive a SCRIPT FLUSH (as after a Redis restart)', async (t) => {
  await raw.flushdb()
  const store = new RedisKeyStore(client)
  t.equal(await store.addIfEmpty(await makeKeyRecord('a')), true)
  await raw.script('FLUSH')
  t.equal(await store.addIfEmpty(await makeKeyRecord('b')), false)
})

t.test('createRedisClient', async (t) => {
  t.throws(() => createRedisClient({}), TypeError, 'none of url, sentinel, cluster')
  t.throws(() => createRedisClient({ url: server.url, cluster: { nodes: [{ host: '127.0.0.1', port: server.port }] } }), TypeError, 'two of them')
  t.throws(() => createRedisClient({ cluster: { nodes: [] } }), TypeError)
  t.throws(() => createRedisClient({ sentinel: { name: 'm', sentinels: [] } }), TypeError)

  const custom = createRedisClient({ url: server.url, options: { connectionName: 'gatehouse-test', db: 1 } })
  t.teardown(() => custom.disconnect())
  t.equal(await custom.client('GETNAME'), 'gatehouse-test', 'options pass through to ioredis')
})

t.test('a subscriber connection for pub/sub', async (t) => {
  const subscriber = createSubscriberClient(client)
  t.teardown(() => subscriber.disconnect())
  await subscriber.subscribe('gatehouse:test')
  const received = once(subscriber, 'message')
  await client.publish('gatehouse:test', 'hello')
  t.same(await received, ['gatehouse:test', 'hello'])
  t.equal(await client.ping(), 'PONG', 'the first connection still runs commands')
})

// Last: it stops and restarts the server.
t.test('a request fails fast while Redis is down, and the client recovers', async (t) => {
  const store = new RedisKeyStore(client)
  // Reconnect failures are reported as 'error' events; the app logs them, the test notes them.
  const errors: Error[] = []
  const noteError = (err: Error): void => { errors.push(err) }
  client.on('error', noteError)
  raw.on('error', noteError)
  t.teardown(() => { client.off('error', noteError); raw.off('error', noteError) })
  await server.stop()
  const started = Date.now()
  await t.rejects(store.list())
  t.ok(Date.now() - started < 2_000, `failed in ${Date.now() - started} ms`)
  t.match(errors[0]?.message, /ECONNREFUSED/)
  const isReady = once(client, 'ready') // listening first: it may reconnect while start() polls
  await server.start()
  await isReady
  t.same(await store.list(), [], 'answers again (the restarted server is empty)')
})
