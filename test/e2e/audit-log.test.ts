/**
 * The audit log of a whole run (docs/operations.md, Audit events), in real processes logging
 * at info: a password grant (right and wrong password), the authorization code flow with
 * consent, a refresh, a refresh token reused, a revocation (RFC 7009), calls through the gateway
 * (served and refused) and a logout through it. Every act has its `event` line with its fields,
 * and not one line that any service printed holds a client secret, a password, an access,
 * refresh or id token (or its signature), an authorization code, a code verifier, a cookie value
 * or Basic credentials.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { bearer, decodeJwt, DEMO, request, startStack, userSession, waitFor, type GatewayProcess, type Service } from '../fixtures/processes.ts'
import { CLIENTS, decide, discover, exchangeCode, insecure, isConsentPage, refresh, refusal, signIn, startAuthorization } from '../fixtures/oauth.ts'

const stack = await startStack(t, { issuer: { logLevel: 'info' }, gateways: [{ logLevel: 'info' }] })
const { issuer, resourceServer } = stack
const gateway = stack.gateways[0] as GatewayProcess
const as = await discover(issuer)
const start = { issuer: issuer.mark(), gateway: gateway.mark() }

type Line = Record<string, unknown>

/** The JSON lines `service` printed since the test began (anything else is skipped). */
function linesOf (service: Service, since: number): Line[] {
  return service.outputSince(since).split('\n').flatMap((text) => {
    if (!text.startsWith('{')) return []
    try { return [JSON.parse(text) as Line] } catch { return [] }
  })
}

const secrets: Record<string, string> = {}
/** A secret value the logs must not hold, with the parts of it that are secrets on their own. */
function remember (name: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new Error(`${name}: no value to look for`)
  secrets[name] = value
  const parts = value.split('.')
  // A JWT's signature; a refresh token's secret part; a signed cookie's signature.
  if (parts.length === 3) secrets[`${name} (signature)`] = parts[2] ?? ''
  if (parts.length === 2) secrets[`${name} (second part)`] = parts[1] ?? ''
}
for (const [id, secret] of Object.entries({ cli: DEMO.cli.secret, web: DEMO.web.secret, gateway: DEMO.gateway.secret, service: DEMO.service.secret })) {
  remember(`${id} client secret`, secret)
  remember(`${id} Basic credentials`, Buffer.from(`${encodeURIComponent(`demo-${id}`)}:${encodeURIComponent(secret)}`).toString('base64'))
}
remember('alice password', DEMO.passwords.alice)
remember('bob password', DEMO.passwords.bob)
const WRONG_PASSWORD = 'not-bobs-password-7Rk2'
remember('wrong password', WRONG_PASSWORD)

// --- The run ---------------------------------------------------------------------------------

// Password grant: right, then wrong.
const alice = await userSession(issuer, { scope: 'openid api:read offline_access' })
remember('password grant access token', alice.access_token)
remember('password grant refresh token', alice.refresh_token)
remember('password grant id_token', alice.id_token)
const wrong = await request<{ error?: string }>(issuer.tokenEndpoint, {
  method: 'POST',
  headers: { authorization: `Basic ${secrets['cli Basic credentials'] ?? ''}`, 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'password', username: 'bob', password: WRONG_PASSWORD }).toString()
})

// Authorization code flow with consent.
const started = await startAuthorization(as, 'web', { scope: 'openid offline_access api:read' })
const consentPage = await signIn(started)
const isConsent = isConsentPage(consentPage)
const callback = await decide(started.browser, consentPage, 'allow')
const code = new URL(callback.url).searchParams.get('code') ?? ''
remember('authorization code', code)
remember('code verifier', started.verifier)
remember('csrf form token', started.browser.form(consentPage).fields.csrf)
const web = await exchangeCode(as, started, callback)
remember('code flow access token', web.access_token)
remember('code flow refresh token', web.refresh_token)
remember('code flow id_token', web.id_token)
for (const [name, value] of started.browser.cookies) {
  remember(`cookie ${name}`, value)
  remember(`cookie ${name} (decoded)`, decodeURIComponent(value))
}
const webSid = String(decodeJwt(web.access_token).payload.sid)

// A refresh, then the used refresh token again.
const refreshed = await refresh(as, CLIENTS.web, web.refresh_token ?? '')
remember('refreshed access token', refreshed.access_token)
remember('refreshed refresh token', refreshed.refresh_token)
const reuse = await refusal(refresh(as, CLIENTS.web, web.refresh_token ?? ''))

// RFC 7009: bob's refresh token, revoked by its client.
const bob = await userSession(issuer, { username: 'bob', scope: 'openid api:read offline_access' })
remember('bob access token', bob.access_token)
remember('bob refresh token', bob.refresh_token)
remember('bob id_token', bob.id_token)
const revocation = await oauth.revocationRequest(as, CLIENTS.cli.client, CLIENTS.cli.auth, bob.refresh_token, insecure)

// Through the gateway: served, refused (no token), logged out, then refused (revoked).
const served = await request(`${gateway.url}/api/profile`, { headers: bearer(alice.access_token) })
const anonymous = await request(`${gateway.url}/api/profile`)
const logout = await request(`${gateway.url}/oauth2/logout`, { method: 'POST', headers: bearer(alice.access_token) })
const afterLogout = await request(`${gateway.url}/api/profile`, { headers: bearer(alice.access_token) })

const aliceJti = String(alice.claims.jti)

/** The lines of `event` that `service` logged with `fields` (a partial match on equal values). */
function find (service: Service, event: string, fields: Line = {}): Line[] {
  const since = service === issuer ? start.issuer : start.gateway
  return linesOf(service, since).filter((l) => l.event === event && Object.entries(fields).every(([k, v]) => l[k] === v))
}

// What the run must have logged (some lines are written after the answers): event, fields.
const expected: Array<[Service, string, Line]> = [
  [issuer, 'sign_in.succeeded', { username: 'alice', client_id: 'demo-cli', via: 'password_grant', sub: 'alice', sid: alice.sid, ip: '127.0.0.1' }],
  [issuer, 'token.issued', { grant_type: 'password', client_id: 'demo-cli', sub: 'alice', jti: aliceJti, sid: alice.sid }],
  [issuer, 'sign_in.failed', { username: 'bob', client_id: 'demo-cli', via: 'password_grant', reason: 'invalid_credentials', ip: '127.0.0.1' }],
  [issuer, 'sign_in.succeeded', { username: 'alice', client_id: 'demo-web', via: 'login_page', sid: webSid }],
  [issuer, 'consent.given', { client_id: 'demo-web', sub: 'alice', sid: webSid, scope: 'openid offline_access api:read' }],
  [issuer, 'token.issued', { grant_type: 'authorization_code', client_id: 'demo-web', jti: String(decodeJwt(web.access_token).payload.jti), sid: webSid }],
  [issuer, 'token.issued', { grant_type: 'refresh_token', client_id: 'demo-web', jti: String(decodeJwt(refreshed.access_token).payload.jti), sid: webSid }],
  [issuer, 'refresh_token.reused', { client_id: 'demo-web', sub: 'alice', sid: webSid, ip: '127.0.0.1' }],
  [issuer, 'token.revoked', { client_id: 'demo-cli', outcome: 'revoked', token_type: 'refresh_token', sub: 'bob', sid: bob.sid }],
  [issuer, 'session.ended', { how: 'gateway_logout', client_id: 'demo-gateway', sid: alice.sid, sub: 'alice' }],
  [gateway, 'token.refused', { reason: 'missing', route: 'api', status: 401, ip: '127.0.0.1' }],
  [gateway, 'logout.succeeded', { client_id: 'demo-cli', sub: 'alice', jti: aliceJti, sid: alice.sid, ended: true, notified: 1, failed: 0 }],
  [gateway, 'backchannel_logout.delivered', { uri: resourceServer.backchannelLogoutUri, status: 200, sid: alice.sid, sub: 'alice' }],
  [gateway, 'token.refused', { reason: 'revoked', route: 'api', client_id: 'demo-cli', sub: 'alice', jti: aliceJti, sid: alice.sid }]
]

t.test('the run did what it was meant to', async (t) => {
  t.equal(wrong.body.error, 'invalid_grant', 'wrong password refused')
  t.ok(isConsent, 'the consent page was shown')
  t.equal(reuse, 'invalid_grant', 'the reused refresh token was refused')
  t.equal(revocation.status, 200, 'revoked')
  t.equal(served.status, 200, 'served through the gateway')
  t.equal(anonymous.status, 401)
  t.equal(logout.status, 200, 'logged out through the gateway')
  t.equal(afterLogout.status, 401, 'then refused')
})

t.test('every act has its audit line, once, with its fields', async (t) => {
  await waitFor('every expected audit line', () => expected.every(([service, event, fields]) => find(service, event, fields).length > 0) ? true : undefined)
  for (const [service, event, fields] of expected) {
    const lines = find(service, event, fields)
    t.equal(lines.length, 1, `${service.name}: one ${event} ${JSON.stringify(fields)}`)
    t.equal(lines[0]?.level, 30, 'at info')
  }
  t.equal(find(gateway, 'token.refused').length, 2, 'the gateway refused two requests, and said so twice')
  t.equal(find(issuer, 'sign_in.failed').length, 1, 'one failed sign-in')
})

t.test('no secret, password, token, code, verifier or cookie in any service\'s output', async (t) => {
  const services = stack.services
  t.ok(services.length >= 3, services.map((s) => s.name).join(', '))
  t.ok(Object.keys(secrets).length >= 40, `${Object.keys(secrets).length} values looked for`)
  for (const service of services) {
    const output = service.output
    t.ok(output.length > 0, `${service.name} printed something`)
    for (const [name, value] of Object.entries(secrets)) {
      if (value.length < 12) throw new Error(`${name} is too short to look for`)
      const found = output.includes(value) || output.includes(encodeURIComponent(value))
      t.notOk(found, `${service.name}: no ${name}`, found ? { line: output.split('\n').find((l) => l.includes(value) || l.includes(encodeURIComponent(value))) } : {})
    }
  }
  t.ok(linesOf(issuer, 0).some((l) => l.msg === 'request completed'), 'control: the request lines are there too')
})
