/**
 * Audit events of signing in and getting tokens (docs/operations.md, Audit events), over real
 * HTTP: sign-ins that succeed, fail and are throttled (password grant and login page), client
 * authentications that fail and are throttled, consent given and denied, tokens issued by every
 * grant. Each act logs its event once, with its fields; the IP is the client's behind the
 * trusted proxy (X-Forwarded-For), and no password, secret, token, code or cookie is logged.
 */
import t, { type Test } from 'tap'
import { decodeJwt } from 'jose'
import * as oauth from 'oauth4webapi'
import { basic, startIssuer } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { signIn, WEB_CALLBACK } from './fixtures/sign-in.ts'
import { Browser, type Page } from './fixtures/browser.ts'
import { captureLog, LEVELS, type LogLine } from './fixtures/log-capture.ts'

const log = captureLog('info')
// Loopback is the trusted proxy: each request says which client address it stands for.
const limits = 'rateLimit: { loginPerUsername: 3, loginPerIp: 5, clientAuthPerClient: 3, clientAuthPerIp: 5 }'
const { url, as } = await startIssuer(t, 'memory', `trustProxy: [loopback]\n${limits}`, { logger: log.logger })
const flow = signIn(as, url)

interface Sent { id: string, status: number, json: Record<string, unknown> }

/** A form POST from `ip` (as the proxy reports it); returns the request id the issuer answered with. */
async function post (path: string, form: Record<string, string>, ip: string, authorization?: string): Promise<Sent> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip, ...(authorization === undefined ? {} : { authorization }) },
    body: new URLSearchParams(form).toString()
  })
  const text = await res.text()
  return { id: res.headers.get('x-request-id') ?? '', status: res.status, json: text.startsWith('{') ? JSON.parse(text) as Record<string, unknown> : {} }
}

const cli = basic('cli', SECRETS.cli)
const password = async (username: string, pass: string, ip: string): Promise<Sent> =>
  await post('/oauth2/token', { grant_type: 'password', username, password: pass, scope: 'openid api:read offline_access' }, ip, cli)

/** The one line of `event` the request `id` logged (fails the test unless there is exactly one). */
function one (t: Test, event: string, id: string): LogLine {
  const lines = log.events(event).filter((l) => l.reqId === id)
  t.equal(lines.length, 1, `one ${event} line for the request`)
  return lines[0] ?? {}
}

const secrets: Record<string, string> = {
  'cli secret': SECRETS.cli,
  'service secret': SECRETS.service,
  'web secret': SECRETS.web,
  'alice password': 'alice-password',
  'bob password': 'bob-password',
  'wrong password': 'wrong-password-Hj3k9',
  'wrong secret': 'wrong-secret-Lq2m8x'
}
const remember = (name: string, value: unknown): void => { if (typeof value === 'string' && value !== '') secrets[name] = value }

t.test('password grant: sign_in.succeeded and token.issued with the session and the token ids', async (t) => {
  const res = await password('alice', 'alice-password', '203.0.113.7')
  t.equal(res.status, 200)
  const claims = decodeJwt(String(res.json.access_token))
  remember('password grant access token', res.json.access_token)
  remember('password grant refresh token', res.json.refresh_token)
  remember('password grant id_token', res.json.id_token)
  t.match(one(t, 'sign_in.succeeded', res.id), { level: LEVELS.info, msg: 'sign_in.succeeded', username: 'alice', sub: 'alice', client_id: 'cli', ip: '203.0.113.7', via: 'password_grant', sid: claims.sid })
  t.match(one(t, 'token.issued', res.id), { level: LEVELS.info, grant_type: 'password', client_id: 'cli', sub: 'alice', jti: claims.jti, sid: claims.sid, scope: 'openid api:read offline_access', ip: '203.0.113.7' })

  const refreshed = await post('/oauth2/token', { grant_type: 'refresh_token', refresh_token: String(res.json.refresh_token) }, '203.0.113.7', cli)
  t.equal(refreshed.status, 200)
  remember('refreshed access token', refreshed.json.access_token)
  remember('refreshed refresh token', refreshed.json.refresh_token)
  t.match(one(t, 'token.issued', refreshed.id), { grant_type: 'refresh_token', client_id: 'cli', sub: 'alice', jti: decodeJwt(String(refreshed.json.access_token)).jti, sid: claims.sid })

  const service = await post('/oauth2/token', { grant_type: 'client_credentials', scope: 'api:read' }, '203.0.113.8', basic('service', SECRETS.service))
  t.equal(service.status, 200)
  remember('service access token', service.json.access_token)
  const line = one(t, 'token.issued', service.id)
  t.match(line, { grant_type: 'client_credentials', client_id: 'service', sub: 'service', jti: decodeJwt(String(service.json.access_token)).jti })
  t.notOk('sid' in line, 'no session, no sid')
})

t.test('password grant: a wrong password is sign_in.failed; a locked username or address is sign_in.throttled', async (t) => {
  const wrong = await password('bob', secrets['wrong password'] ?? '', '198.51.100.1')
  t.equal(wrong.status, 400)
  t.match(one(t, 'sign_in.failed', wrong.id), { username: 'bob', client_id: 'cli', ip: '198.51.100.1', via: 'password_grant', reason: 'invalid_credentials' })
  t.same(log.events('sign_in.succeeded').filter((l) => l.reqId === wrong.id), [], 'and nothing else about it')

  // loginPerUsername: 3, counted from any address.
  for (const ip of ['198.51.100.2', '198.51.100.3']) await password('mallory', 'guess', ip)
  const locked = await password('mallory', 'guess', '198.51.100.4')
  t.equal(locked.status, 400, 'the third failure still fails')
  const throttled = await password('mallory', 'guess', '198.51.100.5')
  t.equal(throttled.status, 429)
  t.match(one(t, 'sign_in.throttled', throttled.id), { username: 'mallory', client_id: 'cli', ip: '198.51.100.5', reason: 'username_locked', retry_after: Number })
  t.same(log.events('sign_in.failed').filter((l) => l.reqId === throttled.id), [], 'a throttled attempt is not also a failure')

  // loginPerIp: 5 failures over any usernames.
  for (const name of ['u1', 'u2', 'u3', 'u4', 'u5']) await password(name, 'guess', '192.0.2.66')
  const fromAddress = await password('alice', 'alice-password', '192.0.2.66')
  t.equal(fromAddress.status, 429, 'the right password too')
  t.match(one(t, 'sign_in.throttled', fromAddress.id), { username: 'alice', ip: '192.0.2.66', reason: 'ip_locked' })
})

t.test('client authentication: client_auth.failed with a stable reason; client_auth.throttled past the limits', async (t) => {
  const wrongSecret = secrets['wrong secret'] ?? ''
  const wrong = await post('/oauth2/token', { grant_type: 'client_credentials' }, '198.51.100.20', basic('cli', wrongSecret))
  t.equal(wrong.status, 401)
  t.match(one(t, 'client_auth.failed', wrong.id), { client_id: 'cli', ip: '198.51.100.20', reason: 'wrong_secret' })
  const unknown = await post('/oauth2/revoke', { token: 'x', client_id: 'nobody', client_secret: wrongSecret }, '198.51.100.21')
  t.match(one(t, 'client_auth.failed', unknown.id), { client_id: 'nobody', reason: 'unknown_client' })
  const noSecret = await post('/oauth2/introspect', { token: 'x', client_id: 'service' }, '198.51.100.22')
  t.match(one(t, 'client_auth.failed', noSecret.id), { client_id: 'service', reason: 'method_not_allowed' })
  const none = await post('/oauth2/token', { grant_type: 'client_credentials' }, '198.51.100.23')
  t.match(one(t, 'client_auth.failed', none.id), { reason: 'missing_or_malformed' })

  // clientAuthPerClient: 3 (service failed once above).
  for (const ip of ['198.51.100.24', '198.51.100.25']) await post('/oauth2/token', { grant_type: 'client_credentials' }, ip, basic('service', wrongSecret))
  const locked = await post('/oauth2/token', { grant_type: 'client_credentials' }, '198.51.100.26', basic('service', wrongSecret))
  t.equal(locked.status, 429)
  t.match(one(t, 'client_auth.throttled', locked.id), { client_id: 'service', ip: '198.51.100.26', reason: 'client_locked', retry_after: Number })
  t.same(log.events('client_auth.failed').filter((l) => l.reqId === locked.id), [])

  // clientAuthPerIp: 5.
  for (const id of ['a', 'b', 'c', 'd', 'e']) await post('/oauth2/token', { grant_type: 'client_credentials' }, '192.0.2.77', basic(id, wrongSecret))
  const fromAddress = await post('/oauth2/token', { grant_type: 'client_credentials' }, '192.0.2.77', basic('cli', SECRETS.cli))
  t.equal(fromAddress.status, 429)
  t.match(one(t, 'client_auth.throttled', fromAddress.id), { client_id: 'cli', ip: '192.0.2.77', reason: 'ip_locked' })
})

t.test('login page and consent: sign_in.*, consent.given, consent.denied, token.issued for the code and implicit grants', async (t) => {
  const browser = new Browser(url)
  const started = await flow.startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:read' }, browser)
  const failed = await flow.login(browser, started.page, 'alice', secrets['wrong password'])
  t.equal(failed.status, 401)
  t.match(one(t, 'sign_in.failed', requestId(failed)), { username: 'alice', client_id: 'web', ip: '127.0.0.1', via: 'login_page', reason: 'invalid_credentials' })

  const consent = await flow.login(browser, failed)
  t.match(consent.html, /name="decision"/, 'the consent page')
  const signedIn = one(t, 'sign_in.succeeded', requestId(consent))
  t.match(signedIn, { username: 'alice', sub: 'alice', client_id: 'web', via: 'login_page', sid: String })
  remember('csrf token', browser.form(consent).fields.csrf)
  const callback = await browser.submit(consent, {}, { name: 'decision', value: 'allow' })
  t.match(one(t, 'consent.given', requestId(callback)), { client_id: 'web', sub: 'alice', sid: signedIn.sid, scope: 'openid api:read', ip: '127.0.0.1' })

  const web = { client_id: 'web' }
  const params = oauth.validateAuthResponse(as, web, new URL(callback.url), started.state)
  remember('authorization code', params.get('code'))
  remember('code verifier', started.verifier)
  const exchange = await post('/oauth2/token', { grant_type: 'authorization_code', code: params.get('code') ?? '', redirect_uri: WEB_CALLBACK, code_verifier: started.verifier }, '203.0.113.9', basic('web', SECRETS.web))
  t.equal(exchange.status, 200)
  remember('code flow access token', exchange.json.access_token)
  remember('code flow id_token', exchange.json.id_token)
  t.match(one(t, 'token.issued', exchange.id), { grant_type: 'authorization_code', client_id: 'web', sub: 'alice', sid: signedIn.sid, jti: decodeJwt(String(exchange.json.access_token)).jti })

  // prompt=consent asks again in the same browser (no login), and the user says no.
  const again = await flow.startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:write', prompt: 'consent' }, browser)
  const denied = await browser.submit(again.page, {}, { name: 'decision', value: 'deny' })
  t.match(denied.url, /error=access_denied/)
  t.match(one(t, 'consent.denied', requestId(denied)), { client_id: 'web', sub: 'alice', sid: signedIn.sid, scope: 'openid api:write' })
  t.same(log.events('consent.given').filter((l) => l.reqId === requestId(denied)), [])

  const implicit = await browser.request(`${url}/oauth2/authorise?${new URLSearchParams({ response_type: 'token', client_id: 'legacy', redirect_uri: 'http://127.0.0.1:3000/legacy', scope: 'api:read', state: 's' }).toString()}`)
  const fragment = new URLSearchParams(new URL(implicit.url).hash.slice(1))
  remember('implicit access token', fragment.get('access_token'))
  t.match(one(t, 'token.issued', requestId(implicit)), { grant_type: 'implicit', client_id: 'legacy', sub: 'alice', sid: signedIn.sid, jti: decodeJwt(fragment.get('access_token') ?? '').jti })
  for (const [name, value] of browser.cookies) remember(`cookie ${name}`, value)
})

t.test('no password, secret, token, code or cookie is in the log', async (t) => {
  const text = log.text()
  t.ok(Object.keys(secrets).length >= 18, `${Object.keys(secrets).length} secrets collected`)
  for (const [name, value] of Object.entries(secrets)) {
    t.ok(value.length >= 10, `${name} is a real value`)
    t.notOk(text.includes(value), `no ${name}`)
    t.notOk(text.includes(encodeURIComponent(value)), `no ${name} (URL-encoded)`)
  }
  t.ok(log.events().length >= 20, 'control: the audit lines are in the same log')
})

function requestId (page: Page): string {
  return page.headers.get('x-request-id') ?? ''
}
