/**
 * Every kind of bad token gets a 401 with the RFC 6750 challenge, and one onFailure call with
 * the right reason. A real issuer stand-in serves the keys.
 */
import t from 'tap'
import { exportSPKI, SignJWT } from 'jose'
import { startIssuer } from './fixtures/issuer.ts'
import { startResourceServer } from './fixtures/resource-server.ts'
import type { AuthFailureReason } from '../src/index.ts'

const issuer = await startIssuer()
const es256 = await issuer.addKey('ES256')
const rs256 = await issuer.addKey('RS256')
const eddsa = await issuer.addKey('EdDSA')
// jwksCooldown 0: every unknown kid refetches, so the test can count it.
const server = await startResourceServer({ issuer: issuer.url, audience: 'demo-api', jwksCooldown: 0 })
t.teardown(async () => {
  await server.app.close()
  await issuer.close()
})

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const bearer = (token: string): string => `Bearer ${token}`
const now = (): number => Math.floor(Date.now() / 1000)

t.test('a valid token for each key type passes, with its claims on request.auth', async (t) => {
  for (const key of [es256, rs256, eddsa]) {
    const token = await issuer.sign({ sid: 's-1', aud: ['other-api', 'demo-api'] }, { key })
    const res = await server.get('/read', bearer(token))
    t.equal(res.statusCode, 200, key.alg)
    const auth = res.json()
    t.match(auth, { sub: 'alice', client_id: 'demo-web', sid: 's-1', aud: ['other-api', 'demo-api'] })
    t.same(auth.scope, ['openid', 'api:read'], 'scope parsed')
  }
  for (const typ of ['AT+JWT', 'application/at+jwt']) {
    const res = await server.get('/read', bearer(await issuer.sign({}, { header: { typ } })))
    t.equal(res.statusCode, 200, `typ ${typ} (RFC 9068 4, case-insensitive)`)
  }
})

t.test('no Authorization header: 401 invalid_token (the product contract, over RFC 6750 3.1\'s SHOULD)', async (t) => {
  const res = await server.get('/read')
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="gatehouse", error="invalid_token", error_description="an access token is required"')
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(res.json(), { error: 'invalid_token', error_description: 'an access token is required' })
  t.equal(server.failures.at(-1), 'missing')
})

const bad: Array<[string, AuthFailureReason, () => Promise<string>]> = [
  ['Basic scheme', 'malformed', async () => 'Basic YWxpY2U6c2VjcmV0'],
  ['Bearer without a token', 'malformed', async () => 'Bearer '],
  ['two tokens', 'malformed', async () => `Bearer ${await issuer.sign()} ${await issuer.sign()}`],
  ['a trailing space', 'malformed', async () => `Bearer ${await issuer.sign()} `],
  ['characters outside b64token', 'malformed', async () => 'Bearer abc"def'],
  ['garbage in the token charset', 'malformed', async () => 'Bearer not-a-jwt'],
  ['garbage with three segments', 'malformed', async () => 'Bearer aaa.bbb.ccc'],
  ['too long', 'too_long', async () => bearer('a'.repeat(9000))],
  ['alg none', 'bad_algorithm', async () => {
    const payload = { iss: issuer.url, sub: 'alice', aud: 'demo-api', client_id: 'x', jti: 'j', iat: now(), exp: now() + 60 }
    return bearer(`${b64url({ alg: 'none', typ: 'at+jwt', kid: es256.kid })}.${b64url(payload)}.`)
  }],
  ['HS256 with the public key as the secret', 'bad_algorithm', async () => {
    const secret = new TextEncoder().encode(await exportSPKI(rs256.publicKey))
    const token = await new SignJWT({ iss: issuer.url, sub: 'alice', aud: 'demo-api', client_id: 'x', jti: 'j' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: rs256.kid }).setIssuedAt().setExpirationTime('5m').sign(secret)
    return bearer(token)
  }],
  ['typ JWT (an id_token, say)', 'bad_type', async () => bearer(await issuer.sign({}, { header: { typ: 'JWT' } }))],
  ['no typ', 'bad_type', async () => bearer(await issuer.sign({}, { header: { typ: undefined } }))],
  ['wrong iss', 'bad_issuer', async () => bearer(await issuer.sign({ iss: 'https://evil.example' }))],
  ['wrong aud', 'bad_audience', async () => bearer(await issuer.sign({ aud: ['other-api'] }))],
  ['no aud', 'bad_audience', async () => bearer(await issuer.sign({ aud: undefined }))],
  ['expired', 'expired', async () => bearer(await issuer.sign({ iat: now() - 600, exp: now() - 60 }))],
  ['nbf in the future', 'not_yet_valid', async () => bearer(await issuer.sign({ nbf: now() + 60 }))],
  ['iat in the future', 'not_yet_valid', async () => bearer(await issuer.sign({ iat: now() + 60 }))],
  ['no jti', 'missing_claim', async () => bearer(await issuer.sign({ jti: undefined }))],
  ['no client_id', 'missing_claim', async () => bearer(await issuer.sign({ client_id: undefined }))],
  ['no sub', 'missing_claim', async () => bearer(await issuer.sign({ sub: undefined }))],
  ['no exp', 'missing_claim', async () => bearer(await issuer.sign({ exp: undefined }))],
  ['tampered payload', 'bad_signature', async () => {
    const [header, payload, signature] = (await issuer.sign()).split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    return bearer(`${header}.${b64url({ ...claims, scope: 'api:read api:write' })}.${signature}`)
  }],
  ['signed by another key with the same kid', 'bad_signature', async () => {
    const impostor = { ...await issuer.generateKey('ES256'), kid: es256.kid }
    return bearer(await issuer.sign({}, { key: impostor }))
  }]
]

for (const [name, reason, authorization] of bad) {
  t.test(`${name}: 401 ${reason}`, async (t) => {
    const before = server.failures.length
    const res = await server.get('/read', await authorization())
    t.equal(res.statusCode, 401)
    const description = res.json().error_description
    t.equal(res.headers['www-authenticate'],
      `Bearer realm="gatehouse", error="invalid_token", error_description="${description}"`)
    t.equal(res.json().error, 'invalid_token')
    t.equal(res.headers['cache-control'], 'no-store')
    t.same(server.failures.slice(before), [reason], 'onFailure called once with the reason')
  })
}

t.test('an unknown kid refetches the JWKS once, then fails', async (t) => {
  const stranger = await issuer.generateKey('ES256')
  const fetches = issuer.hits.jwks
  const res = await server.get('/read', bearer(await issuer.sign({}, { key: stranger })))
  t.equal(res.statusCode, 401)
  t.equal(server.failures.at(-1), 'unknown_key')
  t.equal(issuer.hits.jwks, fetches + 1, 'one refetch')
})

t.test('alg none and HS256 never touch the keys', async (t) => {
  const fetches = issuer.hits.jwks
  for (const [name, , authorization] of bad.filter(([, reason]) => reason === 'bad_algorithm')) {
    await server.get('/read', await authorization())
    t.equal(issuer.hits.jwks, fetches, name)
  }
})
