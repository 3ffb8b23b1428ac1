/**
 * Token endpoint rate limit, per client: `rateLimit: { tokenPerClient: 3, window: 60 }`.
 * The 4th request of a client is a 429 RFC 6749-style error with Retry-After; other clients
 * are served. With Redis the count is shared by every instance.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { forEachStore, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { startSecondInstance } from './fixtures/flows.ts'

const LIMITED = 'rateLimit: { tokenPerClient: 3, window: 60 }\n'

type Reply = Awaited<ReturnType<typeof postForm>>

const service = async (baseUrl: string): Promise<Reply> =>
  await postForm(`${baseUrl}/oauth2/token`, { grant_type: 'client_credentials', scope: 'api:read' }, { authorization: basic('service', SECRETS.service) })

const cliPost = async (baseUrl: string): Promise<Reply> =>
  await postForm(`${baseUrl}/oauth2/token`, { grant_type: 'password', username: 'alice', password: 'alice-password', client_id: 'cli-post', client_secret: SECRETS.cli })

function expectLimited (t: Test, res: Reply, label: string): void {
  t.equal(res.status, 429, `${label}: 429`)
  t.equal(res.json.error, 'temporarily_unavailable', `${label}: error`)
  t.type(res.json.error_description, 'string', `${label}: error_description`)
  t.same(Object.keys(res.json).sort(), ['error', 'error_description'], `${label}: an RFC 6749 5.2 body, nothing else`)
  t.match(res.headers.get('content-type'), /^application\/json/, `${label}: JSON`)
  const retryAfter = Number(res.headers.get('retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `${label}: Retry-After ${String(res.headers.get('retry-after'))} within the window`)
  t.equal(res.headers.get('cache-control'), 'no-store', `${label}: no-store`)
}

forEachStore(t, async (t, kind) => {
  const { url } = await startIssuer(t, kind, LIMITED)

  t.test('the 4th token request of one client is refused; other clients are served', async (t) => {
    for (let i = 1; i <= 3; i++) t.equal((await service(url)).status, 200, `request ${i} served`)
    expectLimited(t, await service(url), 'request 4')
    expectLimited(t, await service(url), 'request 5')
    const other = await postForm(`${url}/oauth2/token`, { grant_type: 'password', username: 'alice', password: 'alice-password' }, { authorization: basic('cli', SECRETS.cli) })
    t.equal(other.status, 200, 'a different client is still served')
    t.type(other.json.access_token, 'string')
  })

  t.test('a client_secret_post client is counted by its client_id too', async (t) => {
    for (let i = 1; i <= 3; i++) t.equal((await cliPost(url)).status, 200, `request ${i} served`)
    expectLimited(t, await cliPost(url), 'request 4')
  })

  t.test('the other endpoints are not limited by the token endpoint\'s budget', async (t) => {
    const res = await postForm(`${url}/oauth2/introspect`, { token: 'garbage' }, { authorization: basic('service', SECRETS.service) })
    t.equal(res.status, 200, 'the exhausted client may still introspect')
  })
})

t.test('with Redis, instances share the count', async (t) => {
  const a = await startIssuer(t, 'redis', LIMITED)
  const b = await startSecondInstance(t, a)
  t.equal((await service(a.url)).status, 200, 'A 1')
  t.equal((await service(a.url)).status, 200, 'A 2')
  t.equal((await service(b.url)).status, 200, 'B 3')
  expectLimited(t, await service(b.url), 'B 4')
  expectLimited(t, await service(a.url), 'A 5')
  t.equal((await cliPost(b.url)).status, 200, 'another client is served on B')

  const redis = new Redis(a.redis?.url ?? '', { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  t.teardown(() => { redis.disconnect() })
  // Every key under the rate limits' namespace (a pattern like *rl* also matched refresh-token
  // keys whose random family id happens to hold "rl", and failed on their TTL).
  const keys = await redis.keys('gatehouse:rl:*')
  t.ok(keys.length >= 2, `rate-limit keys in Redis: ${keys.join(', ')}`)
  t.notOk((await redis.keys('*:rl:*')).some((key) => !key.startsWith('gatehouse:')), 'none outside the gatehouse: prefix')
  for (const key of keys) {
    const pttl = await redis.pttl(key)
    t.ok(pttl > 0 && pttl <= 60_000, `${key} has a TTL within the window (${pttl} ms)`)
  }
})

t.test('requests with a wrong secret do not spend the real client\'s budget', async (t) => {
  // The key is the client id the request *claims* (checks/rate-limit-key.ts), counted before
  // authentication: anyone who knows a client_id (they are not secret) can lock that client
  // out of the token endpoint with a few bad requests.
  const { url } = await startIssuer(t, 'memory', LIMITED)
  for (let i = 1; i <= 3; i++) {
    const forged = await postForm(`${url}/oauth2/token`, { grant_type: 'client_credentials' }, { authorization: basic('service', 'not-the-secret-0123456789') })
    t.equal(forged.status, 401, `forged request ${i} is refused`)
  }
  t.equal((await service(url)).status, 200, 'the real client, with its secret, is still served')
})
