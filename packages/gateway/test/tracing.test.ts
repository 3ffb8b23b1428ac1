/**
 * Traces of the gateway, the auth plugin and the issuer, in this process with an in-memory
 * OpenTelemetry SDK, over real HTTP (the issuer on Redis): which spans, their parents, their
 * attributes, the `traceparent` the upstream gets, an incoming `traceparent` continued from a
 * trusted proxy only (the test's requests come from loopback: `trustProxy: [loopback]` makes
 * them a proxy's), a token request whose body comes after its headers, and no token, subject,
 * username, e-mail, password or secret in any span name or attribute.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { memoryTracing, type ReadableSpan } from '@gatehouse/test-kit/tracing'
import { passwordTokens, refresh } from '../../issuer/test/fixtures/flows.ts'
import { basic, postForm } from '../../issuer/test/fixtures/harness.ts'
import { gatewayConfig, httpGet, SECRETS, startGateway } from './fixtures/gateway.ts'
import { startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

// Before any app is built: the apps add their request hooks only when an SDK is registered.
const tracing = memoryTracing()

// The issuer trusts the gateway (loopback), so the gateway's calls continue its traces.
const issuer = await startTestIssuer(t, 'redis', 'trustProxy: [loopback]')
const upstream = await startUpstream(t)
const routes = `
routes:
  - { name: api, prefix: /api, upstreams: ['${upstream.url}'], audience: demo-api, scopes: { GET: [api:read] } }
  - { name: open, prefix: /open, upstreams: ['${upstream.url}'], auth: none }
`
const { url } = await startGateway(t, gatewayConfig(issuer.url, `trustProxy: [loopback]\n${routes}`), { listen: true })
// The same gateway without trusted proxies: every caller is a client.
const { url: edgeUrl } = await startGateway(t, gatewayConfig(issuer.url, routes), { listen: true })

/** Everything secret or personal the tests use; none may appear in a span. */
const forbidden: string[] = ['alice', 'alice@example.com', 'Alice Liddell', 'alice-password', 'wrong-password', ...Object.values(SECRETS)]
const alice = await passwordTokens(issuer.as, 'alice', 'openid profile offline_access api:read')
forbidden.push(alice.access_token, alice.refresh_token ?? '', alice.id_token ?? '')

const idOf = (span: ReadableSpan): string => span.spanContext().spanId
const traceOf = (span: ReadableSpan): string => span.spanContext().traceId
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

/**
 * The first span `find` accepts among those ended after the `since`-th, once it has ended
 * (polled: a server span ends as its response closes).
 */
async function spanWhere (what: string, find: (span: ReadableSpan) => boolean, since = 0, timeoutMs = 10_000): Promise<ReadableSpan> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = tracing.spans().slice(since).find(find)
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`no span ${what}; have: ${tracing.spans().map((s) => s.name).join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const childrenOf = (parent: ReadableSpan): ReadableSpan[] => tracing.spans().filter((s) => parentOf(s) === idOf(parent) && traceOf(s) === traceOf(parent))

t.test('a proxied request: gateway span continuing a trusted proxy\'s trace, token check, upstream call with traceparent', async (t) => {
  const traceId = randomBytes(16).toString('hex')
  const callerSpan = randomBytes(8).toString('hex')
  const res = await httpGet(`${url}/api/things?q=1`, { authorization: `Bearer ${alice.access_token}`, traceparent: `00-${traceId}-${callerSpan}-01` })
  t.equal(res.status, 200)

  const request = await spanWhere('GET api in the caller\'s trace', (s) => s.name === 'GET api' && traceOf(s) === traceId)
  t.equal(request.kind, SpanKind.SERVER)
  t.equal(parentOf(request), callerSpan, 'the caller\'s traceparent is continued')
  t.match(request.attributes, { 'gatehouse.route': 'api', 'gatehouse.outcome': 'ok', 'gatehouse.client_id': 'cli', 'http.request.method': 'GET', 'http.response.status_code': 200 })
  t.equal(request.attributes['url.path'], undefined, 'no path (it may carry personal data)')

  const verify = await spanWhere('verify token', (s) => s.name === 'verify token' && traceOf(s) === traceId)
  t.equal(parentOf(verify), idOf(request), 'the token check is a child of the request')
  t.match(verify.attributes, { 'gatehouse.token.source': 'signature', 'gatehouse.outcome': 'ok', 'gatehouse.client_id': 'cli' })

  const call = await spanWhere('upstream GET', (s) => s.name === 'upstream GET' && traceOf(s) === traceId)
  t.equal(call.kind, SpanKind.CLIENT)
  t.equal(parentOf(call), idOf(request), 'the upstream call is a child of the request')
  t.match(call.attributes, { 'gatehouse.route': 'api', 'server.address': '127.0.0.1', 'http.response.status_code': 200 })
  const seen = upstream.seen.at(-1)
  t.equal(seen?.headers.traceparent, `00-${traceId}-${idOf(call)}-01`, 'the upstream gets the call span\'s context, in the caller\'s trace')
  t.same(childrenOf(request).map((s) => s.name).sort(), ['upstream GET', 'verify token'])

  const again = await httpGet(`${url}/api/things`, { authorization: `Bearer ${alice.access_token}` })
  t.equal(again.status, 200)
  const fresh = upstream.seen.at(-1)?.headers.traceparent
  t.match(fresh, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'without a caller trace, a new one starts')
  const freshTrace = String(fresh).split('-')[1] ?? ''
  t.not(freshTrace, traceId)
  const second = await spanWhere('the second request', (s) => s.name === 'GET api' && traceOf(s) === freshTrace)
  t.equal(parentOf(second), undefined, 'a root span')
  const cached = await spanWhere('the cached check', (s) => s.name === 'verify token' && traceOf(s) === freshTrace)
  t.equal(cached.attributes['gatehouse.token.source'], 'cache', 'the second check is answered from the cache')
})

t.test('a caller that is no trusted proxy: its trace context is not continued, nor passed upstream', async (t) => {
  const callerTrace = randomBytes(16).toString('hex')
  const res = await httpGet(`${edgeUrl}/api/things`, {
    authorization: `Bearer ${alice.access_token}`,
    traceparent: `00-${callerTrace}-${randomBytes(8).toString('hex')}-01`,
    tracestate: 'caller=picked',
    baggage: 'tenant=picked-by-caller'
  })
  t.equal(res.status, 200)
  const seen = upstream.seen.at(-1)
  const [, upstreamTrace = '', upstreamParent] = String(seen?.headers.traceparent).split('-')
  t.not(upstreamTrace, callerTrace, 'the upstream gets a trace of the gateway\'s own')
  t.equal(seen?.headers.tracestate, undefined, 'the caller\'s tracestate does not reach the upstream')
  t.equal(seen?.headers.baggage, undefined, 'nor its baggage')
  const request = await spanWhere('GET api in a trace of its own', (s) => s.name === 'GET api' && traceOf(s) === upstreamTrace)
  t.equal(parentOf(request), undefined, 'the request span is a root')
  t.notOk(tracing.spans().some((s) => traceOf(s) === callerTrace), 'no span in the caller\'s trace')
  const call = await spanWhere('upstream GET', (s) => s.name === 'upstream GET' && traceOf(s) === upstreamTrace)
  t.equal(upstreamParent, idOf(call), 'the upstream\'s parent is the gateway\'s call span')

  // From a trusted proxy, its tracestate and baggage go on with its trace.
  const proxyTrace = randomBytes(16).toString('hex')
  const trusted = await httpGet(`${url}/api/things`, { authorization: `Bearer ${alice.access_token}`, traceparent: `00-${proxyTrace}-${randomBytes(8).toString('hex')}-01`, tracestate: 'proxy=kept', baggage: 'tenant=from-proxy' })
  t.equal(trusted.status, 200)
  t.match(upstream.seen.at(-1)?.headers, { traceparent: new RegExp(`^00-${proxyTrace}-`), tracestate: 'proxy=kept', baggage: 'tenant=from-proxy' }, 'a trusted proxy\'s context goes on to the upstream')
})

t.test('refusals: the reason on the request span, nothing sent upstream', async (t) => {
  const before = upstream.seen.length
  const missing = await httpGet(`${url}/api/x`)
  t.equal(missing.status, 401)
  const [header = '', payload = ''] = alice.access_token.split('.')
  const tampered = `${header}.${payload}.${Buffer.alloc(64, 1).toString('base64url')}`
  const bad = await httpGet(`${url}/api/x`, { authorization: `Bearer ${tampered}` })
  t.equal(bad.status, 401)
  t.equal(upstream.seen.length, before, 'nothing reached the upstream')

  const refusedMissing = await spanWhere('a refusal for a missing token', (s) => s.name === 'GET api' && s.attributes['gatehouse.outcome'] === 'missing')
  t.match(refusedMissing.attributes, { 'http.response.status_code': 401 })
  t.not(refusedMissing.status.code, SpanStatusCode.ERROR, 'a 401 is an answer, not a server error')
  const refusedBad = await spanWhere('a refusal for a bad signature', (s) => s.name === 'GET api' && s.attributes['gatehouse.outcome'] === 'bad_signature')
  const verify = childrenOf(refusedBad).find((s) => s.name === 'verify token')
  t.match(verify?.attributes, { 'gatehouse.token.source': 'signature', 'gatehouse.outcome': 'bad_signature' })
  t.notOk(childrenOf(refusedBad).some((s) => s.name.startsWith('upstream')), 'no upstream call')

  const open = await httpGet(`${url}/open/x`)
  t.equal(open.status, 200)
  const none = await spanWhere('a route without auth', (s) => s.name === 'GET open')
  t.equal(none.attributes['gatehouse.outcome'], 'none')
})

t.test('the JWKS fetch: the issuer continues the gateway\'s trace', async (t) => {
  const fetch = await spanWhere('fetch JWKS', (s) => s.name === 'fetch JWKS')
  t.match(fetch.attributes, { 'url.full': `${issuer.url}/.well-known/jwks.json` })
  t.ok(Number(fetch.attributes['gatehouse.jwks.keys']) >= 1, 'the number of keys loaded')
  const served = await spanWhere('the issuer\'s JWKS endpoint', (s) => s.name === 'GET /.well-known/jwks.json' && traceOf(s) === traceOf(fetch))
  t.equal(parentOf(served), idOf(fetch), 'the issuer\'s span is a child of the gateway\'s fetch (traceparent sent)')
  t.equal(served.kind, SpanKind.SERVER)
})

t.test('the issuer: endpoint, grant, signing and Redis spans; a refused grant', async (t) => {
  const since = tracing.spans().length
  const refreshed = await refresh(issuer.as, alice.refresh_token ?? '')
  forbidden.push(refreshed.access_token, refreshed.refresh_token ?? '', refreshed.id_token ?? '')

  const endpoint = await spanWhere('POST /oauth2/token', (s) => s.name === 'POST /oauth2/token', since)
  t.equal(endpoint.kind, SpanKind.SERVER)
  t.match(endpoint.attributes, { 'http.route': '/oauth2/token', 'http.response.status_code': 200, 'gatehouse.client_id': 'cli' })
  const grant = await spanWhere('grant refresh_token', (s) => s.name === 'grant refresh_token', since)
  t.equal(parentOf(grant), idOf(endpoint), 'the grant is a child of the endpoint')
  t.match(grant.attributes, { 'gatehouse.grant_type': 'refresh_token', 'gatehouse.client_id': 'cli', 'gatehouse.outcome': 'ok' })
  const signing = tracing.spans().filter((s) => s.name.startsWith('sign ') && traceOf(s) === traceOf(grant))
  t.ok(signing.some((s) => s.name === 'sign at+jwt' && parentOf(s) === idOf(grant)), 'the access token is signed under the grant')
  for (const s of signing) t.match(s.attributes, { 'gatehouse.jws.alg': String, 'gatehouse.jws.kid': String })
  const redis = tracing.spans().filter((s) => s.name.startsWith('redis ') && traceOf(s) === traceOf(grant))
  t.ok(redis.length > 0, 'the refresh token rotation goes to Redis')
  for (const s of redis) {
    t.equal(s.kind, SpanKind.CLIENT)
    t.match(s.attributes, { 'db.system.name': 'redis', 'db.operation.name': /^[A-Z]+$/ })
    t.same(Object.keys(s.attributes).sort(), ['db.operation.name', 'db.system.name'], 'no key, no argument')
  }
  t.ok(redis.some((s) => parentOf(s) === idOf(grant)), 'Redis calls nest under the grant')

  const refused = await postForm(String(issuer.as.token_endpoint), { grant_type: 'password', username: 'alice', password: 'wrong-password', scope: 'api:read' }, { authorization: basic('cli', SECRETS.cli) })
  t.equal(refused.status, 400)
  const failed = await spanWhere('a refused password grant', (s) => s.name === 'grant password' && s.attributes['gatehouse.outcome'] === 'invalid_grant')
  t.equal(failed.attributes['error.type'], 'invalid_grant')
  t.not(failed.status.code, SpanStatusCode.ERROR, 'a refused grant is no server error')
})

t.test('a token request whose body comes after its headers: the grant, signing and Redis still nest under it', async (t) => {
  const since = tracing.spans().length
  const endpoint = new URL(String(issuer.as.token_endpoint))
  const body = new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'openid offline_access api:read' }).toString()
  const answer = await new Promise<{ status: number, json: Record<string, string> }>((resolve, reject) => {
    const req = httpRequest(endpoint, { method: 'POST', headers: { authorization: basic('cli', SECRETS.cli), 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() }).on('end', () => { resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, string> }) })
    }).on('error', reject)
    // The headers alone first; the body in two later packets.
    req.flushHeaders()
    setTimeout(() => {
      req.write(body.slice(0, 20))
      setTimeout(() => { req.end(body.slice(20)) }, 50)
    }, 50)
  })
  t.equal(answer.status, 200)
  forbidden.push(answer.json.access_token ?? '', answer.json.refresh_token ?? '', answer.json.id_token ?? '')
  const request = await spanWhere('POST /oauth2/token', (s) => s.name === 'POST /oauth2/token', since)
  const grant = await spanWhere('grant password', (s) => s.name === 'grant password' && traceOf(s) === traceOf(request), since)
  t.equal(parentOf(grant), idOf(request), 'the grant is a child of the request span')
  t.ok(tracing.spans().some((s) => s.name === 'sign at+jwt' && parentOf(s) === idOf(grant)), 'the access token is signed under the grant')
  const redis = tracing.spans().filter((s) => s.name.startsWith('redis ') && traceOf(s) === traceOf(request))
  t.ok(redis.length > 0 && redis.every((s) => parentOf(s) !== undefined), 'Redis calls are in the request\'s trace')
})

t.test('no span name or attribute carries a token, a subject, a username, an e-mail or a secret', async (t) => {
  // Once more through every grant path, so that the whole file's spans are looked at below.
  await httpGet(`${url}/api/last`, { authorization: `Bearer ${alice.access_token}` })
  await spanWhere('the last request', (s) => s.name === 'GET api' && s.attributes['http.response.status_code'] === 200)
  const all = tracing.spans()
  t.ok(all.length > 10, `${all.length} spans looked at`)
  const leaks: string[] = []
  for (const span of all) {
    const values = [span.name, ...Object.entries(span.attributes).flatMap(([key, value]) => [key, String(value)])]
    for (const value of values) {
      for (const secret of forbidden) {
        if (secret !== '' && value.includes(secret)) leaks.push(`${span.name}: ${value.slice(0, 40)}`)
      }
    }
  }
  t.same(leaks, [])
})
