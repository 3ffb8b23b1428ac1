/**
 * Auth on routes, against a real issuer: required, optional, none; scopes per method; the
 * RFC 6750 answers; identity headers to the upstream and caller-sent copies stripped.
 */
import t from 'tap'
import { MovableClock } from '../../issuer/test/fixtures/flows.ts'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer, userAccessToken } from './fixtures/issuer.ts'
import { startUpstream, type Echo } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const clock = new MovableClock()
const { app } = await startGateway(t, gatewayConfig(issuer.url, `
routes:
  - prefix: /api
    upstreams: ['${upstream.url}']
    audience: demo-api
    scopes: { GET: [api:read], HEAD: [api:read], '*': [api:write] }
  - { prefix: /other, upstreams: ['${upstream.url}'], audience: other-api }
  - { prefix: /opt, upstreams: ['${upstream.url}'], auth: optional }
  - { prefix: /open, upstreams: ['${upstream.url}'], auth: none }
  - { prefix: /asked, upstreams: ['${upstream.url}'], validation: introspect, audience: demo-api, scopes: { '*': [api:read] } }
client: { id: gateway, secret: ${SECRETS.gateway} }
`), { clock })
const read = await serviceAccessToken(issuer, 'api:read')
const write = await serviceAccessToken(issuer, 'api:write')
const alice = await userAccessToken(issuer, 'alice', 'api:read')
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

t.test('required: no token, a bad token, a wrong audience, an expired token: 401', async (t) => {
  const none = await app.inject('/api/x')
  t.equal(none.statusCode, 401)
  t.match(none.headers['www-authenticate'], /^Bearer realm="gatehouse"/)
  t.match(none.json(), { error: 'invalid_token' })
  for (const [what, headers] of [['garbage', bearer('abc.def.ghi')], ['another scheme', { authorization: `Basic ${read}` }], ['wrong audience', bearer(read)]] as const) {
    const url = what === 'wrong audience' ? '/other/x' : '/api/x'
    const res = await app.inject({ url, headers })
    t.equal(res.statusCode, 401, `${what}: 401`)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/, `${what}: invalid_token`)
  }
  clock.advance(3600)
  const expired = await app.inject({ url: '/api/x', headers: bearer(read) })
  clock.reset()
  t.equal(expired.statusCode, 401)
  t.match(expired.headers['www-authenticate'], /error="invalid_token", error_description="the access token has expired"/)
  t.equal(upstream.seen.length, 0, 'nothing reached the upstream')
})

t.test('scopes per method: 403 insufficient_scope names the scope', async (t) => {
  t.equal((await app.inject({ url: '/api/x', headers: bearer(read) })).statusCode, 200, 'GET with api:read')
  t.equal((await app.inject({ method: 'HEAD', url: '/api/x', headers: bearer(read) })).statusCode, 200, 'HEAD with api:read')
  const post = await app.inject({ method: 'POST', url: '/api/x', headers: bearer(read), payload: { a: 1 } })
  t.equal(post.statusCode, 403)
  t.match(post.headers['www-authenticate'], /error="insufficient_scope".*scope="api:write"/)
  t.match(post.json(), { error: 'insufficient_scope' })
  t.equal((await app.inject({ method: 'DELETE', url: '/api/x', headers: bearer(read) })).statusCode, 403, 'DELETE falls back to *')
  t.equal((await app.inject({ method: 'POST', url: '/api/x', headers: bearer(write), payload: { a: 1 } })).statusCode, 200, 'POST with api:write')
  t.equal((await app.inject({ url: '/api/x', headers: bearer(write) })).statusCode, 403, 'GET with only api:write')
})

t.test('identity headers: set from the token, caller copies stripped', async (t) => {
  const spoof = { 'x-auth-subject': 'admin', 'X-Auth-Client-Id': 'root', 'x-auth-scope': 'api:write admin' }
  const res = await app.inject({ url: '/api/x', headers: { ...bearer(alice), ...spoof } })
  const echo = res.json<Echo>()
  t.equal(echo.headers['x-auth-subject'], 'alice')
  t.equal(echo.headers['x-auth-client-id'], 'cli')
  t.equal(echo.headers['x-auth-scope'], 'api:read')
  t.equal(echo.headers.authorization, undefined, 'the token itself is not forwarded by default')

  const open = (await app.inject({ url: '/open/x', headers: { ...bearer(alice), ...spoof } })).json<Echo>()
  for (const name of Object.keys(spoof)) t.equal(open.headers[name.toLowerCase()], undefined, `auth none: ${name} stripped`)
  t.equal(open.headers.authorization, undefined)
})

t.test('optional: no token passes without identity; a token is checked', async (t) => {
  const anonymous = await app.inject({ url: '/opt/x', headers: { 'x-auth-subject': 'admin' } })
  t.equal(anonymous.statusCode, 200)
  t.equal(anonymous.json<Echo>().headers['x-auth-subject'], undefined)
  const known = await app.inject({ url: '/opt/x', headers: bearer(alice) })
  t.equal(known.json<Echo>().headers['x-auth-subject'], 'alice')
  t.equal((await app.inject({ url: '/opt/x', headers: bearer('nope') })).statusCode, 401, 'a bad token is still refused')
})

t.test('forwardAuthorization passes the token on to routes that check one', async (t) => {
  const { app: forwarding } = await startGateway(t, gatewayConfig(issuer.url, `
identityHeaders: { forwardAuthorization: true, subject: X-User }
routes:
  - { prefix: /api, upstreams: ['${upstream.url}'] }
  - { prefix: /open, upstreams: ['${upstream.url}'], auth: none }
`))
  const echo = (await forwarding.inject({ url: '/api/x', headers: { ...bearer(alice), 'x-user': 'mallory' } })).json<Echo>()
  t.equal(echo.headers.authorization, `Bearer ${alice}`)
  t.equal(echo.headers['x-user'], 'alice', 'a configured header name')
  t.equal((await forwarding.inject({ url: '/open/x', headers: bearer(alice) })).json<Echo>().headers.authorization, undefined, 'never to auth: none')
})

t.test('validation: introspect asks the issuer (RFC 7662)', async (t) => {
  const res = await app.inject({ url: '/asked/x', headers: bearer(alice) })
  t.equal(res.statusCode, 200)
  t.equal(res.json<Echo>().headers['x-auth-subject'], 'alice')
  t.equal((await app.inject({ url: '/asked/x', headers: bearer('opaque-garbage') })).statusCode, 401)
  t.equal((await app.inject({ url: '/asked/x', headers: bearer(write) })).statusCode, 403, 'scopes still apply')
})

t.test('a long path is routed (no router parameter limit)', async (t) => {
  const long = `/open/${'x'.repeat(2000)}`
  const res = await app.inject(long)
  t.equal(res.statusCode, 200)
  t.equal(res.json<Echo>().path, `/${'x'.repeat(2000)}`)
})
