/**
 * The gateway's edge, on the wire against real processes: every kind of bad token is a 401
 * with a Bearer challenge, a missing scope a 403, identity and forwarding headers sent by the
 * caller never reach the upstream, no spelling of a path reaches /api without a token, and no
 * input is ever answered with a 500.
 *
 * Forged tokens are signed with node:crypto, some with the issuer's real private key (read
 * from its embedded key store in the test directory), so that only the claim under test is wrong.
 */
import t from 'tap'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import {
  accessClaims, bearer, decodeJwt, DEMO, rawRequest, request, serviceToken, signJws, sleep, startStack, tokenRequest, userSession,
  type Echo, type GatewayProcess, type RawReply
} from './fixtures/processes.ts'

/** The expiring token's client: access tokens live 1 s. */
const SHORT = { id: 'demo-short', secret: 'demo-short-lived-secret' }
const CLOCK_TOLERANCE_S = 1

const stack = await startStack(t, {
  issuer: {
    configure: (config) => {
      config.clients.push({ clientId: SHORT.id, secret: SHORT.secret, grants: ['client_credentials'], scopes: ['api:read', 'api:write'], accessTokenTtl: 1, redirectUris: [], postLogoutRedirectUris: [], webOrigins: [], consentRequired: false, revokesAnyToken: false })
    }
  },
  gateways: [{ configure: (config) => { config.auth.clockTolerance = CLOCK_TOLERANCE_S } }]
})
const { issuer } = stack
const gateway = stack.gateways[0] as GatewayProcess
t.comment(`started (ms): ${JSON.stringify(stack.timings)}`)
const API = `${gateway.url}/api/items`

/** Every answer of the file, to check that none is a 500. */
const statuses: Array<{ what: string, status: number }> = []
const get = async (what: string, headers: Record<string, string> = {}, init: RequestInit = {}) => {
  const res = await request<{ error?: string }>(API, { headers, ...init })
  statuses.push({ what, status: res.status })
  return res
}

const [signingKey] = issuer.signingKeys()
if (signingKey === undefined) throw new Error('no signing key in the embedded store')
const realKey = { jwk: signingKey.privateJwk }
const realHeader = { alg: signingKey.alg, typ: 'at+jwt', kid: signingKey.kid }
const forge = (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = realHeader, key: Parameters<typeof signJws>[2] = realKey, ttl = 300): string =>
  signJws(header, accessClaims(issuer.url, overrides, ttl), key)

t.test('the forged control token passes (so each refusal below is for its one defect)', async (t) => {
  t.equal((await get('control', bearer(forge()))).status, 200)
})

t.test('bad tokens: 401, WWW-Authenticate: Bearer ... error="invalid_token"', async (t) => {
  const valid = await serviceToken(issuer)
  const [h = '', p = '', s = ''] = valid.split('.')
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const otherJwk = other.privateKey.export({ format: 'jwk' })
  const publicJwk = signingKey.publicJwk
  const cases: Record<string, string> = {
    // Malformed
    'scheme only': 'Bearer',
    'scheme and space': 'Bearer ',
    'not a JWT': 'Bearer not-a-jwt',
    'three dots': 'Bearer ...',
    'garbage segments': 'Bearer a.b.c',
    'two segments': `Bearer ${h}.${p}`,
    'four segments': `Bearer ${valid}.x`,
    'JWE-shaped (five segments)': `Bearer ${h}.x.y.z.w`,
    'header not JSON': `Bearer ${Buffer.from('{not json').toString('base64url')}.${p}.${s}`,
    'header is an array': `Bearer ${Buffer.from('[1]').toString('base64url')}.${p}.${s}`,
    'payload not JSON': `Bearer ${signJws(realHeader, 'not json', realKey)}`,
    'payload is a string': `Bearer ${signJws(realHeader, '"alice"', realKey)}`,
    'two tokens': `Bearer ${valid} ${valid}`,
    'stray character': `Bearer ${valid}!`,
    'Basic scheme': `Basic ${Buffer.from('demo-service:demo-service-secret').toString('base64')}`,
    'token without scheme': valid,
    'too long (> auth.maxTokenLength)': `Bearer ${valid}${'A'.repeat(8200)}`,
    // Expired, not yet valid, from the future
    'expired an hour ago (real key)': `Bearer ${forge({ exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 3900 })}`,
    'nbf in an hour (real key)': `Bearer ${forge({ nbf: Math.floor(Date.now() / 1000) + 3600 })}`,
    'iat in an hour (real key)': `Bearer ${forge({ iat: Math.floor(Date.now() / 1000) + 3600 })}`,
    'exp not a number (real key)': `Bearer ${forge({ exp: 'tomorrow' })}`,
    // Signatures
    'signature of another token': `Bearer ${h}.${p}.${(forge().split('.')[2] ?? '')}`,
    'signature bytes flipped': `Bearer ${h}.${p}.${s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`}`,
    'signature removed': `Bearer ${h}.${p}.`,
    'payload changed (scope widened)': `Bearer ${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(valid).payload, scope: 'api:read api:write admin' })).toString('base64url')}.${s}`,
    'signed by another key, same kid': `Bearer ${forge({}, realHeader, { jwk: otherJwk })}`,
    'unknown kid': `Bearer ${forge({}, { ...realHeader, kid: 'not-a-published-kid' }, { jwk: otherJwk })}`,
    'attacker key embedded in the header (jwk)': `Bearer ${forge({}, { alg: 'ES256', typ: 'at+jwt', jwk: other.publicKey.export({ format: 'jwk' }) }, { jwk: otherJwk })}`,
    'attacker JWKS URL in the header (jku)': `Bearer ${forge({}, { ...realHeader, jku: 'http://127.0.0.1:1/jwks.json', kid: 'attacker' }, { jwk: otherJwk })}`,
    // Algorithms
    'alg none': `Bearer ${forge({}, { alg: 'none', typ: 'at+jwt', kid: signingKey.kid }, null)}`,
    'alg None': `Bearer ${forge({}, { alg: 'None', typ: 'at+jwt', kid: signingKey.kid }, null)}`,
    'alg NONE with a signature': `Bearer ${forge({}, { alg: 'NONE', typ: 'at+jwt' }, null)}AAAA`,
    'HS256, the public JWK as secret': `Bearer ${forge({}, { alg: 'HS256', typ: 'at+jwt', kid: signingKey.kid }, { secret: JSON.stringify(publicJwk) })}`,
    'HS256, the public key PEM as secret': `Bearer ${forge({}, { alg: 'HS256', typ: 'at+jwt', kid: signingKey.kid }, { secret: other.publicKey.export({ format: 'pem', type: 'spki' }) })}`,
    'HS256, the x coordinate as secret': `Bearer ${forge({}, { alg: 'HS256', typ: 'at+jwt', kid: signingKey.kid }, { secret: Buffer.from(String(publicJwk.x), 'base64url') })}`,
    'RS256 header on an EC key': `Bearer ${forge({}, { ...realHeader, alg: 'RS256' })}`,
    'ES384 header on a P-256 key': `Bearer ${forge({}, { ...realHeader, alg: 'ES384' })}`,
    // Type and claims (all signed with the real key)
    'typ JWT (an id_token, say)': `Bearer ${forge({}, { ...realHeader, typ: 'JWT' })}`,
    'no typ': `Bearer ${forge({}, { alg: realHeader.alg, kid: realHeader.kid })}`,
    'crit header': `Bearer ${forge({}, { ...realHeader, crit: ['exp'] })}`,
    'another issuer': `Bearer ${forge({ iss: 'http://127.0.0.1:1' })}`,
    'issuer with a trailing slash': `Bearer ${forge({ iss: `${issuer.url}/` })}`,
    'wrong audience (real key)': `Bearer ${forge({ aud: 'another-api' })}`,
    'audience list without ours': `Bearer ${forge({ aud: ['a', 'b'] })}`,
    'no audience': `Bearer ${forge({ aud: undefined })}`,
    'no sub': `Bearer ${forge({ sub: undefined })}`,
    'no jti': `Bearer ${forge({ jti: undefined })}`,
    'no client_id': `Bearer ${forge({ client_id: undefined })}`,
    'sid not a string': `Bearer ${forge({ sid: 42 })}`,
    'scope not a string': `Bearer ${forge({ scope: ['api:read'] })}`
  }
  for (const [what, authorization] of Object.entries(cases)) {
    const res = await get(what, { authorization })
    t.equal(res.status, 401, `${what}: 401`)
    t.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]*", error="invalid_token", error_description="[^"]+"$/, `${what}: challenge`)
    t.equal(res.body.error, 'invalid_token', `${what}: body`)
    t.equal(res.headers.get('cache-control'), 'no-store', `${what}: no-store`)
  }
  t.equal((await get('lower-case scheme', { authorization: `bearer ${valid}` })).status, 200, 'the scheme is case-insensitive (RFC 9110 11.1): bearer works')
})

t.test('real tokens the issuer issued, refused', async (t) => {
  t.test('wrong audience: a user token without api scopes', async (t) => {
    const session = await userSession(issuer, { scope: 'openid profile' })
    t.not(decodeJwt(session.access_token).payload.aud, 'demo-api', `aud ${String(decodeJwt(session.access_token).payload.aud)}`)
    const res = await get('real token, wrong audience', bearer(session.access_token))
    t.equal(res.status, 401)
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
  })

  t.test('revoked (logged out)', async (t) => {
    const session = await userSession(issuer)
    t.equal((await get('before logout', bearer(session.access_token))).status, 200, 'accepted before')
    t.equal((await request(`${gateway.url}/oauth2/logout`, { method: 'POST', headers: bearer(session.access_token) })).status, 200, 'logout')
    const res = await get('revoked', bearer(session.access_token))
    t.equal(res.status, 401)
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
    t.match(res.headers.get('www-authenticate'), /revoked/)
  })

  t.test('expired: a 1 s token, accepted, then refused once exp (+ clock tolerance) has passed', async (t) => {
    const token = (await tokenRequest(issuer, SHORT, { grant_type: 'client_credentials', scope: 'api:read' })).access_token
    const exp = Number(decodeJwt(token).payload.exp)
    t.equal((await get('short token, fresh', bearer(token))).status, 200, 'accepted while fresh (and cached)')
    await sleep(Math.max(0, (exp + CLOCK_TOLERANCE_S) * 1000 - Date.now() + 100))
    const res = await get('short token, expired', bearer(token))
    t.equal(res.status, 401, 'refused: the verified-token cache is never used past exp')
    t.match(res.headers.get('www-authenticate'), /error="invalid_token", error_description="the access token has expired"/)
  })
})

t.test('missing scope: 403 insufficient_scope naming the scope', async (t) => {
  const readOnly = await serviceToken(issuer, { scope: 'api:read' })
  t.equal((await get('read-only GET', bearer(readOnly))).status, 200, 'GET with api:read')
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const res = await get(`read-only ${method}`, bearer(readOnly), { method })
    t.equal(res.status, 403, `${method}: 403`)
    t.match(res.headers.get('www-authenticate'), /^Bearer realm="[^"]*", error="insufficient_scope", error_description="[^"]+", scope="api:write"$/, `${method}: challenge names api:write`)
    t.equal(res.body.error, 'insufficient_scope')
  }
  const writeOnly = await serviceToken(issuer, { scope: 'api:write' })
  const res = await get('write-only GET', bearer(writeOnly))
  t.equal(res.status, 403, 'GET with api:write only: 403')
  t.match(res.headers.get('www-authenticate'), /scope="api:read"/)
  t.equal((await get('write-only POST', bearer(writeOnly), { method: 'POST', body: '{}' })).status, 200, 'POST with api:write')
})

// docs/product.md (The gateway, errors), issue 4 (7): a missing token too gets
// error="invalid_token" in the challenge (RFC 6750 3.1 says SHOULD NOT; the product contract wins).
t.test('missing token: 401, WWW-Authenticate: Bearer ... error="invalid_token"', async (t) => {
  for (const headers of [{}, { authorization: '' }] as Array<Record<string, string>>) {
    const res = await get('no token', headers)
    t.equal(res.status, 401)
    t.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]*", error="invalid_token", error_description="[^"]+"$/, `WWW-Authenticate: ${res.headers.get('www-authenticate') ?? ''}`)
    t.equal(res.body.error, 'invalid_token')
  }
})

t.test('header spoofing: identity and forwarding headers are the gateway\'s alone', async (t) => {
  const session = await userSession(issuer, { scope: 'openid api:read' })
  const spoofed = {
    'X-Auth-Subject': ['admin', 'root'],
    'x-auth-client-id': 'evil-client',
    'X-AUTH-SCOPE': 'api:write admin',
    'X-Forwarded-For': '203.0.113.66',
    'X-Forwarded-Host': 'evil.example',
    'X-Forwarded-Proto': 'https',
    Forwarded: 'for=203.0.113.66;host=evil.example;proto=https',
    'X-Real-IP': '203.0.113.66',
    'Proxy-Authorization': 'Basic ZXZpbDpldmls',
    // Hop-by-hop tricks: naming our own identity header must not remove the one we set.
    Connection: 'close, X-Auth-Subject, x-auth-scope'
  }
  const authed = await rawRequest(gateway.port, 'GET', '/api/items', { ...spoofed, Authorization: `Bearer ${session.access_token}` })
  statuses.push({ what: 'spoofed headers with a token', status: authed.status })
  t.equal(authed.status, 200)
  const echo = JSON.parse(authed.body) as Echo
  t.equal(echo.headers['x-auth-subject'], 'alice', 'subject: the token\'s, not the caller\'s')
  t.equal(echo.headers['x-auth-client-id'], DEMO.cli.id, 'client id: the token\'s')
  t.equal(echo.headers['x-auth-scope'], 'openid api:read', 'scope: the token\'s')
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For: the peer only (trustProxy off)')
  t.equal(echo.headers['x-forwarded-host'], `127.0.0.1:${gateway.port}`, 'X-Forwarded-Host: the Host the gateway was asked for')
  t.equal(echo.headers['x-forwarded-proto'], 'http', 'X-Forwarded-Proto: what the gateway saw')
  t.notOk('forwarded' in echo.headers, 'Forwarded dropped')
  t.notOk('x-real-ip' in echo.headers, 'X-Real-IP dropped')
  t.notOk('proxy-authorization' in echo.headers, 'Proxy-Authorization (hop-by-hop) dropped')
  t.notOk('authorization' in echo.headers, 'the token is not forwarded (identityHeaders.forwardAuthorization: false)')
  t.match(echo.headers['x-request-id'], /\S/, 'a request id')

  const open = await rawRequest(gateway.port, 'GET', '/public/items', { ...spoofed, Authorization: `Bearer ${session.access_token}` })
  statuses.push({ what: 'spoofed headers on /public', status: open.status })
  t.equal(open.status, 200)
  const openEcho = JSON.parse(open.body) as Echo
  for (const name of ['x-auth-subject', 'x-auth-client-id', 'x-auth-scope', 'authorization', 'forwarded', 'x-real-ip']) {
    t.notOk(name in openEcho.headers, `/public (auth: none): ${name} not passed`)
  }
  t.equal(openEcho.headers['x-forwarded-for'], '127.0.0.1', '/public: X-Forwarded-For replaced')

  const anonymous = await rawRequest(gateway.port, 'GET', '/public/items', { 'x-auth-subject': 'admin', 'X-Auth-Client-Id': 'evil' })
  const anonymousEcho = JSON.parse(anonymous.body) as Echo
  t.notOk('x-auth-subject' in anonymousEcho.headers || 'x-auth-client-id' in anonymousEcho.headers, 'no token: the caller\'s identity headers are still removed')
})

// Not "the same header" for HTTP, but the same one for every CGI/WSGI/Rack upstream (both are
// HTTP_X_AUTH_SUBJECT) and for nginx with underscores_in_headers on: a caller's copy that such
// an upstream reads as ours (Django's request.META, PHP's $_SERVER, Rack's env).
t.test('identity headers spelled with underscores do not reach the upstream', async (t) => {
  const session = await userSession(issuer, { scope: 'openid api:read' })
  const res = await rawRequest(gateway.port, 'GET', '/api/items', { X_Auth_Subject: 'admin', x_auth_scope: 'api:write', Authorization: `Bearer ${session.access_token}` })
  const echo = JSON.parse(res.body) as Echo
  t.notOk('x_auth_subject' in echo.headers, `x_auth_subject: ${String(echo.headers.x_auth_subject)}`)
  t.notOk('x_auth_scope' in echo.headers, `x_auth_scope: ${String(echo.headers.x_auth_scope)}`)
})

t.test('path tricks never reach /api without a token', async (t) => {
  const targets = [
    '/public/../api/x', '/public/./../api/x', '/public/x/../../api/x', '/./api/x', '/../api/x', '/public/..',
    '/public/%2e%2e/api/x', '/public/%2E%2E/api/x', '/public/.%2e/api/x', '/public/%2e./api/x', '/%2e%2e/api/x',
    '/public%2f..%2fapi/x', '/public%2F..%2Fapi/x', '/public/..%2fapi/x', '/public/%2e%2e%2fapi/x',
    '//api/x', '///api/x', '/public//../api/x', '/public/x//api/x',
    '/public\\..\\api/x', '/public/..\\api/x', '/public\\../api/x', '/public/..%5capi/x', '/public%5c..%5capi/x', '/public/%2e%2e%5capi/x',
    '/public/%252e%252e/api/x', '/public/%252e%252e%252fapi/x', '/public/..%252fapi/x',
    '/public/%c0%ae%c0%ae/api/x', '/public/%e0%80%ae%e0%80%ae/api/x', '/public/..%00/api/x', '/public/%00/../api/x', '/public/%ff/api',
    '/public/%u002e%u002e/api/x', '/public/%/api', '/public/%zz/api', '/public/%2/api',
    '/public/..;/api/x', '/public;/../api/x', '/api;/x', '/api%3b/x', '/api%23/x', '/api.json', '/api~/x',
    '/API/x', '/Api/x', '/aPi/x', '/%41PI/x', '/%41pi/x', '/api%2fx', '/api%2Fx',
    '/%61pi/x', '/%61%70%69/x', '/api', '/api/', '/api/x?/../public', '/api#/../public',
    `http://127.0.0.1:${gateway.port}/api/x`, 'http://evil.example/api/x', '*', 'api/x'
  ]
  const refused: Record<number, number> = {}
  const passed: string[] = []
  for (const method of ['GET', 'POST']) {
    for (const target of targets) {
      let res: RawReply
      try {
        res = await rawRequest(gateway.port, method, target)
      } catch (err) {
        t.fail(`${method} ${target}: ${(err as Error).message}`)
        continue
      }
      statuses.push({ what: `${method} ${target}`, status: res.status })
      t.not(res.status, 500, `${method} ${target}: not a 500`)
      t.ok(res.status >= 400 || res.status === 200, `${method} ${target}: ${res.status}`)
      if (res.status !== 200) {
        refused[res.status] = (refused[res.status] ?? 0) + 1
        if (res.status === 401) t.match(res.headers['www-authenticate'], /^Bearer /, `${method} ${target}: 401 from the gateway, with its challenge`)
        continue
      }
      // A 200 comes from the echo behind /public: never a path an upstream would take for /api.
      const echo = JSON.parse(res.body) as Echo
      passed.push(`${method} ${target} -> ${echo.path}`)
      t.match(echo.path, /^\/public(\/|$)/, `${method} ${target}: 200 only through /public (upstream saw ${echo.path})`)
      t.notMatch(new URL(echo.path, 'http://upstream').pathname, /^\/api(\/|$)/i, `${method} ${target}: the upstream's path does not resolve into /api`)
      t.notOk('x-auth-subject' in echo.headers, `${method} ${target}: no identity forwarded`)
    }
  }
  t.comment(`${targets.length * 2} requests: refused ${JSON.stringify(refused)}; passed to /public: ${passed.length ? passed.join(', ') : 'none'}`)
  // The decoded spelling of /api still needs a token (it is /api, after one decode).
  const res = await rawRequest(gateway.port, 'GET', '/%61pi/items', { Authorization: `Bearer ${await serviceToken(issuer)}` })
  t.equal(res.status, 200, '/%61pi with a token reaches /api')
  t.equal((JSON.parse(res.body) as Echo).path, '/api/items', 'the upstream sees the decoded path')
})

t.test('odd requests are never a 500', async (t) => {
  const token = await serviceToken(issuer)
  const odd: Array<[string, string, Record<string, string | string[]>]> = [
    ['GET', '/api/items', { Authorization: ['Bearer a', 'Bearer b'] }],
    ['GET', '/api/items', { Authorization: `Bearer ${token}`, 'Content-Length': '0' }],
    ['POST', '/api/items', { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Content-Length': '3' }],
    ['GET', '/api/items', { Authorization: `Bearer ${'x'.repeat(20_000)}` }],
    ['GET', `/api/${'a'.repeat(10_000)}`, {}],
    ['OPTIONS', '/api/items', {}],
    ['TRACE', '/api/items', {}],
    ['PURGE', '/api/items', { Authorization: `Bearer ${token}` }],
    ['POST', '/oauth2/logout', {}],
    ['POST', '/oauth2/logout', { Authorization: 'Bearer nope' }],
    ['GET', '/oauth2/logout', { Authorization: `Bearer ${token}` }],
    ['POST', '/oauth2/logout', { Authorization: `Bearer ${forge({}, { alg: 'none', typ: 'at+jwt' }, null)}` }],
    ['GET', '/healthz/../api/x', {}],
    ['GET', '/metrics/../api/x', {}],
    ['GET', '/nowhere', {}]
  ]
  for (const [method, target, headers] of odd) {
    const res = await rawRequest(gateway.port, method, target, headers)
    statuses.push({ what: `${method} ${target.slice(0, 40)}`, status: res.status })
    t.ok(res.status >= 200 && res.status < 500, `${method} ${target.slice(0, 40)} ${JSON.stringify(Object.keys(headers))}: ${res.status}`)
  }
  // A bare 100-byte garbage request line: Node answers 400 itself.
  const garbage = await rawRequest(gateway.port, 'G\x01T', `/${randomBytes(8).toString('hex')}`)
  t.ok(garbage.status === 400 || garbage.status === 0, `garbage request line: ${garbage.status}`)
})

t.test('no 500 in the whole file, by the gateway\'s own count', async (t) => {
  t.same(statuses.filter((s) => s.status >= 500), [], 'no 5xx answered')
  const metrics = await gateway.metrics()
  t.notMatch(metrics, /status="5\d\d"/, 'no 5xx in /metrics')
  t.comment(`${statuses.length} requests checked`)
})
