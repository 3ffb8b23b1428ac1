/**
 * Audit events of revoking and ending (docs/operations.md, Audit events), over real HTTP: a
 * refresh token reused (by its client and by another), an authorization code replayed, tokens
 * revoked (RFC 7009), sessions ended every way (RP-initiated logout, the gateway's session-end
 * endpoint, a gateway revoking an access token, a new sign-in in the same browser), and the
 * back-channel logout deliveries, one that succeeds and one that is refused. Each act logs its
 * event once with its fields; no token, logout token, secret or cookie is logged.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { decodeJwt } from 'jose'
import { basic, postForm, startIssuer } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { signIn, WEB_CALLBACK } from './fixtures/sign-in.ts'
import { Browser, type Page } from './fixtures/browser.ts'
import { passwordTokens } from './fixtures/flows.ts'
import { captureLog, LEVELS, type LogLine } from './fixtures/log-capture.ts'

/** Back-channel receivers: `/client` (the web client's) takes logout tokens, `/rs` (demo-api's) refuses them. */
async function startReceivers (t: Test): Promise<{ url: string, tokens: string[] }> {
  const tokens: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      tokens.push(new URLSearchParams(body).get('logout_token') ?? '')
      res.writeHead(req.url === '/client' ? 200 : 400).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const address = server.address()
  return { url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`, tokens }
}

const log = captureLog('info')
const receivers = await startReceivers(t)
const { url, as } = await startIssuer(t, 'memory', 'trustProxy: [loopback]', { logger: log.logger }, { backchannelUri: receivers.url })
const flow = signIn(as, url)

const secrets: Record<string, string> = { 'cli secret': SECRETS.cli, 'web secret': SECRETS.web, 'gateway secret': SECRETS.gateway }
const remember = (name: string, value: unknown): void => { if (typeof value === 'string' && value !== '') secrets[name] = value }

interface Sent { id: string, status: number, json: Record<string, unknown> }

/** A form POST from `ip` (behind the trusted loopback proxy), as `client` (Basic), or with the credentials in the form (null). */
async function post (path: string, form: Record<string, string>, client: [string, string] | null, ip = '203.0.113.50'): Promise<Sent> {
  const res = await postForm(`${url}${path}`, form, { ...(client === null ? {} : { authorization: basic(client[0], client[1]) }), 'x-forwarded-for': ip })
  return { id: res.headers.get('x-request-id') ?? '', status: res.status, json: res.json }
}
const CLI: [string, string] = ['cli', SECRETS.cli]
const GATEWAY: [string, string] = ['gateway', SECRETS.gateway]

/** The lines of `event` that request `id` logged. */
const of = (event: string, id: string): LogLine[] => log.events(event).filter((l) => l.reqId === id)

function one (t: Test, event: string, id: string): LogLine {
  const lines = of(event, id)
  t.equal(lines.length, 1, `one ${event} line for the request`)
  return lines[0] ?? {}
}

const requestId = (page: Page): string => page.headers.get('x-request-id') ?? ''

async function userTokens (name: string, scope = 'openid api:read offline_access'): Promise<{ access: string, refresh: string, sid: string, jti: string }> {
  const tokens = await passwordTokens(as, 'alice', scope)
  remember(`${name} access token`, tokens.access_token)
  remember(`${name} refresh token`, tokens.refresh_token)
  remember(`${name} id_token`, tokens.id_token)
  const claims = decodeJwt(tokens.access_token)
  return { access: tokens.access_token, refresh: tokens.refresh_token ?? '', sid: String(claims.sid), jti: String(claims.jti) }
}

t.test('refresh_token.reused: whose family, who presented it, what was revoked', async (t) => {
  const first = await userTokens('reuse')
  const rotated = await post('/oauth2/token', { grant_type: 'refresh_token', refresh_token: first.refresh }, CLI)
  t.equal(rotated.status, 200)
  remember('rotated refresh token', rotated.json.refresh_token)
  remember('rotated access token', rotated.json.access_token)
  const reused = await post('/oauth2/token', { grant_type: 'refresh_token', refresh_token: first.refresh }, CLI, '198.51.100.30')
  t.equal(reused.json.error, 'invalid_grant')
  const line = one(t, 'refresh_token.reused', reused.id)
  t.match(line, { level: LEVELS.info, client_id: 'cli', sub: 'alice', sid: first.sid, ip: '198.51.100.30', revoked: 2 })
  t.notOk('by' in line, 'presented by its own client')
  t.same(of('token.issued', reused.id), [], 'nothing issued')

  // Another client presenting cli's used refresh token.
  const other = await userTokens('reuse by another')
  const again = await post('/oauth2/token', { grant_type: 'refresh_token', refresh_token: other.refresh }, CLI)
  remember('second rotated refresh token', again.json.refresh_token)
  remember('second rotated access token', again.json.access_token)
  const foreign = await post('/oauth2/token', { grant_type: 'refresh_token', refresh_token: other.refresh, client_id: 'cli-post', client_secret: SECRETS.cli }, null)
  t.match(one(t, 'refresh_token.reused', foreign.id), { client_id: 'cli', by: 'cli-post', sid: other.sid })
})

t.test('authorization_code.replayed names the client and the access token the code gave', async (t) => {
  const started = await flow.startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:read' })
  const callback = await flow.loginAndAllow(started)
  const code = new URL(callback.url).searchParams.get('code') ?? ''
  remember('authorization code', code)
  remember('code verifier', started.verifier)
  const form = { grant_type: 'authorization_code', code, redirect_uri: WEB_CALLBACK, code_verifier: started.verifier }
  const exchanged = await post('/oauth2/token', form, ['web', SECRETS.web])
  t.equal(exchanged.status, 200)
  remember('code access token', exchanged.json.access_token)
  remember('code id_token', exchanged.json.id_token)
  const replayed = await post('/oauth2/token', form, ['web', SECRETS.web], '198.51.100.31')
  t.equal(replayed.json.error, 'invalid_grant')
  t.match(one(t, 'authorization_code.replayed', replayed.id), { client_id: 'web', ip: '198.51.100.31', jti: decodeJwt(String(exchanged.json.access_token)).jti })
  for (const [name, value] of started.browser.cookies) remember(`cookie ${name}`, value)
})

t.test('token.revoked: a refresh token (its family), an access token, an unknown token', async (t) => {
  const refreshOwner = await userTokens('revoked refresh')
  const byRefresh = await post('/oauth2/revoke', { token: refreshOwner.refresh }, CLI)
  t.equal(byRefresh.status, 200)
  t.match(one(t, 'token.revoked', byRefresh.id), { client_id: 'cli', outcome: 'revoked', token_type: 'refresh_token', sub: 'alice', sid: refreshOwner.sid, revoked: 1, ip: '203.0.113.50' })
  const accessOwner = await userTokens('revoked access')
  const byAccess = await post('/oauth2/revoke', { token: accessOwner.access }, CLI)
  t.match(one(t, 'token.revoked', byAccess.id), { client_id: 'cli', outcome: 'revoked', token_type: 'access_token', jti: accessOwner.jti, sid: accessOwner.sid })
  t.same(of('session.ended', byAccess.id), [], 'a client revoking its own token ends no session')
  const unknown = await post('/oauth2/revoke', { token: 'not-a-token-of-ours-0123456789' }, CLI)
  t.equal(unknown.status, 200, 'RFC 7009 2.2')
  const line = one(t, 'token.revoked', unknown.id)
  t.match(line, { client_id: 'cli', outcome: 'unknown' })
  t.notOk('jti' in line || 'sub' in line, 'nothing known, nothing said')
})

t.test('session.ended by a gateway: revoking an access token, or the session-end endpoint; the back-channel deliveries', async (t) => {
  const revoked = await userTokens('gateway revocation')
  const byRevocation = await post('/oauth2/revoke', { token: revoked.access }, GATEWAY, '198.51.100.32')
  t.match(one(t, 'token.revoked', byRevocation.id), { client_id: 'gateway', outcome: 'session_ended', token_type: 'access_token', jti: revoked.jti, sub: 'alice' })
  t.match(one(t, 'session.ended', byRevocation.id), { how: 'gateway_revocation', client_id: 'gateway', ip: '198.51.100.32', sid: revoked.sid, sub: 'alice', revoked: 1, notified: 1, failed: 1 })
  // The password grant's session has no client with a receiver; demo-api's receiver refuses.
  t.match(one(t, 'backchannel_logout.failed', byRevocation.id), { level: LEVELS.warn, audience: 'demo-api', uri: `${receivers.url}/rs`, status: 400, reason: 'refused', sid: revoked.sid, sub: 'alice' })
  t.same(of('backchannel_logout.delivered', byRevocation.id), [])

  const ended = await userTokens('session end')
  const bySessionEnd = await post('/oauth2/session/end', { token: ended.access, audience: 'demo-api' }, GATEWAY, '198.51.100.33')
  t.equal(bySessionEnd.status, 200)
  for (const token of Object.values(bySessionEnd.json.logout_tokens as Record<string, string>)) remember('logout token for the gateway', token)
  t.match(one(t, 'session.ended', bySessionEnd.id), { how: 'gateway_logout', client_id: 'gateway', ip: '198.51.100.33', sid: ended.sid, sub: 'alice' })
  const repeat = await post('/oauth2/session/end', { token: ended.access }, GATEWAY)
  t.equal(repeat.status, 200)
  t.same(of('session.ended', repeat.id), [], 'a repeat ends nothing')
})

t.test('session.ended by RP-initiated logout and by a new sign-in in the same browser', async (t) => {
  const browser = new Browser(url)
  const first = await flow.webLogin({}, browser)
  remember('browser access token', first.tokens.access_token)
  remember('browser id_token', first.tokens.id_token)
  const firstSid = String(decodeJwt(first.tokens.access_token).sid)
  for (const [name, value] of browser.cookies) remember(`first session cookie ${name}`, value)

  // prompt=login: bob signs in where alice was; her session ends.
  const started = await flow.startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:read', prompt: 'login' }, browser)
  const afterLogin = await flow.login(browser, started.page, 'bob')
  const id = requestId(afterLogin)
  t.match(one(t, 'session.ended', id), { how: 'replaced_by_sign_in', client_id: 'web', ip: '127.0.0.1', sid: firstSid, sub: 'alice', notified: 2, failed: 1 })
  t.match(one(t, 'sign_in.succeeded', id), { username: 'bob', client_id: 'web' })
  t.match(one(t, 'backchannel_logout.delivered', id), { level: LEVELS.info, audience: 'web', uri: `${receivers.url}/client`, status: 200, sid: firstSid, sub: 'alice' })
  t.match(one(t, 'backchannel_logout.failed', id), { audience: 'demo-api', status: 400 })

  // Bob's session goes on to a token, then RP-initiated logout with its id_token.
  const callback = await browser.submit(afterLogin, {}, { name: 'decision', value: 'allow' })
  const code = new URL(callback.url).searchParams.get('code') ?? ''
  const bob = await post('/oauth2/token', { grant_type: 'authorization_code', code, redirect_uri: WEB_CALLBACK, code_verifier: started.verifier }, ['web', SECRETS.web])
  t.equal(bob.status, 200)
  remember('bob code', code)
  remember('bob id_token', bob.json.id_token)
  remember('bob access token', bob.json.access_token)
  const bobSid = String(decodeJwt(String(bob.json.access_token)).sid)
  for (const [name, value] of browser.cookies) remember(`bob session cookie ${name}`, value)
  const page = await browser.request(`${url}/oauth2/logout?${new URLSearchParams({ id_token_hint: String(bob.json.id_token) }).toString()}`)
  t.equal(page.status, 200, 'the signed-out page')
  t.match(one(t, 'session.ended', requestId(page)), { how: 'rp_logout', client_id: 'web', ip: '127.0.0.1', sid: bobSid, sub: 'bob' })
})

t.test('no token, logout token, code, secret or cookie is in the log', async (t) => {
  receivers.tokens.forEach((token, i) => { remember(`delivered logout token ${i}`, token) })
  const text = log.text()
  t.ok(Object.keys(secrets).length >= 25, `${Object.keys(secrets).length} secrets collected`)
  for (const [name, value] of Object.entries(secrets)) {
    t.ok(value.length >= 10, `${name} is a real value`)
    t.notOk(text.includes(value), `no ${name}`)
  }
  t.ok(log.events().length >= 15, 'control: the audit lines are in the same log')
})
