/**
 * Seed: "Logout scenario". The user agent asks the gateway to log out (1); the gateway has the
 * authorization server revoke the access token (2-3) and tells the resource server to revoke the
 * session (4-5, an OIDC Back-Channel Logout token it verifies); the answer is "Logout
 * Successful" (6). Then the session's tokens are refused by both gateway instances sharing the
 * Redis, its refresh token is dead, the user's SSO session at the issuer is over, and the
 * user's other session is untouched.
 *
 * Also the seed's other door: `/oauth2/logout` at the issuer itself (OIDC RP-Initiated Logout),
 * which the gateways enforce the same way.
 *
 * Real processes: redis-server, the issuer, the demo resource server, two gateways.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { bearer, request, startStack, waitFor, type GatewayProcess } from '../fixtures/processes.ts'
import { CLIENTS, codeFlow, discover, insecure, introspect, refresh, startAuthorization, refusal } from '../fixtures/oauth.ts'

const stack = await startStack(t, { redis: true, gateways: [{}, {}] })
const { issuer, resourceServer } = stack
const [a, b] = stack.gateways as [GatewayProcess, GatewayProcess]
const as = await discover(issuer)

const status = async (gateway: GatewayProcess, token: string): Promise<number> =>
  (await request(`${gateway.url}/api/me`, { headers: bearer(token) })).status

/** How long a revocation may take to reach another gateway (docs/product.md: ms; bound 1 s). */
const BOUND_MS = 1000

interface LogoutAnswer { revoked: boolean, session_ended: boolean, sid: string | null, notified: Array<{ uri: string, ok: boolean, status?: number }> }

t.test('Logout scenario: through the gateway, enforced by both gateways and the resource server', async (t) => {
  const session = await codeFlow(as, 'web', { scope: 'openid offline_access api:read' })
  const sid = String(oauth.getValidatedIdTokenClaims(session)?.sid)
  const other = await codeFlow(as, 'web', { scope: 'openid api:read' })
  t.not(oauth.getValidatedIdTokenClaims(other)?.sid, sid, 'alice\'s second session (another browser)')
  for (const gateway of [a, b]) {
    t.equal(await status(gateway, session.access_token), 200, `${gateway.name} serves the session before the logout`)
  }

  // 1-6.
  const res = await request<LogoutAnswer>(`${a.url}/oauth2/logout`, { method: 'POST', headers: bearer(session.access_token) })
  t.equal(res.status, 200, '6. Logout Successful')
  t.equal(res.body.revoked, true, '3. Access Token Revoked')
  t.equal(res.body.session_ended, true, 'and the session ended at the issuer')
  t.equal(res.body.sid, sid)
  t.same(res.body.notified, [{ uri: resourceServer.backchannelLogoutUri, ok: true, status: 200 }], '5. Session Revoked: the resource server took the logout token')

  // The resource server verified the logout token and lists the session.
  const sessions = await resourceServer.loggedOutSessions()
  t.ok(sessions.some((s) => s.sid === sid && s.sub === 'alice'), 'the resource server revoked the session (back-channel logout received and verified)')

  // The issuer: the access token is inactive, the refresh token dead, the SSO session over.
  t.equal((await introspect(as, CLIENTS.web, session.access_token)).active, false, 'introspection: the access token is inactive')
  t.equal(await refusal(refresh(as, CLIENTS.web, session.refresh_token ?? '')), 'invalid_grant', 'the session\'s refresh token is refused')
  const again = await startAuthorization(as, 'web', {}, session.started.browser)
  t.match(again.page.html, /name="password"/, 'the browser\'s SSO session is over: the login page again')

  // Both gateways.
  const refused = await request(`${a.url}/api/me`, { headers: bearer(session.access_token) })
  t.equal(refused.status, 401, 'gateway A refuses the token')
  t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/)
  const started = Date.now()
  await waitFor('gateway B to refuse the token', async () => await status(b, session.access_token) === 401 ? true : undefined, BOUND_MS, 5)
  t.pass(`gateway B refuses it too (${Date.now() - started} ms after A's answer, bound ${BOUND_MS} ms)`)
  for (const gateway of [a, b]) {
    t.equal(await status(gateway, other.access_token), 200, `${gateway.name}: the other session keeps working`)
  }

  const twice = await request<LogoutAnswer>(`${b.url}/oauth2/logout`, { method: 'POST', headers: bearer(session.access_token) })
  t.equal(twice.status, 200, 'a second logout (on B) is a 200 too')
  const none = await request(`${a.url}/oauth2/logout`, { method: 'POST' })
  t.equal(none.status, 401, 'no token: 401')
  t.match(none.headers.get('www-authenticate'), /^Bearer /)
})

t.test('Logout scenario: /oauth2/logout at the issuer (RP-Initiated Logout), enforced by both gateways', async (t) => {
  const session = await codeFlow(as, 'web', { scope: 'openid api:read' })
  const { browser } = session.started
  t.equal(await status(a, session.access_token), 200)
  t.equal(await status(b, session.access_token), 200)

  const end = new URL(as.end_session_endpoint ?? '')
  t.equal(end.pathname, '/oauth2/logout')
  end.searchParams.set('id_token_hint', session.id_token ?? '')
  end.searchParams.set('post_logout_redirect_uri', 'http://127.0.0.1:3000/')
  end.searchParams.set('state', 'bye-123')
  const page = await browser.request(end.toString())
  t.equal(page.status, 302)
  t.equal(page.url, 'http://127.0.0.1:3000/?state=bye-123', 'back to the registered post-logout URI, with the state')

  for (const gateway of [a, b]) {
    await waitFor(`${gateway.name} to refuse the session's token`, async () => await status(gateway, session.access_token) === 401 ? true : undefined, BOUND_MS, 5)
    t.pass(`${gateway.name} refuses the session's access token`)
  }
  const { client } = CLIENTS.web
  const userinfo = await oauth.userInfoRequest(as, client, session.access_token, insecure)
  t.equal(userinfo.status, 401, 'the issuer\'s userinfo refuses it too')

  const unregistered = new URL(as.end_session_endpoint ?? '')
  unregistered.searchParams.set('post_logout_redirect_uri', 'https://evil.example/')
  const signedOut = await browser.request(unregistered.toString())
  t.equal(signedOut.status, 200, 'an unregistered post-logout URI: the issuer\'s own signed-out page, never a redirect')
  t.equal(browser.lastExternalRedirect, 'http://127.0.0.1:3000/?state=bye-123', 'the only redirect out was the registered one')
  t.notMatch(signedOut.html, /evil\.example/)
})
