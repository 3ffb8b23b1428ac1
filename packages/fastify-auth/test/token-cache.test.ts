/**
 * The verified-token cache: a repeated token costs no signature check, an entry is never used
 * past exp, and revocation, audience and scope are checked on every hit.
 */
import t, { type Test } from 'tap'
import { AuthError, TokenVerifier, type AuthOptions } from '../src/index.ts'
import { MemoryRevocationList, type RevocationList } from '../src/revocation/index.ts'
import { parseRouteAuth } from '../src/options.ts'
import { reasonOf } from './fixtures/reason.ts'
import { startIssuer } from './fixtures/issuer.ts'
import { startResourceServer } from './fixtures/resource-server.ts'
import { TestClock } from './revocation-contract.ts'

const issuer = await startIssuer()
await issuer.addKey('ES256')
t.teardown(async () => await issuer.close())

function verifier (t: Test, options: Partial<AuthOptions> = {}): TokenVerifier {
  const v = new TokenVerifier({ issuer: issuer.url, audience: 'demo-api', ...options })
  t.teardown(async () => await v.close())
  return v
}

t.test('a repeated token is verified once', async (t) => {
  const v = verifier(t)
  const token = await issuer.sign()
  const first = await v.verify(token)
  for (let i = 0; i < 4; i++) t.equal(await v.verify(token), first, 'the same claims object')
  t.match(v.stats, { signatureChecks: 1, cacheHits: 4 })
})

t.test('a cached entry is never used past exp', async (t) => {
  const clock = new TestClock(Date.now())
  const strict = verifier(t, { clock, clockTolerance: 0 })
  const lenient = verifier(t, { clock })
  const token = await issuer.sign({ exp: Math.floor(clock.now() / 1000) + 10 })
  await strict.verify(token)
  await lenient.verify(token)
  clock.advance(11_000)
  t.equal(await reasonOf(strict.verify(token)), 'expired', 'refused once exp has passed')
  t.equal(await reasonOf(lenient.verify(token)), 'accepted', 'within the 5 s tolerance')
  t.equal(lenient.stats.signatureChecks, 2, '... but by a fresh validation, not the cache')
  clock.advance(5000)
  t.equal(await reasonOf(lenient.verify(token)), 'expired', 'and refused past the tolerance')
})

t.test('an entry answers for exactly its own token string', async (t) => {
  const v = verifier(t)
  const token = await issuer.sign()
  await v.verify(token)
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const forged = `${header}.${payload.slice(0, -2)}AA.${signature}` // same tail, other payload
  t.equal(await reasonOf(v.verify(forged)), 'bad_signature', 'validated afresh, not served from the cache')
  t.equal(await reasonOf(v.verify(`x ${token}`)), 'malformed', 'not a b64token (RFC 6750 2.1)')
  t.equal(await reasonOf(v.verify(token)), 'accepted', 'the genuine token still hits')
  t.match(v.stats, { signatureChecks: 2, cacheHits: 1 })
})

t.test('the cache is bounded: the oldest entry leaves first', async (t) => {
  const v = verifier(t, { cacheSize: 2 })
  const [a, b, c] = await Promise.all([issuer.sign(), issuer.sign(), issuer.sign()])
  for (const token of [a, b, c, c, b]) await v.verify(token)
  t.match(v.stats, { signatureChecks: 3, cacheHits: 2 })
  await v.verify(a)
  t.equal(v.stats.signatureChecks, 4, 'a was evicted')
})

t.test('cacheSize 0 turns the cache off', async (t) => {
  const v = verifier(t, { cacheSize: 0 })
  const token = await issuer.sign()
  await v.verify(token)
  await v.verify(token)
  t.equal(v.stats.signatureChecks, 2)
})

t.test('a revoked jti or sid is refused on a cache hit (401)', async (t) => {
  const revocations = new MemoryRevocationList()
  t.teardown(async () => await revocations.close())
  const server = await startResourceServer({ issuer: issuer.url, audience: 'demo-api', revocations })
  t.teardown(async () => await server.app.close())
  const byJti = await issuer.sign({ jti: 'jti-1' })
  const bySid = await issuer.sign({ sid: 'sid-1' })
  const sameSession = await issuer.sign({ sid: 'sid-1' })
  const otherSession = await issuer.sign({ sid: 'sid-2' })
  for (const token of [byJti, bySid, sameSession, otherSession]) {
    t.equal((await server.get('/read', `Bearer ${token}`)).statusCode, 200)
  }
  await revocations.revoke({ jti: 'jti-1' }, 300)
  await revocations.revoke({ sid: 'sid-1' }, 300)
  const hits = server.app.gatehouseAuth.stats.cacheHits
  for (const token of [byJti, bySid, sameSession]) {
    const res = await server.get('/read', `Bearer ${token}`)
    t.equal(res.statusCode, 401)
    t.match(res.headers['www-authenticate'], /error="invalid_token", error_description="the access token has been revoked"/)
  }
  t.equal(server.app.gatehouseAuth.stats.cacheHits, hits + 3, 'all three were cache hits')
  t.same(server.failures, ['revoked', 'revoked', 'revoked'])
  t.equal((await server.get('/read', `Bearer ${otherSession}`)).statusCode, 200, 'other sessions keep working')
})

t.test('scope and audience are checked on every hit', async (t) => {
  const v = verifier(t)
  const token = await issuer.sign({ scope: 'api:read', aud: ['demo-api', 'billing'] })
  await v.verify(token, { scopes: ['api:read'] })
  const err = await v.verify(token, { scopes: ['api:read', 'api:write'] }).catch((e: unknown) => e)
  t.ok(err instanceof AuthError)
  t.match(err, { reason: 'insufficient_scope', status: 403, scope: 'api:read api:write' })
  t.equal(await reasonOf(v.verify(token, { audience: 'reports' })), 'bad_audience', 'the route audience wins')
  t.equal(await reasonOf(v.verify(token, { audience: ['reports', 'billing'] })), 'accepted', 'any one audience')
  t.equal(v.stats.signatureChecks, 1)
})

t.test('a stale revocation list fails closed (503), or open when told to', async (t) => {
  const stale = {
    staleness: 60_000,
    size: 0,
    isRevoked: (claims: { jti?: string }) => claims.jti === 'revoked-jti',
    revoke: async () => {},
    ready: async () => {},
    close: async () => {}
  }
  const closed = await startResourceServer({ issuer: issuer.url, revocations: stale, maxStaleness: 30_000 })
  const open = await startResourceServer({ issuer: issuer.url, revocations: stale, maxStaleness: 30_000, failOpen: true })
  t.teardown(async () => { await closed.app.close(); await open.app.close() })
  const token = `Bearer ${await issuer.sign()}`
  const res = await closed.get('/read', token)
  t.equal(res.statusCode, 503)
  t.equal(res.headers['www-authenticate'], undefined, 'no challenge: the token is not at fault')
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(res.json(), { error: 'temporarily_unavailable', error_description: 'the revocation list is out of date; try again shortly' })
  t.same(closed.failures, ['revocations_stale'])
  t.equal((await closed.get('/read', token)).statusCode, 503, 'on a cache hit too')
  t.equal((await open.get('/read', token)).statusCode, 200, 'failOpen serves')
  const revoked = `Bearer ${await issuer.sign({ jti: 'revoked-jti' })}`
  t.equal((await open.get('/read', revoked)).statusCode, 401, 'what the stale mirror knows still counts')
  stale.staleness = 10
  t.equal((await closed.get('/read', token)).statusCode, 200, 'fresh again: served')
})

t.test('checkRevocation: false and audience: null (the gateway\'s logout): revoked, stale and other-audience tokens pass', async (t) => {
  const revocations = new MemoryRevocationList()
  t.teardown(async () => await revocations.close())
  let stale = false
  const staleList: RevocationList = {
    revoke: async (entry, ttl) => await revocations.revoke(entry, ttl),
    isRevoked: (claims) => revocations.isRevoked(claims),
    get staleness () { return stale ? Infinity : 0 },
    get size () { return revocations.size },
    ready: async () => {},
    close: async () => {}
  }
  const v = verifier(t, { revocations: staleList })
  const token = await issuer.sign({ jti: 'logout-jti', sid: 'logout-sid' })
  const elsewhere = await issuer.sign({ aud: 'another-api' })
  const logout = { audience: null, checkRevocation: false } as const
  await revocations.revoke({ jti: 'logout-jti' }, 60)
  t.equal(await reasonOf(v.verify(token)), 'revoked', 'a normal check refuses it')
  t.equal(await reasonOf(v.verify(token, logout)), 'accepted', 'the logout check lets it through (a repeat is a 200)')
  stale = true
  t.equal(await reasonOf(v.verify(token, logout)), 'accepted', 'and ignores the staleness bound')
  t.equal(await reasonOf(v.verify(elsewhere)), 'bad_audience')
  t.equal(await reasonOf(v.verify(elsewhere, logout)), 'accepted', 'any audience')
  t.throws(() => { parseRouteAuth({ checkRevocation: 'no' as unknown as boolean }, false) }, /route\.checkRevocation/)
  t.doesNotThrow(() => { parseRouteAuth(logout, false) })
})

t.test('TokenCache: first in, first out, never above its capacity, through deletes and re-adds', async (t) => {
  const { TokenCache } = await import('../src/token-cache.ts')
  const cache = new TokenCache<number>(4)
  // Tokens end differently in their last 32 characters (the Map key).
  const token = (i: number): string => `header.payload.${String(i).padStart(40, '0')}`
  for (let i = 0; i < 6; i++) cache.set(token(i), i)
  t.same([0, 1, 2, 3, 4, 5].map((i) => cache.get(token(i))), [undefined, undefined, 2, 3, 4, 5], 'the two oldest left')
  cache.delete(token(3))
  cache.set(token(2), 22)
  t.equal(cache.get(token(2)), 22, 'set again: replaced in place')
  t.equal(cache.size, 3)
  // The slot taken next is token 2's, the oldest (token 3's slot is stale): first in, first out.
  cache.set(token(6), 6)
  t.same([2, 3, 4, 5, 6].map((i) => cache.get(token(i))), [undefined, undefined, 4, 5, 6])
  cache.clear()
  // Random operations against a model: the size never passes the capacity, and a hit is always
  // the value last set for that very token.
  const model = new Map<string, number>()
  let seed = 7
  const next = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let op = 0; op < 5000; op++) {
    const i = next(12)
    if (next(5) === 0) { cache.delete(token(i)); model.delete(token(i)) } else { cache.set(token(i), op); model.set(token(i), op) }
    if (cache.size > 4) { t.fail(`size ${cache.size} after op ${op}`); break }
    for (let j = 0; j < 12; j++) {
      const got = cache.get(token(j))
      if (got !== undefined && got !== model.get(token(j))) { t.fail(`token ${j}: ${got} is not the value last set`); return }
    }
  }
  // With no deletes, the last four distinct tokens set are all there.
  for (let i = 100; i < 104; i++) cache.set(token(i), i)
  t.same([100, 101, 102, 103].map((i) => cache.get(token(i))), [100, 101, 102, 103])
  cache.clear()
  t.equal(cache.size, 0)
  t.equal(cache.get(token(100)), undefined)
})
