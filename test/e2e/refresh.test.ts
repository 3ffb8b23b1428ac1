/**
 * Seed: "Validate token locally in API Gateway" with an access token and a refresh token, steps
 * 1-16: the code flow returns both (1-4), the gateway validates the access token and forwards
 * (5-9), the client refreshes (10-12), the gateway validates the new access token and forwards
 * (13-16). Then what a refresh token's rotation means to the gateway: the used refresh token is
 * dead, and presenting it again revokes the family, whose access tokens the gateway refuses.
 *
 * Real processes (issuer, gateway, demo resource server) sharing a real redis-server.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { bearer, decodeJwt, request, startStack, type Echo, type GatewayProcess } from '../fixtures/processes.ts'
import { CLIENTS, codeFlow, discover, refresh, refusal } from '../fixtures/oauth.ts'

const stack = await startStack(t, { redis: true })
const gateway = stack.gateways[0] as GatewayProcess
const as = await discover(stack.issuer)

const api = async (token: string): Promise<{ status: number, body: Echo, challenge: string | null }> => {
  const res = await request<Echo>(`${gateway.url}/api/profile`, { headers: bearer(token) })
  return { status: res.status, body: res.body, challenge: res.headers.get('www-authenticate') }
}

t.test('Validate token locally in API Gateway: access token, refresh, the new access token', async (t) => {
  // 1-4. Authorization code flow: an access token and a refresh token.
  const first = await codeFlow(as, 'web', { scope: 'openid offline_access api:read' })
  t.type(first.refresh_token, 'string', '4. Return Access Token and Refresh Token')
  const refreshToken = first.refresh_token ?? ''

  // 5-9. The protected resource with that access token.
  const before = await api(first.access_token)
  t.equal(before.status, 200, '9. Return Data')
  t.equal(before.body.headers['x-auth-subject'], 'alice')

  // 10-12. A new access token for the refresh token (rotation: a new refresh token too).
  const second = await refresh(as, CLIENTS.web, refreshToken)
  t.not(second.access_token, first.access_token, '12. Return New Access Token')
  t.type(second.refresh_token, 'string')
  t.not(second.refresh_token, refreshToken, 'the refresh token rotated')
  const oldClaims = decodeJwt(first.access_token).payload
  const newClaims = decodeJwt(second.access_token).payload
  t.not(newClaims.jti, oldClaims.jti)
  t.equal(newClaims.sid, oldClaims.sid, 'the same session')
  t.equal(newClaims.scope, oldClaims.scope, 'the same scopes')
  t.ok(Number(newClaims.exp) >= Number(oldClaims.exp), 'a fresh expiry')

  // 13-16. The gateway validates the new access token and forwards.
  const after = await api(second.access_token)
  t.equal(after.status, 200, '16. Return Data')
  t.equal(after.body.headers['x-auth-subject'], 'alice')
  t.equal(after.body.headers['x-auth-scope'], 'openid offline_access api:read')

  // The rotated refresh token is one-use; presenting it again is taken as theft (RFC 9700 4.14.2).
  t.equal(await refusal(refresh(as, CLIENTS.web, refreshToken)), 'invalid_grant', 'the old refresh token is refused')
  t.equal(await refusal(refresh(as, CLIENTS.web, second.refresh_token ?? '')), 'invalid_grant', 'and the reuse revoked the new one too')
  const revoked = await api(second.access_token)
  t.equal(revoked.status, 401, 'the family\'s access tokens are refused by the gateway')
  t.match(revoked.challenge, /error="invalid_token"/)
})

t.test('a refresh narrows the scope when asked, and the gateway enforces the narrower one', async (t) => {
  const tokens = await codeFlow(as, 'web', { scope: 'offline_access api:read api:write' })
  t.equal((await request(`${gateway.url}/api/items`, { method: 'POST', headers: bearer(tokens.access_token) })).status, 200, 'api:write: POST passes')
  const { client, auth } = CLIENTS.web
  const narrowed = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token ?? '', {
    [oauth.allowInsecureRequests]: true,
    additionalParameters: { scope: 'api:read' }
  }))
  t.equal(narrowed.scope, 'api:read')
  t.equal((await api(narrowed.access_token)).status, 200, 'GET with api:read')
  const post = await request(`${gateway.url}/api/items`, { method: 'POST', headers: bearer(narrowed.access_token) })
  t.equal(post.status, 403, 'POST with the narrowed token: insufficient_scope')
  t.match(post.headers.get('www-authenticate'), /error="insufficient_scope"/)
  // RFC 6749 6: a refresh may ask for any scope of the original grant, and nothing beyond it.
  const restored = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, narrowed.refresh_token ?? '', {
    [oauth.allowInsecureRequests]: true,
    additionalParameters: { scope: 'api:read api:write' }
  }))
  t.equal(restored.scope, 'api:read api:write', 'the original grant\'s scopes can be asked for again')
  const wider = await oauth.refreshTokenGrantRequest(as, client, auth, restored.refresh_token ?? '', {
    [oauth.allowInsecureRequests]: true,
    additionalParameters: { scope: 'api:read profile' }
  })
  t.equal(await refusal(oauth.processRefreshTokenResponse(as, client, wider)), 'invalid_scope', 'a scope the user never granted is refused, though the client may have it')
})
