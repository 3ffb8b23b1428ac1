/**
 * POST /oauth2/session/end (the gateway's logout) against both stores: the token and its
 * session are revoked, the logout tokens verify, a repeat is a 200, only the gateway may call.
 */
import t from 'tap'
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose'
import { basic, forEachStore, postForm, startIssuer } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { introspect, MovableClock, passwordTokens, refresh, serviceToken, waitFor } from './fixtures/flows.ts'
import { startLogoutReceiver } from './fixtures/logout-receiver.ts'

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'
const gateway = { authorization: basic('gateway', SECRETS.gateway) }

forEachStore(t, async (t, kind) => {
  const receiver = await startLogoutReceiver(t)
  const clock = new MovableClock()
  const { as, url, app } = await startIssuer(t, kind, '', { clock }, { backchannelUri: receiver.url })
  const revocations = app.issuer.stores.revocations
  const endpoint = `${url}/oauth2/session/end`
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''))
  const refreshOutcome = async (token: string): Promise<string> =>
    await refresh(as, token).then(() => 'ok', (e: { error?: string }) => e.error ?? String(e))

  t.test('a session token: revoked, session ended, one logout token per audience', async (t) => {
    receiver.received.length = 0
    const tokens = await passwordTokens(as, 'alice', 'openid api:read')
    const other = await passwordTokens(as, 'alice', 'openid api:read')
    const { sid, jti, exp } = decodeJwt(tokens.access_token)
    const res = await postForm(endpoint, `token=${tokens.access_token}&audience=demo-api&audience=other-api`, gateway)
    t.equal(res.status, 200)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.match(res.json, { ended: true, sid, sub: 'alice', jti, exp })
    t.same(Object.keys(res.json.logout_tokens as object).sort(), ['demo-api', 'other-api'])

    t.same(await introspect(as, tokens.access_token), { active: false }, 'introspection: inactive')
    t.equal(revocations.isRevoked({ jti: String(jti) }), true, 'jti on the list')
    t.equal(revocations.isRevoked({ jti: 'x', sid: String(sid) }), true, 'sid on the list')
    t.equal(await refreshOutcome(tokens.refresh_token ?? ''), 'invalid_grant', 'the session\'s refresh token is dead')
    t.equal(await refreshOutcome(other.refresh_token ?? ''), 'ok', 'another session of the same user keeps working')

    for (const [audience, token] of Object.entries(res.json.logout_tokens as Record<string, string>)) {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: url, audience, typ: 'logout+jwt' })
      t.equal(protectedHeader.typ, 'logout+jwt')
      t.equal(payload.sid, sid, `${audience}: sid`)
      t.equal(payload.sub, 'alice')
      t.same(payload.events, { [EVENT]: {} }, `${audience}: events`)
      t.equal(payload.nonce, undefined)
      t.type(payload.jti, 'string')
    }
    t.not(await waitFor(() => receiver.received.length === 1), -1, 'the issuer\'s own receivers were told too')
    t.same(receiver.received.map((r) => r.path), ['/rs'])
  })

  t.test('a second call (and an expired token) stays a 200 with ended: false', async (t) => {
    const tokens = await passwordTokens(as)
    const body = { token: tokens.access_token, audience: 'demo-api' }
    const first = await postForm(endpoint, body, gateway)
    t.equal(first.json.ended, true)
    const second = await postForm(endpoint, body, gateway)
    t.equal(second.status, 200)
    t.equal(second.json.ended, false, 'already ended')
    t.equal(second.json.sid, first.json.sid)
    t.type((second.json.logout_tokens as Record<string, string>)['demo-api'], 'string')

    const stale = await passwordTokens(as)
    clock.advance(3600)
    t.teardown(() => { clock.reset() })
    const expired = await postForm(endpoint, { token: stale.access_token }, gateway)
    t.equal(expired.status, 200, 'an expired token still logs out')
    t.match(expired.json, { ended: true, sid: decodeJwt(stale.access_token).sid, logout_tokens: {} })
  })

  t.test('a client_credentials token: its jti is revoked, no session, no logout tokens', async (t) => {
    const machine = await serviceToken(as)
    const res = await postForm(endpoint, { token: machine.access_token, audience: 'demo-api' }, gateway)
    t.equal(res.status, 200)
    t.same(res.json, { ended: false, sid: null, sub: 'service', jti: decodeJwt(machine.access_token).jti, exp: decodeJwt(machine.access_token).exp, logout_tokens: {} })
    t.same(await introspect(as, machine.access_token), { active: false })
  })

  t.test('only a revokesAnyToken client may call it', async (t) => {
    const tokens = await passwordTokens(as)
    const refused = await postForm(endpoint, { token: tokens.access_token }, { authorization: basic('cli', SECRETS.cli) })
    t.equal(refused.status, 403)
    t.equal(refused.json.error, 'unauthorized_client')
    const anonymous = await postForm(endpoint, { token: tokens.access_token })
    t.equal(anonymous.status, 401)
    t.equal(anonymous.json.error, 'invalid_client')
    const wrong = await postForm(endpoint, { token: tokens.access_token }, { authorization: basic('gateway', 'wrong-secret-0123456789') })
    t.equal(wrong.status, 401)
    t.equal((await introspect(as, tokens.access_token)).active, true, 'the token survived')
  })

  t.test('bad input: 400 invalid_request', async (t) => {
    const tokens = await passwordTokens(as, 'alice', 'openid api:read')
    const [header, payload] = tokens.access_token.split('.')
    const cases: Array<[string, string]> = [
      ['no token', 'audience=demo-api'],
      ['garbage', 'token=garbage'],
      ['a tampered signature', `token=${header}.${payload}.${'A'.repeat(86)}`],
      ['an id_token (typ JWT)', `token=${tokens.id_token ?? ''}`],
      ['a refresh token', `token=${tokens.refresh_token ?? ''}`],
      ['a repeated token', `token=${tokens.access_token}&token=${tokens.access_token}`],
      ['an empty audience', `token=${tokens.access_token}&audience=`],
      ['17 audiences', `token=${tokens.access_token}${Array.from({ length: 17 }, (_, i) => `&audience=a${i}`).join('')}`]
    ]
    for (const [label, body] of cases) {
      const res = await postForm(endpoint, body, gateway)
      t.equal(res.status, 400, label)
      t.equal(res.json.error, 'invalid_request', label)
    }
    const json = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', ...gateway }, body: JSON.stringify({ token: tokens.access_token }) })
    t.equal(json.status, 400, 'a JSON body')
    t.equal((await introspect(as, tokens.access_token)).active, true, 'nothing was revoked')
  })
})
