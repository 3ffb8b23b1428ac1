/**
 * The JWKS cache: key rotation through an unknown-kid refetch, the refetch cooldown, and known
 * keys serving while the issuer is down; key changes the issuer announces (issue 16).
 */
import t, { type Test } from 'tap'
import { TokenVerifier, type AuthOptions } from '../src/index.ts'
import { reasonOf } from './fixtures/reason.ts'
import { startIssuer, type IssuerStandIn } from './fixtures/issuer.ts'
import { TestClock } from './revocation-contract.ts'

const issuers: IssuerStandIn[] = []
t.teardown(async () => { for (const issuer of issuers) await issuer.close() })

async function setup (t: Test, options: Partial<AuthOptions> = {}): Promise<{ issuer: IssuerStandIn, v: TokenVerifier, clock: TestClock }> {
  const issuer = await startIssuer()
  issuers.push(issuer)
  await issuer.addKey('ES256')
  const clock = new TestClock(Date.now())
  const v = new TokenVerifier({ issuer: issuer.url, clock, jwksCooldown: 30_000, ...options })
  t.teardown(async () => await v.close())
  return { issuer, v, clock }
}

t.test('keys come from discovery, are fetched once and kept', async (t) => {
  const { issuer, v } = await setup(t)
  for (let i = 0; i < 3; i++) t.equal(await reasonOf(v.verify(await issuer.sign())), 'accepted')
  t.same(issuer.hits, { discovery: 1, jwks: 1, introspection: 0 })
  t.equal(v.stats.jwksFetches, 1)
})

t.test('rotation: a new kid refetches (once per cooldown)', async (t) => {
  const { issuer, v, clock } = await setup(t)
  await v.verify(await issuer.sign())
  const second = await issuer.addKey('RS256')
  clock.advance(30_000)
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: second }))), 'accepted', 'the new key is fetched')
  t.equal(issuer.hits.jwks, 2)

  const third = await issuer.addKey('EdDSA')
  const token = await issuer.sign({}, { key: third })
  t.equal(await reasonOf(v.verify(token)), 'unknown_key', 'inside the cooldown: no refetch')
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: third }))), 'unknown_key')
  t.equal(issuer.hits.jwks, 2, 'still two fetches')
  clock.advance(30_000)
  t.equal(await reasonOf(v.verify(token)), 'accepted', 'after the cooldown it is fetched')
  t.equal(issuer.hits.jwks, 3)
})

t.test('concurrent unknown kids share one fetch', async (t) => {
  const { issuer, v } = await setup(t)
  const tokens = await Promise.all(Array.from({ length: 10 }, async () => await issuer.sign()))
  const reasons = await Promise.all(tokens.map(async (token) => await reasonOf(v.verify(token))))
  t.ok(reasons.every((r) => r === 'accepted'))
  t.equal(issuer.hits.jwks, 1)
})

t.test('issuer down: known keys keep working, a failed refetch drops nothing', async (t) => {
  const { issuer, v, clock } = await setup(t)
  await v.verify(await issuer.sign())
  const unseen = await issuer.addKey('ES256')
  issuer.down = true
  t.equal(await reasonOf(v.verify(await issuer.sign())), 'accepted', 'a new token, signed with a known key')
  clock.advance(30_000)
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: unseen }))), 'issuer_unavailable',
    'an unknown kid while the issuer is down is a 503, not the token\'s fault')
  t.equal(v.stats.jwksFetches, 2, 'the refetch was tried')
  t.equal(await reasonOf(v.verify(await issuer.sign())), 'accepted', 'the failed refetch kept the known keys')
  issuer.down = false
  clock.advance(30_000)
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: unseen }))), 'accepted', 'back up: fetched')
})

t.test('issuer down at boot: 503, then a quick retry once it is back', async (t) => {
  const { issuer, v, clock } = await setup(t)
  issuer.down = true
  const token = await issuer.sign()
  t.equal(await reasonOf(v.verify(token)), 'issuer_unavailable')
  await t.rejects(v.ready(), /JWKS could not be loaded/)
  issuer.down = false
  clock.advance(1000) // with no key at all, retries are not held back by the 30 s cooldown
  t.equal(await reasonOf(v.verify(token)), 'accepted')
})

t.test('keys older than jwksMaxAge are refreshed: a removed key stops being trusted', async (t) => {
  const { issuer, v, clock } = await setup(t, { jwksMaxAge: 60_000 })
  const old = issuer.published[0]
  await v.ready()
  await issuer.addKey('ES256')
  issuer.published.shift()
  clock.advance(61_000)
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: old }))), 'accepted', 'served while refreshing')
  await v.ready() // joins the background refresh
  t.equal(issuer.hits.jwks, 2)
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: old }))), 'unknown_key', 'gone after the refresh')
})

t.test('a discovery document for another issuer is refused', async (t) => {
  const { issuer } = await setup(t)
  const v = new TokenVerifier({ issuer: `${issuer.url}/other` })
  t.teardown(async () => await v.close())
  t.equal(await reasonOf(v.verify(await issuer.sign({ iss: `${issuer.url}/other` }))), 'issuer_unavailable')
})

t.test('jwksUri skips discovery; keys marked for encryption or symmetric are ignored', async (t) => {
  const { issuer } = await setup(t)
  const key = issuer.published[0]
  if (key === undefined) throw new Error('no key')
  issuer.published.unshift({ ...key, publicJwk: { ...key.publicJwk, use: 'enc' } })
  issuer.published.push({ ...key, publicJwk: { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' } })
  const v = new TokenVerifier({ issuer: issuer.url, jwksUri: `${issuer.url}/jwks` })
  t.teardown(async () => await v.close())
  t.equal(await reasonOf(v.verify(await issuer.sign())), 'accepted', 'the sig key is used')
  t.equal(issuer.hits.discovery, 0)
})

t.test('a background refresh does not hold back the first token of a new key (the cooldown counts unknown kids only)', async (t) => {
  const { issuer, v, clock } = await setup(t, { jwksMaxAge: 60_000 })
  await v.ready()
  clock.advance(61_000)
  t.equal(await reasonOf(v.verify(await issuer.sign())), 'accepted')
  await v.ready() // the background refresh, just now
  t.equal(issuer.hits.jwks, 2)
  const next = await issuer.addKey('ES256')
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: next }))), 'accepted', 'fetched although a fetch just happened')
  t.equal(issuer.hits.jwks, 3)
})

t.test('an announced key change is fetched at once, outside the cooldown', async (t) => {
  const { issuer, v } = await setup(t)
  await v.verify(await issuer.sign())
  const second = await issuer.addKey('ES256')
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: second }))), 'unknown_key', 'inside the cooldown an unknown kid is not fetched')
  await v.keyChanged({ change: 'published', kid: second.kid })
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: second }))), 'accepted', 'announced: fetched at once')
  const third = await issuer.addKey('ES256')
  await v.keyChanged({ change: 'activated', kid: third.kid })
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: third }))), 'accepted', 'and again, no cooldown between announcements')
  t.equal(issuer.hits.jwks, 3)
})

t.test('an announced key the JWKS does not show yet: tokens wait for the retry instead of failing', async (t) => {
  const { issuer, v } = await setup(t)
  await v.verify(await issuer.sign())
  const later = await issuer.generateKey('ES256')
  const announced = v.keyChanged({ change: 'published', kid: later.kid }) // another issuer instance answers the first fetch
  const verdict = reasonOf(v.verify(await issuer.sign({}, { key: later })))
  await new Promise((resolve) => setTimeout(resolve, 50))
  issuer.published.push(later)
  t.equal(await verdict, 'accepted', 'accepted once the retried fetch shows it')
  await announced
  t.ok(issuer.hits.jwks >= 3, `fetched until it showed (${issuer.hits.jwks} fetches)`)
})

t.test('a revoked kid: refused at once, cached tokens too, even with the issuer down and its JWKS stale', async (t) => {
  const { issuer, v } = await setup(t)
  const leaked = issuer.published[0]!
  const token = await issuer.sign({}, { key: leaked })
  t.equal(await reasonOf(v.verify(token)), 'accepted')
  t.equal(await reasonOf(v.verify(token)), 'accepted', 'now in the verified-token cache')
  issuer.down = true
  await v.keyChanged({ change: 'revoked', kid: leaked.kid })
  t.equal(await reasonOf(v.verify(token)), 'unknown_key', 'the cached token is refused (401, not 503)')
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: leaked }))), 'unknown_key', 'so is any token it signs')
  issuer.down = false
  const replacement = await issuer.addKey('ES256')
  await v.keyChanged({ change: 'published', kid: replacement.kid })
  t.ok(issuer.published.some((k) => k.kid === leaked.kid), 'a stale JWKS still lists the leaked key')
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: leaked }))), 'unknown_key', 'never trusted again')
  t.equal(await reasonOf(v.verify(await issuer.sign({}, { key: replacement }))), 'accepted', 'the new key works')
})

t.test('keys past jwksMaxAge with the issuer failing fast: one background attempt per cooldown, not one per request', async (t) => {
  const { issuer, v, clock } = await setup(t, { jwksMaxAge: 60_000 })
  await v.ready()
  issuer.down = true
  clock.advance(61_000)
  for (let i = 0; i < 10; i++) {
    t.equal(await reasonOf(v.verify(await issuer.sign())), 'accepted', 'the known key serves')
    await new Promise((resolve) => setTimeout(resolve, 20)) // lets a background fetch fail
  }
  t.equal(v.stats.jwksFetches, 2, 'one background attempt')
})
