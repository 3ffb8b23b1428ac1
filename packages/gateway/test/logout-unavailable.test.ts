/**
 * The gateway's logout when the issuer cannot end the session now: it stalls past
 * `logout.timeout`, or answers 503 (its Redis stalled) or 429 (throttled). Each is a 503
 * `temporarily_unavailable` with a reason and Retry-After (the issuer's, when it sent one),
 * never a 502 or a hang, and the token is refused by this gateway at once. The stand-in
 * session endpoint is a real HTTP server; tokens come from a real issuer.
 */
import t from 'tap'
import Fastify from 'fastify'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)

// Session endpoints that never answer, or refuse for now.
const endpoints = Fastify({ logger: false, forceCloseConnections: true })
endpoints.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
endpoints.post('/stall', async () => await new Promise(() => {}))
endpoints.post('/busy', async (_request, reply) => await reply.code(503).header('retry-after', '7').send({ error: 'temporarily_unavailable' }))
endpoints.post('/throttled', async (_request, reply) => await reply.code(429).header('retry-after', '30').send({ error: 'temporarily_unavailable' }))
endpoints.post('/odd-retry', async (_request, reply) => await reply.code(503).header('retry-after', 'Wed, 21 Oct 2015 07:28:00 GMT').send({}))
await endpoints.listen({ host: '127.0.0.1', port: 0 })
t.teardown(async () => await endpoints.close())
const address = endpoints.server.address()
const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`

async function gatewayWith (path: string) {
  const body = `client: { id: gateway, secret: ${SECRETS.gateway} }\nlogout: { sessionEndpoint: '${base}${path}', timeout: 0.3 }\nroutes:\n  - { prefix: /api, upstreams: ['${upstream.url}'] }\n`
  return (await startGateway(t, gatewayConfig(issuer.url, body))).app
}

for (const [path, retryAfter, reason] of [
  ['/stall', '1', /the issuer did not answer within 300 ms/],
  ['/busy', '7', /the issuer cannot end the session right now \(HTTP 503\)/],
  ['/throttled', '30', /\(HTTP 429\)/],
  ['/odd-retry', '1', /\(HTTP 503\)/]
] as const) {
  t.test(`session endpoint ${path}: 503, Retry-After ${retryAfter}`, async (t) => {
    const app = await gatewayWith(path)
    const token = await serviceAccessToken(issuer, 'api:read')
    const res = await app.inject({ method: 'POST', url: '/oauth2/logout', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 503)
    t.equal(res.json().error, 'temporarily_unavailable')
    t.match(res.json().error_description, reason)
    t.match(res.json().error_description, /this gateway already refuses the token; retry the logout/)
    t.equal(res.headers['retry-after'], retryAfter)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal((await app.inject({ url: '/api/x', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'refused here at once')
  })
}
