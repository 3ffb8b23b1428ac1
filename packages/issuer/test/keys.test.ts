/**
 * Signing keys: generated once and persisted, shared through Redis, rotated with a delay,
 * retired keys published until their last token expires. Time moves on an injected clock.
 */
import t from 'tap'
import { decodeProtectedHeader, createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { build } from '../src/app.ts'
import { fixtureConfig } from './fixtures/issuer.ts'
import { generateKeyRecord } from '../src/keys/key-manager.ts'
import type { IssuerConfig } from '../src/config.ts'

function movableClock (start = Date.now()): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: (ms) => { time += ms } }
}

async function jwks (app: Awaited<ReturnType<typeof build>>): Promise<JSONWebKeySet> {
  return (await app.inject('/.well-known/jwks.json')).json()
}

async function mint (app: Awaited<ReturnType<typeof build>>): Promise<string> {
  const token = await app.issuer.tokens.mintAccessToken({ clientId: 'service', subject: 'service', scope: [], audience: ['demo-api'], ttl: 300 })
  return token.token
}

t.test('first start generates one key and persists it in the data directory', async (t) => {
  const dir = t.testdir()
  const config = await fixtureConfig(dir)
  const first = await build(config, { logger: false })
  const kids = (await jwks(first)).keys.map((k) => k.kid)
  await first.close()
  t.equal(kids.length, 1)
  const second = await build(config, { logger: false })
  t.teardown(async () => await second.close())
  t.same((await jwks(second)).keys.map((k) => k.kid), kids, 'the same key after a restart')
})

t.test('rotation: published at once, signs after the delay, retired after the last token expires', async (t) => {
  const clock = movableClock()
  const base = await fixtureConfig(t.testdir(), 'keys: { activationDelay: 60 }\n')
  const app = await build(base, { logger: false, clock })
  t.teardown(async () => await app.close())
  const oldKid = decodeProtectedHeader(await mint(app)).kid
  const oldToken = await mint(app)

  const rotated = await app.issuer.keys.rotate()
  const published = (await jwks(app)).keys.map((k) => k.kid)
  t.same(published.sort(), [oldKid, rotated.kid].sort(), 'both keys published immediately')
  t.equal(decodeProtectedHeader(await mint(app)).kid, oldKid, 'still signing with the old key during the delay')

  clock.advance(60_000)
  const newToken = await mint(app)
  t.equal(decodeProtectedHeader(newToken).kid, rotated.kid, 'signs with the new key once the delay has passed')
  const set = createLocalJWKSet(await jwks(app))
  await t.resolves(jwtVerify(oldToken, set, { currentDate: new Date(clock.now()) }), 'a token signed before rotation still verifies')
  await t.resolves(jwtVerify(newToken, set, { currentDate: new Date(clock.now()) }))

  clock.advance(299_000)
  await app.issuer.keys.reload()
  t.equal((await jwks(app)).keys.length, 2, 'the old key stays while a token it signed may live (300 s)')
  clock.advance(2_000)
  await app.issuer.keys.reload()
  t.same((await jwks(app)).keys.map((k) => k.kid), [rotated.kid], 'then it is retired')
  t.same((await app.issuer.stores.keys.list()).map((k) => k.kid), [rotated.kid], 'and pruned from the store')
})

t.test('with Redis, every instance shares the keys and sees a rotation', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const extra = `redis: { url: '${redis.url}' }\nkeys: { activationDelay: 0, refreshInterval: 1 }\n`
  const [configA, configB]: IssuerConfig[] = await Promise.all([fixtureConfig(t.testdir(), extra), fixtureConfig(t.testdir(), extra)])
  // Two instances starting together agree on one first key.
  const [a, b] = await Promise.all([build(configA!, { logger: false }), build(configB!, { logger: false })])
  t.teardown(async () => { await a.close(); await b.close() })
  t.same((await jwks(a)).keys, (await jwks(b)).keys)
  t.equal((await jwks(a)).keys.length, 1)

  const rotated = await a.issuer.keys.rotate()
  // B re-reads the store every second: polled, with a bound a loaded machine does not miss.
  const deadline = Date.now() + 30_000
  while (!(await jwks(b)).keys.some((k) => k.kid === rotated.kid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok((await jwks(b)).keys.some((k) => k.kid === rotated.kid), 'instance B publishes the key rotated through A')
  t.equal(decodeProtectedHeader(await mint(b)).kid, rotated.kid, 'and signs with it')
})

t.test('RS256 and EdDSA keys', async (t) => {
  for (const algorithm of ['RS256', 'EdDSA'] as const) {
    const app = await build(await fixtureConfig(t.testdir(), `keys: { algorithm: ${algorithm} }\n`), { logger: false })
    const [key] = (await jwks(app)).keys
    t.equal(key?.alg, algorithm)
    t.equal(key?.use, 'sig')
    t.notOk(key !== undefined && 'd' in key, 'no private member')
    const token = await mint(app)
    t.equal(decodeProtectedHeader(token).alg, algorithm)
    await t.resolves(jwtVerify(token, createLocalJWKSet(await jwks(app))))
    await app.close()
  }
})

t.test('every change is reported once: published, activated, retired', async (t) => {
  const clock = movableClock()
  const app = await build(await fixtureConfig(t.testdir(), 'keys: { activationDelay: 60 }\n'), { logger: false, clock })
  t.teardown(async () => await app.close())
  const changes: Array<{ change: string, kid: string }> = []
  app.issuer.keys.onChange((found) => { changes.push(...found) })
  const oldKid = decodeProtectedHeader(await mint(app)).kid
  const rotated = await app.issuer.keys.rotate()
  t.same(changes, [{ change: 'published', kid: rotated.kid }])
  await app.issuer.keys.reload()
  t.equal(changes.length, 1, 'a re-read that finds nothing new reports nothing')
  clock.advance(60_000)
  await mint(app)
  t.same(changes.at(-1), { change: 'activated', kid: rotated.kid })
  clock.advance(301_000)
  await app.issuer.keys.reload()
  t.same(changes.at(-1), { change: 'retired', kid: oldKid })
  t.equal(changes.length, 3)
})

t.test('emergency rollover: the new key signs at once, the old one leaves the JWKS and verifies nothing', async (t) => {
  const clock = movableClock()
  const app = await build(await fixtureConfig(t.testdir(), 'keys: { activationDelay: 300 }\n'), { logger: false, clock })
  t.teardown(async () => await app.close())
  const changes: Array<{ change: string, kid: string }> = []
  app.issuer.keys.onChange((found) => { changes.push(...found) })
  const leakedToken = await mint(app)
  const leaked = String(decodeProtectedHeader(leakedToken).kid)
  await t.rejects(app.issuer.keys.rotate({ revokePrevious: true }), /signs now/, 'revoking needs a key that signs now')
  const fresh = await app.issuer.keys.rotate({ now: true, revokePrevious: true })
  t.same(changes.map((c) => c.change).sort(), ['activated', 'published', 'revoked'])
  t.same(changes.find((c) => c.change === 'revoked'), { change: 'revoked', kid: leaked })
  t.equal(decodeProtectedHeader(await mint(app)).kid, fresh.kid, 'signs with the new key at once')
  t.same((await jwks(app)).keys.map((k) => k.kid), [fresh.kid], 'the leaked key is out of the JWKS')
  t.equal(await app.issuer.keys.verificationKey(leaked), undefined, 'the issuer verifies nothing with it (introspection, userinfo)')
  const stored = await app.issuer.stores.keys.list()
  t.ok(stored.find((r) => r.kid === leaked)?.revokedAt !== undefined, 'kept in the store, marked revoked, so every instance learns it')
  t.match(app.issuer.keys.describe().find((k) => k.kid === leaked), { revokedAt: Number })
  clock.advance(301_000)
  await app.issuer.keys.reload()
  const tombstone = (await app.issuer.stores.keys.list()).find((r) => r.kid === leaked)
  t.ok(tombstone?.revokedAt !== undefined, 'kept for good: no restored store or stale instance may list it again')
  t.same(tombstone?.privateJwk, {}, 'without its private part')
  t.same((await jwks(app)).keys.map((k) => k.kid), [fresh.kid])
})

t.test('a revoked signing key is never used again, even when its successor is not active yet by this clock', async (t) => {
  const clock = movableClock()
  const app = await build(await fixtureConfig(t.testdir(), 'keys: { activationDelay: 300 }\n'), { logger: false, clock })
  t.teardown(async () => await app.close())
  const store = app.issuer.stores.keys
  const [current] = await store.list()
  // A rollover made on a machine whose clock is a minute ahead of this instance's.
  const ahead = await generateKeyRecord('ES256', clock.now() + 60_000)
  await store.add(ahead)
  await store.add({ ...current!, privateJwk: {}, revokedAt: clock.now() + 60_000 })
  await app.issuer.keys.reload()
  t.equal(decodeProtectedHeader(await mint(app)).kid, ahead.kid, 'signs with the successor rather than the revoked key')
})
