/**
 * CORS at the gateway (issue 12), over real HTTP against a real issuer and a real upstream:
 * preflights answered before authentication and never forwarded (unless `handledBy: upstream`);
 * refused preflights (origin, method, header, malformed origin) get no CORS header and reach no
 * upstream; actual responses, errors included, carry the origin; the upstream's own CORS headers
 * give way to the route's; the logout path; a reload swaps the policy; config mistakes located.
 */
import t from 'tap'
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { ConfigError } from '@gatehouse/shared/config'
import { gatewayConfig, httpGet, SECRETS, startGateway } from './fixtures/gateway.ts'
import { startTestIssuer, userAccessToken } from './fixtures/issuer.ts'

const APP = 'http://127.0.0.1:3000'
const STRANGER = 'https://evil.example'

// An upstream that does CORS of its own (a wide-open one) and varies on encoding.
const seen: Array<{ method: string, url: string, authorization: string | undefined }> = []
const upstreamServer = createServer((req: IncomingMessage, res) => {
  seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization })
  res.writeHead(req.method === 'OPTIONS' ? 204 : 200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-headers': 'x-upstream-own', vary: 'Accept-Encoding' })
  res.end(req.method === 'OPTIONS' ? undefined : JSON.stringify({ path: req.url }))
})
upstreamServer.listen(0, '127.0.0.1')
await once(upstreamServer, 'listening')
t.teardown(() => { upstreamServer.close() })
const upstream = `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`

const issuer = await startTestIssuer(t)
const yaml = (apiOrigins: string): string => `client: { id: gateway, secret: ${SECRETS.gateway} }
logout: { cors: { origins: ['${APP}'] } }
routes:
  - { prefix: /api, upstreams: ['${upstream}'], audience: demo-api, scopes: { GET: [api:read] }, cors: { origins: ${apiOrigins}, headers: [authorization, content-type, x-trace] } }
  - { prefix: /own, upstreams: ['${upstream}'], cors: { handledBy: upstream } }
  - { prefix: /plain, upstreams: ['${upstream}'] }
  - { prefix: /public, upstreams: ['${upstream}'], auth: none, cors: { origins: ['*'], methods: [GET] } }
`
const { app, url } = await startGateway(t, gatewayConfig(issuer.url, yaml(`['${APP}']`)), { listen: true })
const token = await userAccessToken(issuer, 'alice', 'api:read')

const corsHeaders = (headers: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('access-control-')))
const preflight = async (path: string, origin: string, method = 'GET', requestHeaders = 'authorization') =>
  await httpGet(`${url}${path}`, { origin, 'access-control-request-method': method, 'access-control-request-headers': requestHeaders }, 'OPTIONS')

t.test('a preflight from an allowed origin: answered by the gateway, before authentication', async (t) => {
  const before = seen.length
  const res = await preflight('/api/items', APP, 'GET', 'Authorization, X-Trace')
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.headers['access-control-allow-methods'], 'GET, HEAD, POST, PUT, PATCH, DELETE')
  t.equal(res.headers['access-control-allow-headers'], 'authorization, content-type, x-trace')
  t.equal(res.headers['access-control-max-age'], '600')
  t.notOk('access-control-allow-credentials' in res.headers)
  t.match(res.headers.vary, /Origin/)
  t.equal(seen.length, before, 'the upstream never saw it')
})

t.test('refused preflights: no CORS header, no upstream call, never a 5xx', async (t) => {
  const before = seen.length
  const cases: Array<[string, Awaited<ReturnType<typeof preflight>>]> = [
    ['an origin not allowed', await preflight('/api/items', STRANGER)],
    ['a method not allowed', await preflight('/api/items', APP, 'PROPFIND')],
    ['a header not allowed', await preflight('/api/items', APP, 'GET', 'authorization, x-evil')],
    ['origin "null"', await preflight('/api/items', 'null')],
    ['a malformed origin', await preflight('/api/items', 'http://[::1')],
    ['an origin with a path', await preflight('/api/items', `${APP}/`)],
    ['a method the public route does not allow', await preflight('/public/x', APP, 'DELETE')]
  ]
  for (const [what, res] of cases) {
    t.equal(res.status, 403, `${what}: 403`)
    t.same(corsHeaders(res.headers), {}, `${what}: no access-control-* header`)
    t.equal(res.json.error, 'cors_refused', `${what}: says why (${String(res.json.error_description)})`)
  }
  t.equal(seen.length, before, 'the upstream saw none of them')
})

t.test('actual requests: the origin on every answer, the upstream\'s CORS replaced', async (t) => {
  const ok = await httpGet(`${url}/api/items`, { origin: APP, authorization: `Bearer ${token}` })
  t.equal(ok.status, 200)
  t.equal(ok.headers['access-control-allow-origin'], APP, 'the route\'s origin, not the upstream\'s *')
  t.equal(ok.headers['access-control-expose-headers'], 'www-authenticate, retry-after, x-request-id')
  t.notOk('access-control-allow-headers' in ok.headers, 'the upstream\'s own CORS headers are dropped')
  t.match(ok.headers.vary, /Accept-Encoding/, 'the upstream\'s Vary is kept')
  t.match(ok.headers.vary, /Origin/, 'and Origin added')

  const refused = await httpGet(`${url}/api/items`, { origin: APP })
  t.equal(refused.status, 401)
  t.equal(refused.headers['access-control-allow-origin'], APP, 'a 401 is readable by the script')
  t.match(refused.headers['www-authenticate'], /^Bearer/)

  const stranger = await httpGet(`${url}/api/items`, { origin: STRANGER, authorization: `Bearer ${token}` })
  t.equal(stranger.status, 200, 'CORS is the browser\'s to enforce: the request itself is served')
  t.same(corsHeaders(stranger.headers), {}, 'but nothing lets a browser on another origin read it')

  // Review finding: a shared cache keeping the upstream's `*` (no Vary) for every origin.
  const noOrigin = await httpGet(`${url}/api/items`, { authorization: `Bearer ${token}` })
  t.equal(noOrigin.status, 200)
  t.same(corsHeaders(noOrigin.headers), {}, 'without an Origin: the upstream\'s CORS headers are dropped too')
  t.match(noOrigin.headers.vary, /Origin/, 'and the answer says it depends on Origin')

  const pub = await httpGet(`${url}/public/x`, { origin: STRANGER })
  t.equal(pub.headers['access-control-allow-origin'], '*', 'origins: [*] on a public route')
})

t.test('handledBy: upstream: preflights forwarded without a token check, headers untouched', async (t) => {
  const before = seen.length
  const res = await preflight('/own/x', STRANGER)
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], '*', 'the upstream\'s answer')
  t.equal(seen.length, before + 1)
  t.match(seen.at(-1), { method: 'OPTIONS', url: '/x', authorization: undefined })
  t.equal((await httpGet(`${url}/own/x`, { origin: STRANGER })).status, 401, 'an actual request still needs its token')
  // Review finding: anything shaped like a preflight skipped the token check, body included.
  const withBody = await new Promise<{ status: number }>((resolve, reject) => {
    const req = httpRequest(`${url}/own/admin`, { method: 'OPTIONS', headers: { origin: STRANGER, 'access-control-request-method': 'DELETE', 'content-type': 'application/json', 'content-length': '7' } }, (res) => { res.resume(); resolve({ status: res.statusCode ?? 0 }) })
    req.on('error', reject)
    req.end('{"x":1}')
  })
  t.equal(withBody.status, 400, 'a "preflight" with a body is no preflight: refused')
  t.equal(seen.length, before + 1, 'and never forwarded')
})

t.test('a route without cors: an OPTIONS request is an ordinary request', async (t) => {
  t.equal((await preflight('/plain/x', APP)).status, 401)
})

t.test('the logout path answers CORS for logout.cors', async (t) => {
  const pre = await preflight('/oauth2/logout', APP, 'POST')
  t.equal(pre.status, 204)
  t.equal(pre.headers['access-control-allow-origin'], APP)
  t.equal(pre.headers['access-control-allow-methods'], 'POST', 'the logout path takes POST only')
  t.equal((await preflight('/oauth2/logout', APP, 'DELETE')).status, 403)
  t.equal((await preflight('/oauth2/logout', STRANGER, 'POST')).status, 403)
  const session = await userAccessToken(issuer, 'bob', 'api:read')
  const res = await httpGet(`${url}/oauth2/logout`, { origin: APP, authorization: `Bearer ${session}` }, 'POST')
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.json.revoked, true)
})

t.test('a reload swaps the policy', async (t) => {
  const other = 'https://new.example'
  app.gateway.reload(gatewayConfig(issuer.url, yaml(`['${other}']`)))
  t.equal((await preflight('/api/items', other)).status, 204, 'the new origin is allowed')
  t.equal((await preflight('/api/items', APP)).status, 403, 'the old one no longer')
})

t.test('cors in the YAML: mistakes located and explained', async (t) => {
  const problems = (cors: string, logout = ''): string => {
    try {
      gatewayConfig('http://127.0.0.1:4000', `${logout}routes:\n  - prefix: /api\n    upstreams: ['http://127.0.0.1:1']\n    cors: ${cors}\n`)
    } catch (err) {
      if (err instanceof ConfigError) return err.message
      throw err
    }
    return ''
  }
  t.match(problems("{ origins: ['*'], credentials: true }"), /routes\[0\]\.cors\.origins\[0\] "\*" cannot go with credentials/)
  t.match(problems("{ origins: ['https://app.example/'] }"), /routes\[0\]\.cors\.origins\[0\] "https:\/\/app.example\/" is not written as browsers send it: https:\/\/app.example/)
  t.match(problems("{ handledBy: upstream, origins: ['https://a.example'] }"), /routes\[0\]\.cors\.origins handledBy: upstream leaves CORS to the upstream/)
  t.match(problems('{ methods: [GET] }'), /routes\[0\]\.cors\.origins lists no origin/)
  t.match(problems('{ origins: [\'https://a.example\'], methods: [FETCH] }'), /cors\.methods\[0\] "FETCH" is not an HTTP method/)
  t.match(problems("{ origins: ['https://a.example'] }", 'logout: { cors: { handledBy: upstream } }\n'), /logout\.cors\.handledBy the logout path is the gateway's own/)
  t.equal(problems("{ origins: ['https://a.example:8443', 'http://127.0.0.1:3000'] }"), '', 'good origins pass')
})
