/**
 * POST /oauth2/logout through the gateway, against a real issuer: the token and its session
 * are revoked here at once, the resource servers get their logout_token, a repeat is a 200,
 * other sessions keep working; expired or missing tokens are 401; an unreachable issuer 502.
 */
import t from 'tap'
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { MovableClock, passwordTokens, refresh } from '../../issuer/test/fixtures/flows.ts'
import { startLogoutReceiver } from '../../issuer/test/fixtures/logout-receiver.ts'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const receiver = await startLogoutReceiver(t)
const deadPort = await freePort()
const clock = new MovableClock()
const routes = `
routes:
  - { prefix: /api, upstreams: ['${upstream.url}'], audience: demo-api, backchannelLogoutUri: '${receiver.url}/api-rs' }
  - { prefix: /other, upstreams: ['${upstream.url}'], audience: other-api, backchannelLogoutUri: '${receiver.url}/other-rs' }
  - { prefix: /gone, upstreams: ['${upstream.url}'], backchannelLogoutUri: 'http://127.0.0.1:${deadPort}/rs', logoutAudience: gone-api }
`
const { app } = await startGateway(t, gatewayConfig(issuer.url, `client: { id: gateway, secret: ${SECRETS.gateway} }\nlogout: { timeout: 1 }\n${routes}`), { clock })
const jwks = createRemoteJWKSet(new URL(issuer.as.jwks_uri ?? ''))
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const logout = async (token?: string) => await app.inject({ method: 'POST', url: '/oauth2/logout', headers: token === undefined ? {} : bearer(token) })
const api = async (token: string): Promise<number> => (await app.inject({ url: '/api/x', headers: bearer(token) })).statusCode

t.test('logout: revoked at once, receivers told, other sessions untouched, repeat is 200', async (t) => {
  const session = await passwordTokens(issuer.as, 'alice', 'api:read offline_access')
  const sameSession = await refresh(issuer.as, session.refresh_token ?? '')
  const otherSession = await passwordTokens(issuer.as, 'alice', 'api:read')
  const { sid } = decodeJwt(session.access_token)
  t.equal(await api(session.access_token), 200, 'works before')

  const res = await logout(session.access_token)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.match(body, { revoked: true, session_ended: true, sid })
  const notified = [...body.notified].sort((a: { uri: string }, b: { uri: string }) => a.uri.localeCompare(b.uri))
  t.same(notified, [
    { uri: `${receiver.url}/api-rs`, ok: true, status: 200 },
    { uri: `${receiver.url}/other-rs`, ok: true, status: 200 },
    { uri: `http://127.0.0.1:${deadPort}/rs`, ok: false, status: null }
  ].sort((a, b) => a.uri.localeCompare(b.uri)), 'each receiver, the dead one not ok')

  const byPath = new Map(receiver.received.map((r) => [r.path, r.logoutToken]))
  for (const [path, audience] of [['/api-rs', 'demo-api'], ['/other-rs', 'other-api']] as const) {
    const { payload } = await jwtVerify(byPath.get(path) ?? '', jwks, { issuer: issuer.url, audience, typ: 'logout+jwt' })
    t.equal(payload.sid, sid, `${path}: a logout_token for ${audience} and this session`)
  }

  t.equal(await api(session.access_token), 401, 'the token is refused at once')
  const refused = await app.inject({ url: '/api/x', headers: bearer(sameSession.access_token) })
  t.equal(refused.statusCode, 401, 'another token of the same session too')
  t.match(refused.headers['www-authenticate'], /revoked/)
  t.equal(await api(otherSession.access_token), 200, 'another session of the same user keeps working')

  const again = await logout(session.access_token)
  t.equal(again.statusCode, 200, 'a repeat is a 200')
  t.match(again.json(), { revoked: true, session_ended: false, sid })
})

t.test('a token without a session (client_credentials): revoked, nobody to tell', async (t) => {
  const token = await serviceAccessToken(issuer, 'api:read')
  const res = await logout(token)
  t.equal(res.statusCode, 200)
  t.match(res.json(), { revoked: true, session_ended: false, sid: null, notified: [] })
  t.equal(await api(token), 401)
})

t.test('no token, a bad token, an expired token: 401', async (t) => {
  const none = await logout()
  t.equal(none.statusCode, 401)
  t.match(none.headers['www-authenticate'], /^Bearer/)
  t.equal((await logout('not-a-jwt')).statusCode, 401)
  const token = await serviceAccessToken(issuer, 'api:read')
  clock.advance(3600)
  const expired = await logout(token)
  clock.reset()
  t.equal(expired.statusCode, 401)
  t.match(expired.headers['www-authenticate'], /expired/)
  t.equal((await app.inject({ method: 'GET', url: '/oauth2/logout' })).statusCode, 404, 'GET is not the gateway\'s (no route here)')
})

t.test('issuer unreachable: 502 JSON, and the token is refused here all the same', async (t) => {
  const { app: cut } = await startGateway(t, gatewayConfig(issuer.url, `client: { id: gateway, secret: ${SECRETS.gateway} }\nlogout: { sessionEndpoint: 'http://127.0.0.1:${deadPort}/oauth2/session/end', timeout: 1 }\n${routes}`))
  const token = await serviceAccessToken(issuer, 'api:read')
  const res = await cut.inject({ method: 'POST', url: '/oauth2/logout', headers: bearer(token) })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { error: 'bad_gateway' })
  t.equal((await cut.inject({ url: '/api/x', headers: bearer(token) })).statusCode, 401)
})

t.test('wrong client secret at the issuer: 502', async (t) => {
  const { app: wrong } = await startGateway(t, gatewayConfig(issuer.url, `client: { id: gateway, secret: wrong-secret }\n${routes}`))
  const token = await serviceAccessToken(issuer, 'api:read')
  const res = await wrong.inject({ method: 'POST', url: '/oauth2/logout', headers: bearer(token) })
  t.equal(res.statusCode, 502)
  t.match(res.json().error_description, /HTTP 401/)
})
