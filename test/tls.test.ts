/**
 * TLS on both services, in real processes (issue 12): the issuer and the gateway listen https
 * with certificates the test makes (openssl, a test CA that every client here trusts alone);
 * the gateway fetches the issuer's keys over https and serves HTTP/2 and HTTP/1.1 on one port.
 *
 * - discovery, JWKS and the token endpoint over https; the port answers no plain http;
 * - a sign-in through the authorization endpoint: the cookies are `__Host-` and Secure from the
 *   TLS listener (a forged X-Forwarded-Proto changes nothing), then code, token and a gateway
 *   call over HTTP/2;
 * - HTTP/2 and HTTP/1.1 on the gateway's port; hop-by-hop fields of an upstream's answer never
 *   reach an HTTP/2 client; `Expect: 100-continue` over HTTP/2;
 * - a certificate replaced on disk (rename, or written in place) is what the next new
 *   connection gets, without a restart, and on SIGHUP; a broken replacement (a key of another
 *   certificate, a half-written file) is logged and the previous certificate keeps serving;
 * - SIGTERM with HTTP/2 sessions open: a request in flight finishes, idle sessions get a GOAWAY,
 *   exit 0 at once (Fastify alone would wait for them on Node before 24);
 * - unusable TLS files or combinations at start: one located line, exit 1.
 */
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { connect as connectHttp2, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { issueCertificate, makeCa } from '@gatehouse/test-kit/certificates'
import {
  cheapPasswordHash, decodeJwt, DEMO, demoGatewayConfig, demoIssuerConfig, ROOT, runNode, startOnFreePort, tail, waitFor,
  writeConfigFile, type Service
} from './fixtures/processes.ts'
import { httpsRequest, HttpsBrowser, servedCertificate, TlsService } from './fixtures/tls.ts'

const ISSUER_BIN = join(ROOT, 'packages/issuer/bin/gatehouse-issuer.js')
const GATEWAY_BIN = join(ROOT, 'packages/gateway/bin/gatehouse-gateway.js')
const REDIRECT_URI = 'http://127.0.0.1:3000/callback'

// Registered before t.testdir(), whose teardown removes the files: the services stop first.
const services: Service[] = []
t.teardown(async () => { await Promise.all(services.map(async (service) => await service.stop())) })
t.teardown(() => {
  if (t.passing()) return
  for (const service of services) console.error(`\n===== ${service.name} output =====\n${tail(service.output, 20_000)}`)
})
const dir = t.testdir()
const ca = makeCa(dir)
// The configs name these relative to their own directory (`dir`); the processes run in ROOT.
issueCertificate(ca, dir, 'issuer', { cn: 'issuer.test' })
const firstGateway = issueCertificate(ca, dir, 'gateway', { cn: 'gateway.test' })
const trust = { NODE_EXTRA_CA_CERTS: ca.cert }

/** Resolved when the upstream receives `/hop/slow` (which it answers a second later). */
let slowArrived: () => void = () => {}

/** The upstream: echoes JSON under /api; under /hop answers with hop-by-hop fields, chunked. */
const upstream = createServer((req, res) => {
  if (req.url === '/hop/slow') {
    slowArrived()
    setTimeout(() => { res.end('slow') }, 1000)
    return
  }
  if (req.url?.startsWith('/hop') === true) {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'x-hop': 'for the next hop only', 'proxy-connection': 'keep-alive', 'x-end-to-end': 'kept' })
    res.write('chunk one, ')
    res.end('chunk two')
    return
  }
  let body = ''
  req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body }))
  })
})
upstream.listen(0, '127.0.0.1')
await once(upstream, 'listening')
t.teardown(() => { upstream.close() })
const upstreamAddress = upstream.address()
const upstreamUrl = `http://127.0.0.1:${typeof upstreamAddress === 'object' && upstreamAddress !== null ? upstreamAddress.port : 0}`

const issuerFile = join(dir, 'issuer.yaml')
const issuer = await startOnFreePort((port) => {
  const config = demoIssuerConfig()
  config.issuer = `https://127.0.0.1:${port}`
  config.listen = { host: '127.0.0.1', port, tls: { cert: 'issuer.pem', key: 'issuer.key' } }
  config.dataDir = join(dir, 'issuer-data')
  config.log = { level: 'info' }
  for (const user of config.users) user.passwordHash = cheapPasswordHash(DEMO.passwords[user.username] ?? `${user.username}-password`)
  writeConfigFile(issuerFile, config)
  const service = new TlsService({ name: 'issuer', args: [ISSUER_BIN, '--config', issuerFile], port, readyPath: '/readyz', env: trust, ca: ca.pem })
  services.push(service)
  return service
})

const gatewayFile = join(dir, 'gateway.yaml')
const gateway = await startOnFreePort((port) => {
  const config = demoGatewayConfig()
  config.listen = { host: '127.0.0.1', port, tls: { cert: 'gateway.pem', key: 'gateway.key' }, http2: true }
  config.issuer = issuer.origin
  config.client = { id: DEMO.gateway.id, secret: DEMO.gateway.secret }
  config.log = { level: 'info' }
  config.routes = [
    { name: 'api', prefix: '/api', upstreams: [upstreamUrl], stripPrefix: false, auth: 'required', validation: 'local', audience: 'demo-api', scopes: { GET: ['api:read'], '*': ['api:write'] }, timeout: 30 },
    { name: 'hop', prefix: '/hop', upstreams: [upstreamUrl], stripPrefix: false, auth: 'none', validation: 'local', timeout: 30 }
  ]
  writeConfigFile(gatewayFile, config)
  const service = new TlsService({ name: 'gateway', args: [GATEWAY_BIN, '--config', gatewayFile], port, readyPath: '/readyz', env: trust, ca: ca.pem })
  services.push(service)
  return service
})

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

/** POST to the issuer's token endpoint over https; the JSON answer (throws unless 200). */
async function tokenRequest (client: { id: string, secret: string }, params: Record<string, string>): Promise<Record<string, string>> {
  const res = await httpsRequest(`${issuer.origin}/oauth2/token`, {
    ca: ca.pem,
    method: 'POST',
    headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(params).toString()
  })
  if (res.status !== 200) throw new Error(`token endpoint: HTTP ${res.status} ${res.text}`)
  return JSON.parse(res.text) as Record<string, string>
}

/** An HTTP/2 session to the gateway, closed in teardown. */
async function h2Session (tt: Test): Promise<ClientHttp2Session> {
  const session = connectHttp2(gateway.origin, { ca: ca.pem })
  tt.teardown(() => { session.close() })
  await once(session, 'connect')
  return session
}

interface H2Reply { status: number, headers: IncomingHttpHeaders, text: string, continued: boolean }

/** One HTTP/2 request; with `expectContinue`, the body waits for the 100 (5 s at most). */
async function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string, expectContinue = false): Promise<H2Reply> {
  const req = session.request({ ':method': 'GET', ...headers, ...(expectContinue ? { expect: '100-continue' } : {}) }, { endStream: body === undefined })
  req.setTimeout(10_000, () => { req.close(constants.NGHTTP2_CANCEL) })
  const response = once(req, 'response') as Promise<[IncomingHttpHeaders & { ':status'?: number }]>
  let continued = false
  if (body !== undefined) {
    if (expectContinue) {
      await once(req, 'continue', { signal: AbortSignal.timeout(5000) })
      continued = true
    }
    req.end(body)
  }
  const [answer] = await response
  let text = ''
  req.setEncoding('utf8')
  for await (const chunk of req) text += String(chunk)
  return { status: Number(answer[':status']), headers: answer, text, continued }
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'x-hop']

t.test('the issuer over https: discovery, JWKS and the token endpoint; no plain http on its port', async (t) => {
  const discovery = await httpsRequest(`${issuer.origin}/.well-known/openid-configuration`, { ca: ca.pem })
  t.equal(discovery.status, 200)
  t.equal(discovery.peer.cn, 'issuer.test', 'its certificate, read from paths relative to the config file')
  const doc = JSON.parse(discovery.text) as Record<string, string>
  t.equal(doc.issuer, issuer.origin)
  for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint']) t.match(doc[endpoint], /^https:\/\/127\.0\.0\.1:\d+\//, `${endpoint} is https`)
  const jwks = await httpsRequest(doc.jwks_uri ?? '', { ca: ca.pem })
  t.equal(jwks.status, 200)
  t.ok((JSON.parse(jwks.text) as { keys: unknown[] }).keys.length >= 1, 'the JWKS has keys')
  const tokens = await tokenRequest(DEMO.service, { grant_type: 'client_credentials', scope: 'api:read' })
  t.equal(decodeJwt(tokens.access_token ?? '').payload.iss, issuer.origin, 'a token over https, with the https iss')
  await t.rejects(fetch(`http://127.0.0.1:${issuer.port}/readyz`, { signal: AbortSignal.timeout(5000) }), 'plain http gets no answer')
  mkdirSync(join(dir, 'stranger'))
  const stranger = makeCa(join(dir, 'stranger'), 'stranger-ca', 'Another CA')
  await t.rejects(httpsRequest(`${issuer.origin}/readyz`, { ca: stranger.pem }), { code: /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/ }, 'clients verify: one that trusts another CA refuses')
})

t.test('sign-in over https: Secure __Host- cookies from the TLS listener alone; then code, token and a gateway call over HTTP/2', async (t) => {
  const browser = new HttpsBrowser(issuer.origin, ca.pem)
  // No proxy is trusted: a forged header must change nothing.
  browser.extraHeaders = { 'x-forwarded-proto': 'http' }
  const verifier = randomBytes(32).toString('base64url')
  const state = randomBytes(12).toString('base64url')
  const authorize = new URL(`${issuer.origin}/oauth2/authorize`)
  const params = {
    response_type: 'code',
    client_id: DEMO.web.id,
    redirect_uri: REDIRECT_URI,
    scope: 'openid api:read',
    state,
    nonce: randomBytes(12).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256'
  }
  for (const [name, value] of Object.entries(params)) authorize.searchParams.set(name, value)
  const login = await browser.request(authorize.toString())
  t.equal(login.status, 200)
  t.match(login.html, /name="password"/, 'the login page')
  t.match(login.headers.get('strict-transport-security'), /max-age=\d+/, 'HSTS on the pages')
  let page = await browser.submit(login, { username: 'alice', password: DEMO.passwords.alice ?? '' })
  if (/name="decision"/.test(page.html)) page = await browser.submit(page, {}, { name: 'decision', value: 'allow' })

  const cookies = browser.setCookies.filter((line) => !/max-age=0/i.test(line))
  const session = cookies.find((line) => line.startsWith('__Host-gatehouse_session='))
  const preSession = cookies.find((line) => line.startsWith('__Host-gatehouse_csrf='))
  t.ok(session, `the session cookie is __Host-gatehouse_session (${browser.setCookies.join(' | ')})`)
  t.ok(preSession, 'the pre-session (CSRF) cookie is __Host- too')
  for (const line of [session, preSession]) {
    t.match(line, /;\s*Secure(;|$)/i, 'Secure')
    t.match(line, /;\s*Path=\/(;|$)/i, 'Path=/')
    t.match(line, /;\s*HttpOnly(;|$)/i, 'HttpOnly')
    t.notMatch(line, /;\s*Domain=/i, 'no Domain')
  }
  t.same(browser.setCookies.filter((line) => !line.startsWith('__Host-')), [], 'no cookie without the prefix')

  const callback = new URL(page.url)
  t.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI, 'back at the client')
  t.equal(callback.searchParams.get('state'), state)
  t.equal(callback.searchParams.get('iss'), issuer.origin, 'RFC 9207 iss: the https issuer')
  const tokens = await tokenRequest(DEMO.web, { grant_type: 'authorization_code', code: callback.searchParams.get('code') ?? '', redirect_uri: REDIRECT_URI, code_verifier: verifier })
  t.ok(tokens.access_token !== undefined && tokens.id_token !== undefined, 'tokens for the code')

  // The gateway fetched the issuer's keys over https (NODE_EXTRA_CA_CERTS: the test CA).
  const h2 = await h2Session(t)
  t.equal(h2.alpnProtocol, 'h2', 'HTTP/2 chosen through ALPN')
  const res = await h2Request(h2, { ':path': '/api/items?x=1', authorization: `Bearer ${tokens.access_token ?? ''}` })
  t.equal(res.status, 200, res.text)
  const echo = JSON.parse(res.text) as { path: string, headers: Record<string, string> }
  t.equal(echo.path, '/api/items?x=1', 'proxied (over HTTP/1.1 to the upstream)')
  t.equal(echo.headers['x-auth-subject'], 'alice', 'as alice')
})

t.test('the gateway: HTTP/2 and HTTP/1.1 on one port; hop-by-hop fields never reach an HTTP/2 answer', async (t) => {
  const token = (await tokenRequest(DEMO.service, { grant_type: 'client_credentials', scope: 'api:read api:write' })).access_token ?? ''
  const h2 = await h2Session(t)
  t.equal(h2.alpnProtocol, 'h2')

  const refused = await h2Request(h2, { ':path': '/api/items' })
  t.equal(refused.status, 401, 'no token: 401')
  t.match(refused.headers['www-authenticate'], /^Bearer/)

  const hop = await h2Request(h2, { ':path': '/hop/x' })
  t.equal(hop.status, 200, hop.text)
  t.equal(hop.text, 'chunk one, chunk two', 'the chunked body, whole')
  t.equal(hop.headers['x-end-to-end'], 'kept', 'end-to-end fields pass')
  for (const name of HOP_BY_HOP) t.notOk(name in hop.headers, `no ${name} on the HTTP/2 answer`)

  const parallel = await Promise.all(Array.from({ length: 20 }, async (_, i) => await h2Request(h2, { ':path': `/api/items/${i}`, authorization: `Bearer ${token}` })))
  t.same(parallel.map((r) => r.status), Array(20).fill(200), '20 streams at once on one connection')
  t.same(parallel.map((r) => (JSON.parse(r.text) as { path: string }).path), Array.from({ length: 20 }, (_, i) => `/api/items/${i}`), 'each answered for itself')

  const posted = await h2Request(h2, { ':method': 'POST', ':path': '/api/items', authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, 'a body', true)
  t.ok(posted.continued, 'Expect: 100-continue: the 100 came once the token was checked')
  t.equal(posted.status, 200)
  t.match(JSON.parse(posted.text), { method: 'POST', body: 'a body' }, 'and the body reached the upstream')

  for (const alpn of [undefined, ['http/1.1']]) {
    const h1 = await httpsRequest(`${gateway.origin}/hop/x`, { ca: ca.pem, ...(alpn === undefined ? {} : { alpn }) })
    t.equal(h1.httpVersion, '1.1', `HTTP/1.1 (ALPN ${JSON.stringify(alpn ?? 'not offered')})`)
    t.equal(h1.status, 200)
    t.equal(h1.text, 'chunk one, chunk two')
    t.notOk('x-hop' in h1.headers, 'a Connection-named field is dropped on HTTP/1.1 too')
    t.equal(h1.peer.cn, 'gateway.test')
  }
  const api = await httpsRequest(`${gateway.origin}/api/items`, { ca: ca.pem, headers: { authorization: `Bearer ${token}` } })
  t.equal(api.status, 200, 'a token over HTTP/1.1')
})

/** Renames `from` over `to`, as certbot, cert-manager and editors replace files. */
const moveOver = (from: string, to: string): void => { renameSync(from, to) }

t.test('a certificate replaced on disk is served to the next new connection without a restart; a broken replacement keeps the old one', async (t) => {
  // The issuer: replaced by rename, key first, as a renewal does.
  const pid = issuer.pid
  let mark = issuer.mark()
  const renewals = join(dir, 'renewals')
  mkdirSync(renewals)
  const renewed = issueCertificate(ca, renewals, 'issuer', { cn: 'issuer-renewed.test' })
  moveOver(renewed.key, join(dir, 'issuer.key'))
  moveOver(renewed.cert, join(dir, 'issuer.pem'))
  await waitFor('the issuer to serve the renewed certificate', async () => (await servedCertificate(issuer.port, ca.pem)).serial === renewed.serial ? true : undefined)
  t.equal((await servedCertificate(issuer.port, ca.pem)).cn, 'issuer-renewed.test')
  t.match((await issuer.waitForOutput(/[^\n]*TLS certificate reloaded[^\n]*/, { since: mark }))[0], new RegExp(`"serial":"${renewed.serial}"`), 'one info line naming it')
  t.equal(issuer.pid, pid, 'the same process')
  t.ok(await tokenRequest(DEMO.service, { grant_type: 'client_credentials', scope: 'api:read' }), 'tokens over the new certificate')

  mark = issuer.mark()
  const stranger = issueCertificate(ca, renewals, 'stranger')
  moveOver(stranger.key, join(dir, 'issuer.key'))
  await issuer.waitForOutput(/TLS certificate not reloaded \(listen\.tls\.key\)[^\n]*old one keeps serving/, { since: mark })
  t.match(issuer.outputSince(mark), /"level":40[^\n]*does not match the certificate/, 'a warning with the reason')
  t.equal((await servedCertificate(issuer.port, ca.pem)).serial, renewed.serial, 'the previous certificate still serves new connections')
  t.equal((await httpsRequest(`${issuer.origin}/.well-known/jwks.json`, { ca: ca.pem })).status, 200, 'and requests')
  // Review finding: a habitual `kill -HUP` stopped the issuer (Node's default for SIGHUP).
  mark = issuer.mark()
  issuer.signal('SIGHUP')
  await issuer.waitForOutput(/"reason":"SIGHUP"[^\n]*TLS certificate not reloaded/, { since: mark })
  t.equal(issuer.pid, pid, 'SIGHUP: the issuer tries a reload and keeps running')
  t.equal((await httpsRequest(`${issuer.origin}/.well-known/jwks.json`, { ca: ca.pem })).status, 200, 'and answers')

  // The gateway: written in place (a copy), key first; then SIGHUP; then a half-written file.
  const gatewayPid = gateway.pid
  mark = gateway.mark()
  const next = issueCertificate(ca, renewals, 'gateway', { cn: 'gateway-renewed.test' })
  t.not(next.serial, firstGateway.serial)
  writeFileSync(join(dir, 'gateway.key'), readFileSync(next.key))
  writeFileSync(join(dir, 'gateway.pem'), next.pem)
  await waitFor('the gateway to serve the renewed certificate', async () => (await servedCertificate(gateway.port, ca.pem)).serial === next.serial ? true : undefined)
  await gateway.waitForOutput(/TLS certificate reloaded/, { since: mark })

  mark = gateway.mark()
  gateway.signal('SIGHUP')
  await gateway.waitForOutput(/"reason":"SIGHUP"[^\n]*TLS certificate reloaded/, { since: mark })
  t.pass('SIGHUP reloads the certificate too')

  mark = gateway.mark()
  writeFileSync(join(dir, 'gateway.pem'), next.pem.subarray(0, 300))
  await gateway.waitForOutput(/TLS certificate not reloaded \(listen\.tls\.cert\)/, { since: mark })
  t.equal((await servedCertificate(gateway.port, ca.pem)).serial, next.serial, 'half written: the previous certificate still serves')
  const h2 = await h2Session(t)
  t.equal((await h2Request(h2, { ':path': '/hop/x' })).status, 200, 'and HTTP/2 requests')
  t.equal(gateway.pid, gatewayPid, 'the same gateway process')
})

t.test('SIGTERM with HTTP/2 sessions open: a request in flight finishes, idle sessions are closed, exit 0 at once', async (t) => {
  const idle = await h2Session(t)
  t.equal((await h2Request(idle, { ':path': '/hop/x' })).status, 200)
  const busy = await h2Session(t)
  const arrived = new Promise<void>((resolve) => { slowArrived = resolve })
  const inFlight = h2Request(busy, { ':path': '/hop/slow' })
  await arrived
  const closed = once(idle, 'close')
  const started = performance.now()
  const exit = await gateway.stop()
  t.same(exit, { code: 0, signal: null }, `a clean exit (${Math.round(performance.now() - started)} ms), before the stop timeout`)
  t.match(await inFlight, { status: 200, text: 'slow' }, 'the request in flight got its answer')
  await closed
  t.pass('the idle session was closed by the server')
})

t.test('unusable TLS files or combinations at start: one located line, exit 1', async (t) => {
  const bad = join(dir, 'bad')
  mkdirSync(bad)
  const own = issueCertificate(ca, bad, 'own')
  const other = issueCertificate(ca, bad, 'other')
  t.not(own.serial, other.serial)
  const issuerConfig = (change: (config: ReturnType<typeof demoIssuerConfig>) => void): string => {
    const config = demoIssuerConfig()
    config.issuer = 'https://127.0.0.1:4443'
    config.listen = { host: '127.0.0.1', port: 4443, tls: { cert: 'own.pem', key: 'own.key' } }
    config.dataDir = join(bad, 'issuer-data')
    change(config)
    const file = join(bad, 'issuer.yaml')
    writeConfigFile(file, config)
    return file
  }
  const gatewayConfig = (change: (config: ReturnType<typeof demoGatewayConfig>) => void): string => {
    const config = demoGatewayConfig()
    config.issuer = 'https://127.0.0.1:4443'
    config.listen = { host: '127.0.0.1', port: 8443, tls: { cert: 'own.pem', key: 'own.key' } }
    change(config)
    const file = join(bad, 'gateway.yaml')
    writeConfigFile(file, config)
    return file
  }
  const failsWith = async (args: string[], expected: RegExp): Promise<void> => {
    const { code, stderr } = await runNode(args, 60_000)
    t.equal(code, 1, `exit 1: ${args.slice(1).join(' ').replace(bad, '')}`)
    t.equal(stderr.trim().split('\n').length, 1, `one line:\n${stderr}`)
    t.notMatch(stderr, /\n\s+at /, 'no stack trace')
    t.match(stderr.trim(), expected)
  }
  await failsWith([ISSUER_BIN, '--config', issuerConfig((c) => { if (c.listen.tls !== undefined) c.listen.tls.key = 'other.key' })],
    /^\S+\/bad\/issuer\.yaml:\d+:\d+ listen\.tls\.key \S+\/bad\/other\.key does not match the certificate in listen\.tls\.cert \(\S+\/bad\/own\.pem\)$/)
  await failsWith([ISSUER_BIN, 'check', '--config', join(bad, 'issuer.yaml')], /^\S+issuer\.yaml:\d+:\d+ listen\.tls\.key \S+ does not match/)
  await failsWith([ISSUER_BIN, '--config', issuerConfig((c) => { c.issuer = 'http://127.0.0.1:4443' })],
    /^\S+issuer\.yaml:\d+:\d+ issuer must be an https URL when listen\.tls is set/)
  await failsWith([GATEWAY_BIN, '--config', gatewayConfig((c) => { if (c.listen.tls !== undefined) c.listen.tls.cert = 'missing.pem' })],
    /^\S+gateway\.yaml:\d+:\d+ listen\.tls\.cert cannot read \S+\/bad\/missing\.pem: no such file \(ENOENT\)$/)
  writeFileSync(join(bad, 'half.pem'), own.pem.subarray(0, 200))
  await failsWith([GATEWAY_BIN, 'check', '--config', gatewayConfig((c) => { if (c.listen.tls !== undefined) c.listen.tls.cert = 'half.pem' })],
    /^\S+gateway\.yaml:\d+:\d+ listen\.tls\.cert \S+half\.pem is not a PEM certificate/)
  await failsWith([GATEWAY_BIN, '--config', gatewayConfig((c) => { c.listen = { host: '127.0.0.1', port: 8443, http2: true } })],
    /^\S+gateway\.yaml:\d+:\d+ listen\.http2 needs listen\.tls/)
})
