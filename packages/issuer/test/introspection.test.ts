/**
 * Token introspection (RFC 7662) through oauth4webapi, raw HTTP for the malformed cases,
 * against both stores. Forged tokens are built next to a control signed with the issuer's own
 * key, so each "inactive" is about the one thing that differs.
 */
import t from 'tap'
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, type CryptoKey, type JWTPayload } from 'jose'
import { forEachStore, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { MovableClock, introspect, passwordTokens, serviceToken } from './fixtures/flows.ts'

forEachStore(t, async (t, kind) => {
  const clock = new MovableClock()
  const { as, url, app } = await startIssuer(t, kind, '', { clock })
  const endpoint = `${url}/oauth2/introspect`

  /** The issuer's current signing key, read from its store (the test plays a token forger). */
  async function issuerKey (): Promise<{ kid: string, key: CryptoKey }> {
    const [record] = await app.issuer.stores.keys.list()
    if (record === undefined) throw new Error('no signing key stored')
    return { kid: record.kid, key: await importJWK(record.privateJwk, record.alg) as CryptoKey }
  }

  async function sign (payload: JWTPayload, key: CryptoKey, header: { kid: string, typ: string }): Promise<string> {
    return await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', ...header }).sign(key)
  }

  t.test('an active access token: every RFC 7662 member, matching the token', async (t) => {
    const tokens = await passwordTokens(as, 'alice', 'profile api:read')
    const claims = decodeJwt(tokens.access_token)
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: basic('service', SECRETS.service), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token })
    })
    t.equal(response.status, 200)
    t.equal(response.headers.get('cache-control'), 'no-store')
    t.match(response.headers.get('content-type'), /^application\/json/)
    const body = await introspect(as, tokens.access_token)
    t.equal(body.active, true)
    t.equal(body.token_type, 'Bearer')
    t.equal(body.scope, 'profile api:read')
    t.equal(body.client_id, 'cli')
    t.equal(body.sub, 'alice')
    t.equal(body.aud, 'demo-api')
    t.equal(body.iss, url)
    t.equal(body.jti, claims.jti)
    t.equal(body.exp, claims.exp)
    t.equal(body.iat, claims.iat)
    t.equal(Number(body.exp) - Number(body.iat), 300)
    t.same(await introspect(as, tokens.access_token, 'gateway'), body, 'the gateway sees the same')
    t.same(await introspect(as, tokens.access_token, 'api'), body, 'and so does its audience, the resource server')
    t.same(await introspect(as, tokens.access_token, 'cli'), body, 'and the client it was issued to')
  })

  t.test('RFC 7662 4: another client learns nothing about a token not issued to it nor meant for it', async (t) => {
    const machine = (await serviceToken(as, 'api:write')).access_token
    t.same(await introspect(as, machine, 'cli'), { active: false }, 'cli asks about service\'s token')
    t.match(await introspect(as, machine, 'api'), { active: true, client_id: 'service' }, 'its audience may')
    const other = (await serviceToken(as, 'other:read')).access_token
    t.same(await introspect(as, other, 'api'), { active: false }, 'a resource server asks about another audience\'s token')
    t.same(await introspect(as, (await passwordTokens(as, 'bob', 'api:read')).access_token, 'service'), { active: false }, 'service asks about cli\'s token')
  })

  t.test('an expired access token is inactive', async (t) => {
    t.teardown(() => { clock.reset() })
    const tokens = await passwordTokens(as)
    // Relative to the token's own exp, with a margin for a loaded machine (a fixed 299 s from
    // now failed when a second passed between the grant and the introspection).
    const { exp } = JSON.parse(Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString()) as { exp: number }
    clock.advance(exp - 5 - clock.now() / 1000)
    t.equal((await introspect(as, tokens.access_token)).active, true, 'still active a few seconds before exp')
    clock.advance(6)
    t.same(await introspect(as, tokens.access_token), { active: false }, 'inactive after exp')
  })

  t.test('an expired refresh token is inactive', async (t) => {
    t.teardown(() => { clock.reset() })
    const tokens = await passwordTokens(as)
    clock.advance(3599)
    t.equal((await introspect(as, tokens.refresh_token ?? '', 'cli')).active, true, 'still active before its ttl')
    clock.advance(2)
    t.same(await introspect(as, tokens.refresh_token ?? '', 'cli'), { active: false }, 'inactive after refreshTokenTtl')
  })

  t.test('forged tokens are inactive; the same payload signed by the issuer is the control', async (t) => {
    const real = await passwordTokens(as)
    const payload = decodeJwt(real.access_token)
    const { kid, key } = await issuerKey()
    t.equal(decodeProtectedHeader(real.access_token).kid, kid, 'the store\'s key is the one signing')
    const control = await sign(payload, key, { kid, typ: 'at+jwt' })
    t.equal((await introspect(as, control)).active, true, 'control: re-signed with the issuer\'s key is active')

    const foreign = (await generateKeyPair('ES256', { extractable: true })).privateKey
    const cases: Record<string, string> = {
      'foreign key, same kid, alg and typ': await sign(payload, foreign, { kid, typ: 'at+jwt' }),
      'typ JWT (an id_token-like JWT) signed by the issuer': await sign(payload, key, { kid, typ: 'JWT' }),
      'no typ, signed by the issuer': await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid }).sign(key),
      'unknown kid, signed by the issuer': await sign(payload, key, { kid: 'not-a-kid', typ: 'at+jwt' }),
      'another issuer': await sign({ ...payload, iss: 'https://evil.example' }, key, { kid, typ: 'at+jwt' }),
      'no client_id': await sign({ ...payload, client_id: undefined }, key, { kid, typ: 'at+jwt' }),
      'no jti': await sign({ ...payload, jti: undefined }, key, { kid, typ: 'at+jwt' }),
      'already expired': await sign({ ...payload, exp: Math.floor(Date.now() / 1000) - 10 }, key, { kid, typ: 'at+jwt' }),
      'alg none': `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`
    }
    for (const [label, token] of Object.entries(cases)) {
      t.same(await introspect(as, token), { active: false }, label)
    }
  })

  t.test('a refresh token: active for its own client (and the gateway), inactive for others', async (t) => {
    const tokens = await passwordTokens(as, 'bob', 'openid api:read')
    const own = await introspect(as, tokens.refresh_token ?? '', 'cli')
    t.match(own, { active: true, client_id: 'cli', sub: 'bob', scope: 'openid api:read', iss: url })
    t.type(own.exp, 'number')
    t.type(own.iat, 'number')
    t.ok(Number(own.exp) - Number(own.iat) === 3600, 'exp is the refresh token ttl after iat')
    t.equal((await introspect(as, tokens.refresh_token ?? '', 'gateway')).active, true, 'gateway')
    t.same(await introspect(as, tokens.refresh_token ?? '', 'service'), { active: false }, 'another client learns nothing')
    t.same(await introspect(as, tokens.refresh_token ?? '', 'cliPost'), { active: false }, 'nor does one sharing the secret')
  })

  t.test('a public client may not introspect: 401 invalid_client', async (t) => {
    const tokens = await passwordTokens(as)
    const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
      ['public client spa', {}, { client_id: 'spa' }],
      ['no client at all', {}, {}],
      ['wrong secret', { authorization: basic('service', 'wrong-secret-0123456789') }, {}],
      ['confidential client without its secret', {}, { client_id: 'service' }]
    ]
    for (const [label, headers, extra] of cases) {
      const res = await postForm(endpoint, { token: tokens.access_token, ...extra }, headers)
      t.equal(res.status, 401, label)
      t.equal(res.json.error, 'invalid_client', label)
      t.equal(res.json.active, undefined, `${label}: no introspection answer`)
      t.match(res.headers.get('www-authenticate'), /^Basic realm="gatehouse"/, `${label}: WWW-Authenticate`)
    }
  })

  t.test('garbage is inactive; a missing token is invalid_request', async (t) => {
    for (const token of ['garbage', 'a.b.c', `${'A'.repeat(22)}.${'B'.repeat(43)}`, 'x'.repeat(8192)]) {
      t.same(await introspect(as, token), { active: false }, token.slice(0, 32))
    }
    const missing = await postForm(endpoint, {}, { authorization: basic('service', SECRETS.service) })
    t.equal(missing.status, 400)
    t.equal(missing.json.error, 'invalid_request')
    t.equal(missing.headers.get('cache-control'), 'no-store')
    const json = await fetch(endpoint, { method: 'POST', headers: { authorization: basic('service', SECRETS.service), 'content-type': 'application/json' }, body: '{"token":"x"}' })
    t.equal(json.status, 400, 'a JSON body is refused')
  })
})
