/**
 * Routes with `validation: 'introspect'`: RFC 7662 against the stand-in's endpoint (found via
 * discovery), client_secret_basic, a short cache, and the same per-request checks.
 */
import t from 'tap'
import { AuthError, TokenVerifier } from '../src/index.ts'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { INTROSPECTION_CLIENT, startIssuer } from './fixtures/issuer.ts'
import { startResourceServer } from './fixtures/resource-server.ts'
import { TestClock } from './revocation-contract.ts'

const issuer = await startIssuer()
await issuer.addKey('ES256')
const clock = new TestClock(Date.now())
const revocations = new MemoryRevocationList({ clock })
const server = await startResourceServer({
  issuer: issuer.url,
  audience: 'demo-api',
  clock,
  revocations,
  introspection: { ...INTROSPECTION_CLIENT, cacheTtl: 30 }
})
t.teardown(async () => {
  await server.app.close()
  await revocations.close()
  await issuer.close()
})

const bearer = (token: string): string => `Bearer ${token}`

t.test('an active token passes; the answer is cached', async (t) => {
  const token = await issuer.sign({ sid: 's-1' })
  const hits = issuer.hits.introspection
  const res = await server.get('/introspected', bearer(token))
  t.equal(res.statusCode, 200)
  t.match(res.json(), { sub: 'alice', client_id: 'demo-web', sid: 's-1', scope: ['openid', 'api:read'] })
  t.equal(issuer.hits.introspection, hits + 1)
  t.equal((await server.get('/introspected', bearer(token))).statusCode, 200)
  t.equal(issuer.hits.introspection, hits + 1, 'the second request was answered from the cache')
  t.equal(server.app.gatehouseAuth.stats.signatureChecks, 0, 'no local validation on this route')
  clock.advance(31_000)
  t.equal((await server.get('/introspected', bearer(token))).statusCode, 200)
  t.equal(issuer.hits.introspection, hits + 2, 'asked again after cacheTtl')
})

t.test('the introspection request carries the id of the request it is made for (X-Request-Id)', async (t) => {
  const token = await issuer.sign({ sid: 's-ids' })
  const asked = issuer.introspectionRequestIds.length
  t.equal((await server.get('/introspected', bearer(token))).statusCode, 200)
  const [id] = issuer.introspectionRequestIds.slice(asked)
  t.match(id, /^req-[0-9a-z]+$/, 'Fastify\'s request.id, as the plugin\'s preHandler passes it')
  const other = await issuer.sign({ sid: 's-ids-2' })
  t.equal((await server.get('/introspected', bearer(other))).statusCode, 200)
  const [next] = issuer.introspectionRequestIds.slice(asked + 1)
  t.ok(next !== undefined && next !== id, 'each request its own')
})

t.test('an answer is never kept past the token\'s exp', async (t) => {
  const token = await issuer.sign({ exp: Math.floor(clock.now() / 1000) + 10 })
  t.equal((await server.get('/introspected', bearer(token))).statusCode, 200)
  clock.advance(11_000)
  const hits = issuer.hits.introspection
  const res = await server.get('/introspected', bearer(token))
  t.equal(res.statusCode, 401)
  t.equal(issuer.hits.introspection, hits + 1, 'asked again: the cached answer had expired with the token')
  t.equal(server.failures.at(-1), 'inactive')
})

t.test('a malformed header never reaches the issuer', async (t) => {
  const hits = issuer.hits.introspection
  t.equal((await server.get('/introspected', 'Bearer two tokens')).statusCode, 401)
  t.equal(server.failures.at(-1), 'malformed')
  t.equal(issuer.hits.introspection, hits)
})

t.test('an inactive token: 401 invalid_token', async (t) => {
  const token = await issuer.sign()
  issuer.inactive.add(token)
  const res = await server.get('/introspected', bearer(token))
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'],
    'Bearer realm="gatehouse", error="invalid_token", error_description="the access token is not active"')
  t.equal(server.failures.at(-1), 'inactive')
})

t.test('issuer unreachable: 503, not cached', async (t) => {
  const token = await issuer.sign()
  issuer.down = true
  const res = await server.get('/introspected', bearer(token))
  t.equal(res.statusCode, 503)
  t.same(res.json(), { error: 'temporarily_unavailable', error_description: 'the token issuer cannot be reached; try again shortly' })
  t.equal(server.failures.at(-1), 'issuer_unavailable')
  issuer.down = false
  t.equal((await server.get('/introspected', bearer(token))).statusCode, 200, 'served once it is back')
})

t.test('the revocation mirror, audience and scope still apply', async (t) => {
  const revoked = await issuer.sign({ sid: 'logged-out' })
  t.equal((await server.get('/introspected', bearer(revoked))).statusCode, 200)
  await revocations.revoke({ sid: 'logged-out' }, 300)
  t.equal((await server.get('/introspected', bearer(revoked))).statusCode, 401, 'revoked, though cached as active')
  t.equal(server.failures.at(-1), 'revoked')
  t.equal((await server.get('/introspected', bearer(await issuer.sign({ aud: 'other' })))).statusCode, 401)
  t.equal(server.failures.at(-1), 'bad_audience')
  const res = await server.get('/introspected', bearer(await issuer.sign({ scope: 'openid' })))
  t.equal(res.statusCode, 403)
  t.match(res.headers['www-authenticate'], /error="insufficient_scope", .*scope="api:read"$/)
})

t.test('concurrent requests for one token share one introspection', async (t) => {
  const token = await issuer.sign()
  const hits = issuer.hits.introspection
  const answers = await Promise.all(Array.from({ length: 5 }, async () => await server.get('/introspected', bearer(token))))
  t.ok(answers.every((res) => res.statusCode === 200))
  t.equal(issuer.hits.introspection, hits + 1)
})

t.test('a wrong client secret is the gateway\'s problem: 503, never a 401 for the caller', async (t) => {
  const v = new TokenVerifier({
    issuer: issuer.url,
    introspection: { clientId: 'gateway', clientSecret: 'wrong', endpoint: `${issuer.url}/introspect` }
  })
  t.teardown(async () => await v.close())
  const err = await v.verify(await issuer.sign(), { validation: 'introspect' }).catch((e: unknown) => e)
  t.ok(err instanceof AuthError)
  t.match(err, { reason: 'issuer_unavailable', status: 503 })
})
