/**
 * The demo resource server: the echo, and OIDC Back-Channel Logout verification against a real
 * issuer built in-process (tokens from its session-end endpoint, its own delivery, and variants
 * signed with its key).
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { buildResourceServer } from '../src/resource-server.ts'
import { BACKCHANNEL_LOGOUT_EVENT } from '../src/logout-token.ts'
import { aliceToken, basic, GATEWAY, issuerUrl, postForm, startIssuer } from './fixtures/issuer.ts'

t.test('the echo: every method and path, as JSON { method, path, headers }', async (t) => {
  const app = await buildResourceServer({ issuer: 'http://127.0.0.1:1', logger: false })
  t.teardown(async () => await app.close())
  const cases = [
    ['GET', '/api/items?limit=2', undefined],
    ['POST', '/api/items', '{"not": "parsed"'],
    ['PUT', '/deep/nested/path', 'raw'],
    ['DELETE', '/api/items/1', undefined],
    ['PATCH', '/', undefined],
    ['OPTIONS', '/api', undefined],
    ['PROPFIND', '/dav', undefined],
    ['GET', '/backchannel-logout', undefined]
  ] as const
  for (const [method, url, payload] of cases) {
    const res = await app.inject({ method: method as 'GET', url, headers: { 'x-subject': 'alice', 'content-type': 'application/json' }, ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, 200, `${method} ${url}`)
    const body = res.json()
    t.equal(body.method, method)
    t.equal(body.path, url, 'path as received, query included')
    t.equal(body.headers['x-subject'], 'alice', 'headers reflected')
    t.same(Object.keys(body).sort(), ['headers', 'method', 'path'])
  }
  const head = await app.inject({ method: 'HEAD', url: '/x' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
})

t.test('back-channel logout against a real issuer', async (t) => {
  const url = await issuerUrl()
  const rs = await buildResourceServer({ issuer: url, logger: false })
  t.teardown(async () => await rs.close())
  await rs.listen({ host: '127.0.0.1', port: 0 })
  const rsUrl = `http://127.0.0.1:${(rs.server.address() as AddressInfo).port}`
  const logoutUrl = `${rsUrl}/backchannel-logout`
  const issuer = await startIssuer(t, url, logoutUrl)
  const gateway = { authorization: basic(GATEWAY.id, GATEWAY.secret) }

  const sessions = async (): Promise<Array<{ sid: string | null, sub: string | null, revokedAt: string }>> =>
    (await (await fetch(`${logoutUrl}/sessions`)).json() as { sessions: [] }).sessions
  const deliver = async (token: string): Promise<{ status: number, headers: Headers, text: string }> => await postForm(logoutUrl, { logout_token: token })
  /** A logout token signed by the issuer's key, with `changes` over a valid one. */
  const signed = async (changes: Record<string, unknown> = {}, typ = 'logout+jwt'): Promise<string> => {
    const now = Math.floor(Date.now() / 1000)
    const claims: Record<string, unknown> = { aud: 'demo-api', iat: now, exp: now + 120, jti: randomBytes(16).toString('base64url'), sub: 'alice', sid: `sid-${randomBytes(4).toString('hex')}`, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...changes }
    for (const [k, v] of Object.entries(claims)) if (v === undefined) Reflect.deleteProperty(claims, k)
    return (await issuer.app.issuer.tokens.sign(claims, typ)).token
  }

  t.same(await sessions(), [], 'no session revoked yet')

  t.test('a session end: the issuer\'s delivery and the gateway\'s token are accepted and listed', async (t) => {
    const access = await aliceToken(issuer)
    const sid = decodeJwt(access).sid
    const ended = await postForm(`${url}/oauth2/session/end`, { token: access, audience: 'demo-api' }, gateway)
    t.equal(ended.status, 200)
    const logoutToken = (JSON.parse(ended.text) as { logout_tokens: Record<string, string> }).logout_tokens['demo-api'] ?? ''
    // endSession delivered to the receiver registered with the issuer before answering.
    t.match(await sessions(), [{ sid, sub: 'alice', revokedAt: String }], 'the issuer\'s own delivery was accepted')

    const res = await deliver(logoutToken)
    t.equal(res.status, 200, 'the logout token from /oauth2/session/end')
    t.equal(res.headers.get('cache-control'), 'no-store')
    const listed = await sessions()
    t.equal(listed.length, 2)
    t.match(listed[0], { sid, sub: 'alice' })
    t.ok(Date.parse(listed[0]?.revokedAt ?? '') <= Date.now())

    const replay = await deliver(logoutToken)
    t.equal(replay.status, 400, 'a replayed jti is refused')
    t.same(JSON.parse(replay.text).error, 'invalid_request')
    t.equal(replay.headers.get('cache-control'), 'no-store')
    t.equal((await sessions()).length, 2, 'the replay was not listed')
  })

  t.test('a token with only a sub, or only a sid, is accepted', async (t) => {
    t.equal((await deliver(await signed({ sid: undefined }))).status, 200, 'sub only')
    t.equal((await deliver(await signed({ sub: undefined }))).status, 200, 'sid only')
  })

  t.test('invalid logout tokens: 400 invalid_request, nothing listed', async (t) => {
    const before = (await sessions()).length
    const valid = await signed()
    const [header, payload] = valid.split('.')
    const foreign = await generateKeyPair('ES256')
    const { kid } = JSON.parse(Buffer.from(header ?? '', 'base64url').toString()) as { kid: string }
    const now = Math.floor(Date.now() / 1000)
    const cases: Record<string, string> = {
      'wrong typ (JWT)': await signed({}, 'JWT'),
      'an access token (at+jwt)': await aliceToken(issuer),
      'wrong aud': await signed({ aud: 'other-api' }),
      'wrong iss': await signed({ iss: 'http://127.0.0.1:1' }),
      'a nonce (2.4: prohibited)': await signed({ nonce: 'n-0S6_WzA2Mj' }),
      'no events': await signed({ events: undefined }),
      'events without the back-channel logout event': await signed({ events: { 'http://schemas.openid.net/event/other': {} } }),
      'neither sid nor sub': await signed({ sid: undefined, sub: undefined }),
      'no jti': await signed({ jti: undefined }),
      'no iat': await signed({ iat: undefined }),
      expired: await signed({ iat: now - 600, exp: now - 300 }),
      'bad signature': `${header}.${payload}.${'A'.repeat(86)}`,
      'signed by another key with the same kid': await new SignJWT(decodeJwt(valid)).setProtectedHeader({ alg: 'ES256', typ: 'logout+jwt', kid }).sign(foreign.privateKey),
      'alg none': `${Buffer.from('{"alg":"none","typ":"logout+jwt"}').toString('base64url')}.${payload}.`,
      garbage: 'garbage'
    }
    for (const [label, token] of Object.entries(cases)) {
      const res = await deliver(token)
      t.equal(res.status, 400, label)
      t.equal(JSON.parse(res.text).error, 'invalid_request', label)
      t.equal(res.headers.get('cache-control'), 'no-store', `${label}: no-store`)
    }
    for (const [label, body, type] of [['no logout_token', 'x=1', 'application/x-www-form-urlencoded'], ['twice', 'logout_token=a&logout_token=b', 'application/x-www-form-urlencoded'], ['JSON', JSON.stringify({ logout_token: valid }), 'application/json']] as const) {
      const res = await fetch(logoutUrl, { method: 'POST', headers: { 'content-type': type }, body })
      t.equal(res.status, 400, label)
    }
    t.equal((await sessions()).length, before, 'nothing listed')
    t.equal((await deliver(valid)).status, 200, 'the untouched valid token still works')
  })
})

t.test('the issuer cannot be reached: 503, not a 400 and not a 500', async (t) => {
  const app = await buildResourceServer({ issuer: `http://127.0.0.1:${await freePort()}`, logger: false })
  t.teardown(async () => await app.close())
  const header = Buffer.from('{"alg":"ES256","typ":"logout+jwt","kid":"k"}').toString('base64url')
  const res = await app.inject({ method: 'POST', url: '/backchannel-logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `logout_token=${header}.e30.${'A'.repeat(86)}` })
  t.equal(res.statusCode, 503)
  t.equal(res.json().error, 'temporarily_unavailable')
})

t.test('options are checked when the server is built', async (t) => {
  await t.rejects(buildResourceServer({ issuer: 'not a url' }), /issuer must be a URL/)
  await t.rejects(buildResourceServer({ issuer: 'ftp://x' }), /http\(s\)/)
  await t.rejects(buildResourceServer({ issuer: 'http://x', audience: '' }), /audience/)
})
