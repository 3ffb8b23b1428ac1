/**
 * What the upstream gets and what the caller gets back over real HTTP: X-Forwarded-*, the
 * request id, hop-by-hop fields; upstream down (502) and slow (504).
 */
import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { gatewayConfig, httpGet, startGateway } from './fixtures/gateway.ts'
import { startUpstream, type Echo } from './fixtures/upstream.ts'

/** Nothing listens there: the keys never load (fine for routes without auth). */
const NO_ISSUER = `http://127.0.0.1:${await freePort()}`

t.test('forwarded headers, request id, hop-by-hop', async (t) => {
  const upstream = await startUpstream(t)
  const routes = `routes: [{ prefix: /open, upstreams: ['${upstream.url}'], auth: none, stripPrefix: false }]`
  const { url } = await startGateway(t, gatewayConfig(NO_ISSUER, routes), { listen: true })
  const host = new URL(url).host

  const res = await httpGet(`${url}/open/x`, {
    'x-forwarded-for': '6.6.6.6',
    'x-forwarded-host': 'evil.example',
    'x-request-id': 'req-123_abc',
    connection: 'keep-alive, x-drop-me',
    'x-drop-me': 'secret',
    'x-keep-me': 'yes',
    'proxy-authorization': 'Basic abc',
    forwarded: 'for=6.6.6.6'
  })
  t.equal(res.status, 200)
  const echo = res.json as unknown as Echo
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'a caller\'s X-Forwarded-For is replaced (trustProxy off)')
  t.equal(echo.headers['x-forwarded-proto'], 'http')
  t.equal(echo.headers['x-forwarded-host'], host, 'the Host the caller used')
  t.equal(echo.headers.forwarded, undefined)
  t.match(echo.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a request id from a caller that is no trusted proxy is replaced (it could forge a trail)')
  t.equal(res.headers['x-request-id'], echo.headers['x-request-id'], 'the one forwarded is returned')
  t.equal(echo.headers['x-drop-me'], undefined, 'a field named in Connection is not forwarded')
  t.equal(echo.headers['proxy-authorization'], undefined, 'hop-by-hop')
  t.equal(echo.headers['x-keep-me'], 'yes')
  t.not(echo.headers.host, host, 'the upstream gets its own Host')

  const fresh = await httpGet(`${url}/open/x`, { 'x-request-id': 'bad id with spaces' })
  const id = (fresh.json as unknown as Echo).headers['x-request-id']
  t.match(id, /^[0-9a-f-]{36}$/, 'an unusable request id is replaced with a new one')
  t.equal(fresh.headers['x-request-id'], id)
})

t.test('trustProxy: the chain is extended, the proxy\'s host kept', async (t) => {
  const upstream = await startUpstream(t)
  const { url } = await startGateway(t, gatewayConfig(NO_ISSUER, `trustProxy: [127.0.0.1]\nroutes: [{ prefix: /, upstreams: ['${upstream.url}'], auth: none }]`), { listen: true })
  const res = await httpGet(`${url}/x`, { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'api.example', 'x-forwarded-proto': 'https', 'x-request-id': 'req-123_abc' })
  const echo = res.json as unknown as Echo
  t.equal(echo.headers['x-request-id'], 'req-123_abc', 'a trusted proxy\'s request id is kept, forwarded')
  t.equal(res.headers['x-request-id'], 'req-123_abc', 'and returned')
  t.equal(echo.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.1')
  t.equal(echo.headers['x-forwarded-host'], 'api.example')
  t.equal(echo.headers['x-forwarded-proto'], 'https')
})

t.test('upstream down: 503 JSON with Retry-After; upstream slow: 504 JSON', async (t) => {
  const down = await freePort()
  const slow = await startUpstream(t, 'slow')
  // Answers headers never: holds the socket open.
  const silent = createServer(() => {})
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { silent.closeAllConnections(); silent.close() })
  const silentPort = (silent.address() as { port: number }).port
  const { app, url } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { prefix: /down, upstreams: ['http://127.0.0.1:${down}'], auth: none }
  - { prefix: /slow, upstreams: ['${slow.url}'], auth: none, timeout: 1 }
  - { prefix: /silent, upstreams: ['http://127.0.0.1:${silentPort}'], auth: none, timeout: 1 }
`), { listen: true })
  // Nothing listens: no upstream of the route could be reached (issue 17: 503, not 502).
  const res503 = await app.inject('/down/x')
  t.equal(res503.statusCode, 503)
  t.match(res503.json(), { error: 'temporarily_unavailable', error_description: 'no upstream of this route could be reached' })
  t.equal(res503.headers['retry-after'], '1')
  // Held until released: the answer comes after the timeout, however slow the machine.
  const res504 = await app.inject('/slow/x?hold')
  slow.release()
  t.equal(res504.statusCode, 504)
  t.match(res504.json(), { error: 'gateway_timeout' })
  t.equal((await app.inject('/silent/x')).statusCode, 504)
  t.equal((await app.inject('/slow/x')).statusCode, 200, 'in time: 200')
  // Over real HTTP: the streamed body fails with the connection, which inject reports as a throw.
  const post = await fetch(`${url}/down/x`, { method: 'POST', body: 'a body' })
  t.equal(post.status, 503, 'a POST with a body too')
})
