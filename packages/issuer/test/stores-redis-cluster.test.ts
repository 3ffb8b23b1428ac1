/**
 * The Redis stores on a real, one-node Redis Cluster. Cluster mode refuses any script or
 * transaction whose keys hash to different slots (CROSSSLOT), so the contract passing here
 * shows the hash tags work; `CLUSTER KEYSLOT` (cluster mode only) checks them directly too.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { RedisKeyStore, RedisRefreshTokenStore } from '../src/stores/redis.ts'
import { RedisCodeStore } from '../src/stores/redis-codes.ts'
import { RedisFailureCounter } from '../src/stores/redis-failures.ts'
import { RedisConsentStore, RedisSessionStore } from '../src/stores/redis-sessions.ts'
import { createRedisClient, createSubscriberClient } from '../src/stores/redis-connection.ts'
import { keyPart } from '../src/stores/redis-scripts.ts'
import { keyStoreContract, makeKeyRecord, refreshTokenStoreContract, TestClock } from './stores-contract.ts'
import { codeStoreContract, makeCode } from './stores-contract-codes.ts'
import { consentStoreContract, makeSession, sessionStoreContract } from './stores-contract-sessions.ts'
import { failureCounterContract } from './stores-contract-failures.ts'

const HOUR = 3_600_000

const server = await startRedis({
  // Without an announced IP a lone node lists itself as "" in CLUSTER SLOTS, and ioredis
  // then never finds it.
  args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(t.testdir(), 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1']
})
const raw = new Redis(server.url)
t.teardown(async () => {
  raw.disconnect()
  await server.stop()
})
// One node serving every slot.
await raw.cluster('ADDSLOTSRANGE', 0, 16383)
// Generous: a loaded 2-core machine is many times slower; the loop ends as soon as it is ok.
const deadline = Date.now() + 60_000
while (!(await raw.cluster('INFO') as string).includes('cluster_state:ok')) {
  if (Date.now() > deadline) throw new Error('the one-node cluster never reached cluster_state:ok')
  await sleep(20)
}

const client = createRedisClient({ cluster: { nodes: [{ host: '127.0.0.1', port: server.port }] } })
t.teardown(() => client.disconnect())

t.test('RedisKeyStore on Cluster', async (t) => {
  keyStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisKeyStore(client)
  })
})

t.test('RedisRefreshTokenStore on Cluster', async (t) => {
  const clock = new TestClock()
  refreshTokenStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisRefreshTokenStore(client)
  }, clock)
})

t.test('RedisCodeStore on Cluster', async (t) => {
  const clock = new TestClock()
  codeStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisCodeStore(client)
  }, clock)
})

t.test('RedisSessionStore on Cluster', async (t) => {
  const clock = new TestClock()
  sessionStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisSessionStore(client)
  }, clock)
})

t.test('RedisConsentStore on Cluster', async (t) => {
  const clock = new TestClock()
  consentStoreContract(t, async () => {
    await raw.flushdb()
    return new RedisConsentStore(client)
  }, clock)
})

t.test('RedisFailureCounter on Cluster', async (t) => {
  const clock = new TestClock()
  failureCounterContract(t, async () => {
    await raw.flushdb()
    return new RedisFailureCounter(client)
  }, clock)
})

t.test('the keys of one family share a slot', async (t) => {
  await raw.flushdb()
  const store = new RedisRefreshTokenStore(client)
  await new RedisKeyStore(client).add(await makeKeyRecord('k'))
  const now = Date.now()
  for (const id of ['f1', 'f2']) {
    const family = { id, clientId: 'c', subject: 's', scope: '', audience: [], createdAt: now, expiresAt: now + HOUR }
    await store.create(family, { hash: `${id}-a`, familyId: id, issuedAt: now, expiresAt: now + HOUR }, { jti: 'j1', expiresAt: now + HOUR })
    await store.rotate(id, `${id}-a`, { hash: `${id}-b`, familyId: id, issuedAt: now, expiresAt: now + HOUR }, { jti: 'j2', expiresAt: now + HOUR }, now)
  }
  const keys = (await raw.keys('*')).sort()
  t.equal(keys.length, 7)
  for (const id of ['f1', 'f2']) {
    const family = keys.filter((key) => key.includes(`{${id}}`))
    t.equal(family.length, 3, `${id}: family hash and two tokens`)
    const slots = await Promise.all(family.map(async (key) => await raw.cluster('KEYSLOT', key)))
    t.same(new Set(slots), new Set([await raw.cluster('KEYSLOT', id)]), `${id}: one slot, that of its id`)
  }
})

t.test('codes, sessions, consents and secrets: the hash tag is the id, braces and all', async (t) => {
  await raw.flushdb()
  const clock = new TestClock()
  const slot = async (key: string): Promise<number> => await raw.cluster('KEYSLOT', key) as number
  await new RedisKeyStore(client).sharedSecret('cookie', () => 's')
  await new RedisKeyStore(client).add(await makeKeyRecord('k'))
  await new RedisCodeStore(client).save({ ...makeCode(clock), hash: 'code-1' })
  await new RedisSessionStore(client).create({ ...makeSession(clock), sid: 'sid{1}' })
  const consents = new RedisConsentStore(client)
  // A subject that would move the hash tag if it were written raw.
  const subject = 'x}{y'
  for (const clientId of ['c1', 'c}2', '{c3}']) await consents.grant(subject, clientId, ['openid'], 60_000, clock.now())

  const keys = (await raw.keys('*')).sort()
  t.equal(keys.length, 7)
  const expected: Array<[string, string]> = [
    ['gatehouse:{keys}:secret:cookie', 'keys'],
    ['gatehouse:{keys}:signing', 'keys'],
    ['gatehouse:code:{code-1}', 'code-1'],
    ['gatehouse:session:{sid%007b1%007d}', keyPart('sid{1}')],
    ...keys.filter((key) => key.startsWith('gatehouse:consent:')).map((key): [string, string] => [key, keyPart(subject)])
  ]
  t.same(new Set(expected.map(([key]) => key)), new Set(keys), 'the keys expected')
  for (const [key, tag] of expected) {
    t.equal(key.match(/\{([^}]*)\}/)?.[1], tag, `${key}: the first {...} is the whole id`)
    t.equal(await slot(key), await slot(tag), `${key}: the slot of ${tag}`)
  }
  t.same(await consents.get(subject, 'c}2', clock.now()), ['openid'], 'read back through the cluster client')
})

t.test('a subscriber connection for pub/sub', async (t) => {
  const subscriber = createSubscriberClient(client)
  t.teardown(() => subscriber.disconnect())
  await subscriber.subscribe('gatehouse:test')
  const received = once(subscriber, 'message')
  await client.publish('gatehouse:test', 'hello')
  t.same(await received, ['gatehouse:test', 'hello'])
})
