/**
 * Per-route rate limits keyed by client_id, subject or IP: in memory, and through Redis where
 * two gateway instances share the count.
 */
import t from 'tap'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { gatewayConfig, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer, userAccessToken } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const service = await serviceAccessToken(issuer, 'api:read')
const alice = await userAccessToken(issuer, 'alice', 'api:read')
const bob = await userAccessToken(issuer, 'bob', 'api:read')
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const routes = `
routes:
  - { prefix: /api, upstreams: ['${upstream.url}'], rateLimit: { max: 2, window: 60, key: client_id } }
  - { prefix: /users, upstreams: ['${upstream.url}'], rateLimit: { max: 1, window: 60, key: subject } }
  - { prefix: /open, upstreams: ['${upstream.url}'], auth: none, rateLimit: { max: 1, window: 60, key: ip } }
  - { prefix: /free, upstreams: ['${upstream.url}'] }
`

for (const kind of ['memory', 'redis'] as const) {
  t.test(`${kind}`, async (t) => {
    let redisYaml = ''
    if (kind === 'redis') {
      const redis = await startRedis()
      t.teardown(redis.stop)
      redisYaml = `redis: { url: '${redis.url}' }\n`
    }
    const config = gatewayConfig(issuer.url, redisYaml + routes)
    const { app } = await startGateway(t, config)
    const get = async (url: string, token?: string): Promise<number> =>
      (await app.inject({ url, headers: token === undefined ? {} : bearer(token) })).statusCode

    t.same([await get('/api/1', service), await get('/api/2', service)], [200, 200])
    const limited = await app.inject({ url: '/api/3', headers: bearer(service) })
    t.equal(limited.statusCode, 429, 'the third request of one client_id')
    t.match(limited.json(), { error: 'rate_limited' })
    t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After')
    t.equal(await get('/api/1', alice), 200, 'another client_id (cli) has its own count')
    t.equal(await get('/free/1', service), 200, 'another route is not limited')

    t.equal(await get('/users/1', alice), 200)
    t.equal(await get('/users/1', alice), 429, 'by subject')
    t.equal(await get('/users/1', bob), 200, 'another subject of the same client')

    t.equal(await get('/open/1'), 200)
    t.equal(await get('/open/1'), 429, 'by IP on an open route')

    if (kind === 'redis') {
      const { app: second } = await startGateway(t, config)
      t.equal((await second.inject({ url: '/api/4', headers: bearer(service) })).statusCode, 429, 'a second instance shares the count')
    }
  })
}
