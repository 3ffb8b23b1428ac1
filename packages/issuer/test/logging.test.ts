/**
 * The request log: one 'request completed' line per request, carrying the request id (an
 * incoming X-Request-Id is reused and echoed), and no secret anywhere in the log text:
 * client secrets (Basic and post), passwords, refresh tokens and access tokens.
 * The issuer logs through its own options (src/logging.ts) into a captured stream.
 */
import t from 'tap'
import type { FastifyServerOptions } from 'fastify'
import { startIssuer, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { waitFor } from './fixtures/flows.ts'
import { loggerOptions } from '../src/logging.ts'

type LoggerOptions = Exclude<NonNullable<FastifyServerOptions['logger']>, boolean>

const chunks: string[] = []
const stream = { write: (chunk: string): void => { chunks.push(chunk) } }
const logger: LoggerOptions = { ...(loggerOptions('info') as LoggerOptions), stream }
// The test's requests come from loopback, trusted as a proxy here: its X-Request-Id is kept.
const { url } = await startIssuer(t, 'memory', 'trustProxy: [loopback]', { logger })

const logText = (): string => chunks.join('')
const logLines = (): Array<Record<string, unknown>> => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
const completedFor = (id: string): Array<Record<string, unknown>> => logLines().filter((l) => l.msg === 'request completed' && l.reqId === id)

interface Sent { label: string, sentId: string | undefined, id: string, status: number, json: Record<string, unknown> }
const sent: Sent[] = []
let counter = 0

/** One request; records the id the server answered with (x-request-id). */
async function send (label: string, path: string, init: { method?: string, form?: Record<string, string>, headers?: Record<string, string>, requestId?: string | null } = {}): Promise<Sent> {
  const sentId = init.requestId === null ? undefined : init.requestId ?? `log-test-${++counter}`
  const headers: Record<string, string> = { ...init.headers }
  if (sentId !== undefined) headers['x-request-id'] = sentId
  if (init.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? (init.form === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.form === undefined ? {} : { body: new URLSearchParams(init.form).toString() })
  })
  const text = await res.text()
  const record = { label, sentId, id: res.headers.get('x-request-id') ?? '', status: res.status, json: text.startsWith('{') ? JSON.parse(text) as Record<string, unknown> : {} }
  sent.push(record)
  return record
}

const cliBasic = { authorization: basic('cli', SECRETS.cli) }
const WRONG_PASSWORD = 'wrong-password-Zq8xW3'
const WRONG_SECRET = 'wrong-client-secret-Pv7nK2'

// Tokens and secrets travel in every way a client may send them.
const first = await send('password grant, Basic', '/oauth2/token', { form: { grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read' }, headers: cliBasic })
const viaPost = await send('password grant, client_secret_post', '/oauth2/token', { form: { grant_type: 'password', username: 'bob', password: 'bob-password', client_id: 'cli-post', client_secret: SECRETS.cli } })
const rotated = await send('refresh grant', '/oauth2/token', { form: { grant_type: 'refresh_token', refresh_token: String(first.json.refresh_token) }, headers: cliBasic })
await send('refresh token reuse', '/oauth2/token', { form: { grant_type: 'refresh_token', refresh_token: String(first.json.refresh_token) }, headers: cliBasic })
await send('introspect access token, Basic', '/oauth2/introspect', { form: { token: String(viaPost.json.access_token) }, headers: { authorization: basic('service', SECRETS.service) } })
await send('introspect refresh token, post', '/oauth2/introspect', { form: { token: String(viaPost.json.refresh_token), client_id: 'cli-post', client_secret: SECRETS.cli } })
await send('revoke access token', '/oauth2/revoke', { form: { token: String(rotated.json.access_token), token_type_hint: 'access_token' }, headers: cliBasic })
await send('revoke refresh token, post', '/oauth2/revoke', { form: { token: String(viaPost.json.refresh_token), client_id: 'cli-post', client_secret: SECRETS.cli } })
await send('wrong password', '/oauth2/token', { form: { grant_type: 'password', username: 'alice', password: WRONG_PASSWORD }, headers: cliBasic })
await send('wrong client secret, Basic', '/oauth2/token', { form: { grant_type: 'password', username: 'alice', password: 'alice-password' }, headers: { authorization: basic('cli', WRONG_SECRET) } })
await send('wrong client secret, post', '/oauth2/revoke', { form: { token: String(rotated.json.refresh_token), client_id: 'cli-post', client_secret: WRONG_SECRET } })
const query = new URLSearchParams({ client_secret: SECRETS.cli, password: 'alice-password', refresh_token: String(rotated.json.refresh_token), access_token: String(rotated.json.access_token) })
const inQuery = await send('secrets in the query string', `/oauth2/token?${query.toString()}`, { form: { grant_type: 'password', username: 'alice', password: 'alice-password' }, headers: cliBasic })
await send('body too large', '/oauth2/token', { form: { grant_type: 'password', username: 'alice', password: 'alice-password', pad: 'x'.repeat(70 * 1024) }, headers: cliBasic })
await send('JSON instead of a form', '/oauth2/revoke', { method: 'POST', headers: { ...cliBasic, 'content-type': 'application/json' } })
await send('unknown path with a token in the query', `/nowhere?token=${String(rotated.json.access_token)}`)
// Issue 9.9: redaction goes by the decoded parameter name, as the server reads it.
const withIdToken = await send('password grant with openid', '/oauth2/token', { form: { grant_type: 'password', username: 'bob', password: 'bob-password', scope: 'openid' }, headers: cliBasic })
const encodedHint = await send('logout with an encoded id_token_hint', `/oauth2/logout?id%5Ftoken%5Fhint=${String(withIdToken.json.id_token)}`)
const afterEncodedLogout = await send('refresh after that logout', '/oauth2/token', { form: { grant_type: 'refresh_token', refresh_token: String(withIdToken.json.refresh_token) }, headers: cliBasic })
const ENCODED = ['code', 'token', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'password', 'logout_token', 'code_verifier']
const encodedValue = (name: string): string => `SECRET-${name}-0123456789`
await send('every secret parameter with an encoded name', `/nowhere?${ENCODED.map((name) => `${name.replace(/_/g, '%5F').replace(/^c/, '%63')}=${encodedValue(name)}`).join('&')}`)
const generated = await send('no X-Request-Id', '/.well-known/jwks.json', { requestId: null })
const insane = await send('unusable X-Request-Id', '/.well-known/jwks.json', { requestId: 'not a usable id <script>' })
const probe = await send('health probe', '/healthz')

const secrets: Record<string, string> = {
  'cli secret': SECRETS.cli,
  'service secret': SECRETS.service,
  'Basic credentials (cli)': cliBasic.authorization.slice(6),
  'Basic credentials (service)': basic('service', SECRETS.service).slice(6),
  'alice password': 'alice-password',
  'bob password': 'bob-password',
  'wrong password': WRONG_PASSWORD,
  'wrong client secret': WRONG_SECRET,
  'id_token sent as an encoded id_token_hint': String(withIdToken.json.id_token)
}
for (const name of ENCODED) secrets[`${name} with an encoded name`] = encodedValue(name)
for (const [name, response] of [['first', first], ['via post', viaPost], ['rotated', rotated]] as const) {
  const access = String(response.json.access_token)
  const refresh = String(response.json.refresh_token)
  secrets[`${name} access token`] = access
  secrets[`${name} access token signature`] = access.split('.')[2] ?? access
  secrets[`${name} refresh token`] = refresh
  secrets[`${name} refresh token secret part`] = refresh.split('.')[1] ?? refresh
}

t.test('the requests did what they were meant to', async (t) => {
  t.equal(first.status, 200)
  t.equal(viaPost.status, 200)
  t.equal(rotated.status, 200)
  t.equal(inQuery.status, 200)
  t.equal(encodedHint.status, 200, 'the encoded id_token_hint was read')
  t.equal(afterEncodedLogout.json.error, 'invalid_grant', 'and honoured: its session ended')
  for (const name of Object.keys(secrets)) t.ok(secrets[name] !== undefined && secrets[name].length >= 12 && secrets[name] !== 'undefined', `${name} is a real value`)
})

t.test('every logged request has exactly one "request completed" line with its id', async (t) => {
  const logged = sent.filter((s) => s !== probe)
  await waitFor(() => logged.every((s) => completedFor(s.id).length > 0))
  for (const s of logged) {
    const lines = completedFor(s.id)
    t.equal(lines.length, 1, `${s.label}: one line`)
    t.equal(lines[0]?.statusCode, s.status, `${s.label}: with the status`)
  }
  t.equal(new Set(logged.map((s) => s.id)).size, logged.length, 'ids are unique')
  t.same(completedFor(probe.id), [], 'health probes are not logged')
  const inQueryLine = completedFor(inQuery.id)[0]
  t.match(inQueryLine?.url, /client_secret=\*\*\*/, 'the logged URL is redacted, not dropped')
  t.ok(logLines().some((l) => l.msg === 'request completed' && l.client_id === 'cli' && l.reqId === first.id), 'control: the log does hold the request details (the authenticated client)')
})

t.test('every line of a request carries its id and the client\'s IP', async (t) => {
  const ofRequests = logLines().filter((l) => l.reqId !== undefined)
  t.ok(ofRequests.length > sent.length, `${ofRequests.length} lines`)
  t.ok(ofRequests.every((l) => l.ip === '127.0.0.1'), 'each with ip')
})

t.test('a trusted proxy\'s X-Request-Id is reused and echoed; otherwise one is made', async (t) => {
  for (const s of sent.filter((s) => s.sentId !== undefined && s !== insane)) {
    t.equal(s.id, s.sentId, `${s.label}: echoed`)
  }
  t.match(generated.id, /^[0-9a-f-]{36}$/, 'a fresh UUID when none is sent')
  t.match(insane.id, /^[0-9a-f-]{36}$/, 'an unusable incoming id is replaced')
  t.notOk(logText().includes('<script>'), 'and is not logged')
  const revoked = sent.find((s) => s.label.startsWith('revoke'))
  t.ok(revoked !== undefined && logLines().filter((l) => l.reqId === revoked.id).length >= 2, 'the id is on every line of the request, not only the last')
})

t.test('no secret, password or token appears anywhere in the log', async (t) => {
  const text = logText()
  t.ok(text.length > 0, 'something was logged')
  for (const [name, value] of Object.entries(secrets)) {
    t.notOk(text.includes(value), `no ${name}`)
    t.notOk(text.includes(encodeURIComponent(value)), `no ${name} (URL-encoded)`)
  }
})

t.test('a request with a malformed URL is logged and gets its X-Request-Id', async (t) => {
  // Fastify answers a bad percent-encoding in the path (onBadUrl) before routing: no hooks,
  // no log controller, and its own error body, unless `frameworkErrors` is set.
  const res = await fetch(`${url}/%zz`, { headers: { 'x-request-id': 'log-test-bad-url' } })
  const body = await res.json() as Record<string, unknown>
  t.equal(res.status, 400)
  t.equal(res.headers.get('x-request-id'), 'log-test-bad-url', 'the id is echoed')
  t.equal(body.error, 'invalid_request', 'the RFC 6749 error body, like every other bad input')
  await waitFor(() => completedFor('log-test-bad-url').length > 0)
  t.equal(completedFor('log-test-bad-url').length, 1, 'one "request completed" line')
})
