/**
 * Token revocation (RFC 7009) through oauth4webapi, raw HTTP for the malformed cases, against
 * both stores; with Redis, a second issuer instance sees the revocation through the shared list.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { forEachStore, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { introspect, passwordTokens, refresh, revoke, serviceToken, startSecondInstance, waitFor } from './fixtures/flows.ts'

const jtiOf = (token: string): string => String(decodeJwt(token).jti)

forEachStore(t, async (t, kind) => {
  const running = await startIssuer(t, kind)
  const { as, url, app } = running
  const revocations = app.issuer.stores.revocations
  const endpoint = `${url}/oauth2/revoke`
  const cli = { authorization: basic('cli', SECRETS.cli) }

  /** The refresh grant's error code, or 'ok' when it worked. */
  async function refreshOutcome (refreshToken: string): Promise<string> {
    return await refresh(as, refreshToken).then(() => 'ok', (e: unknown) => e instanceof oauth.ResponseBodyError ? e.error : String(e))
  }

  t.test('revoking an access token: inactive, and its jti on the shared list', async (t) => {
    const tokens = await passwordTokens(as)
    const other = await passwordTokens(as)
    t.equal((await introspect(as, tokens.access_token)).active, true, 'active before')
    const response = await revoke(as, tokens.access_token, 'cli')
    t.equal(response.status, 200)
    t.equal(response.headers.get('cache-control'), 'no-store')
    t.same(await introspect(as, tokens.access_token), { active: false })
    t.equal(revocations.isRevoked({ jti: jtiOf(tokens.access_token) }), true, 'jti in stores.revocations')
    t.equal(revocations.isRevoked({ jti: jtiOf(other.access_token) }), false, 'another token of the same client is untouched')
    t.equal((await introspect(as, other.access_token)).active, true)
  })

  t.test('revoking a refresh token: the family is dead, and so are its access tokens', async (t) => {
    const first = await passwordTokens(as)
    const second = await refresh(as, first.refresh_token ?? '')
    const untouched = await passwordTokens(as)
    t.equal((await introspect(as, second.refresh_token ?? '', 'cli')).active, true, 'refresh token active before')
    await revoke(as, second.refresh_token ?? '', 'cli', 'refresh_token')
    t.equal(await refreshOutcome(second.refresh_token ?? ''), 'invalid_grant', 'refresh refused')
    t.same(await introspect(as, second.refresh_token ?? '', 'cli'), { active: false }, 'refresh token inactive')
    for (const [label, token] of [['first', first.access_token], ['second', second.access_token]] as const) {
      t.same(await introspect(as, token), { active: false }, `${label} access token of the family inactive`)
      t.equal(revocations.isRevoked({ jti: jtiOf(token) }), true, `${label} jti on the list`)
    }
    t.equal((await introspect(as, untouched.access_token)).active, true, 'another family keeps working')
    t.equal(await refreshOutcome(untouched.refresh_token ?? ''), 'ok')
  })

  t.test('unknown and garbage tokens get 200 (RFC 7009 2.2) and revoke nothing', async (t) => {
    const live = await passwordTokens(as)
    const before = revocations.size
    const jwt = live.access_token.split('.')
    const cases = {
      garbage: 'garbage',
      'unknown refresh token shape': `${'A'.repeat(22)}.${'B'.repeat(43)}`,
      'JWT-shaped junk': 'a.b.c',
      'our JWT with a tampered signature': `${jwt[0]}.${jwt[1]}.${'A'.repeat(86)}`,
      'refresh token with a wrong secret': `${(live.refresh_token ?? '').split('.')[0]}.${'C'.repeat(43)}`
    }
    for (const [label, token] of Object.entries(cases)) {
      const res = await postForm(endpoint, { token }, cli)
      t.equal(res.status, 200, label)
      t.same(res.json, {}, `${label}: empty body`)
      t.equal(res.headers.get('cache-control'), 'no-store', `${label}: no-store`)
    }
    t.equal(revocations.size, before, 'nothing was added to the revocation list')
    t.equal((await introspect(as, live.access_token)).active, true, 'the live token whose pieces were reused is still active')
    t.equal(await refreshOutcome(live.refresh_token ?? ''), 'ok')
  })

  t.test('token_type_hint wrong or unknown still revokes (RFC 7009 2.1)', async (t) => {
    const a = await passwordTokens(as)
    await revoke(as, a.access_token, 'cli', 'refresh_token')
    t.same(await introspect(as, a.access_token), { active: false }, 'access token with hint refresh_token')
    const b = await passwordTokens(as)
    await revoke(as, b.refresh_token ?? '', 'cli', 'access_token')
    t.equal(await refreshOutcome(b.refresh_token ?? ''), 'invalid_grant', 'refresh token with hint access_token')
    const c = await passwordTokens(as)
    await revoke(as, c.access_token, 'cli', 'urn:nonsense')
    t.same(await introspect(as, c.access_token), { active: false }, 'access token with an unknown hint')
    await revoke(as, c.refresh_token ?? '', 'cli', 'urn:nonsense')
    t.equal(await refreshOutcome(c.refresh_token ?? ''), 'invalid_grant', 'refresh token with an unknown hint')
  })

  t.test('missing token: invalid_request', async (t) => {
    for (const [label, body] of [['no token', {}], ['empty token', { token: '' }], ['only a hint', { token_type_hint: 'access_token' }]] as const) {
      const res = await postForm(endpoint, body, cli)
      t.equal(res.status, 400, label)
      t.equal(res.json.error, 'invalid_request', label)
      t.equal(res.headers.get('cache-control'), 'no-store', label)
    }
    const repeated = await postForm(endpoint, 'token=a&token=b', cli)
    t.equal(repeated.json.error, 'invalid_request', 'repeated token')
  })

  t.test('client authentication is required: 401 invalid_client with a challenge', async (t) => {
    const tokens = await passwordTokens(as)
    const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
      ['no authentication', {}, {}],
      ['confidential client without its secret', {}, { client_id: 'cli' }],
      ['wrong secret (Basic)', { authorization: basic('cli', 'wrong-secret-0123456789') }, {}],
      ['wrong secret (post)', {}, { client_id: 'cli', client_secret: 'wrong-secret-0123456789' }],
      ['unknown client', { authorization: basic('nobody', SECRETS.cli) }, {}]
    ]
    for (const [label, headers, extra] of cases) {
      const res = await postForm(endpoint, { token: tokens.access_token, ...extra }, headers)
      t.equal(res.status, 401, label)
      t.equal(res.json.error, 'invalid_client', label)
      t.match(res.headers.get('www-authenticate'), /^Basic realm="gatehouse"/, `${label}: WWW-Authenticate`)
      t.equal(res.headers.get('cache-control'), 'no-store', `${label}: no-store`)
    }
    t.equal((await introspect(as, tokens.access_token)).active, true, 'the token survived every attempt')
    t.equal(revocations.isRevoked({ jti: jtiOf(tokens.access_token) }), false)
  })

  t.test('a client may not revoke another client\'s tokens', async (t) => {
    const tokens = await passwordTokens(as)
    const attempts: Array<[string, Record<string, string>, Record<string, string>]> = [
      ['service, access token', { authorization: basic('service', SECRETS.service) }, { token: tokens.access_token }],
      ['service, refresh token', { authorization: basic('service', SECRETS.service) }, { token: tokens.refresh_token ?? '' }],
      ['public spa, access token', {}, { client_id: 'spa', token: tokens.access_token }],
      ['public spa, refresh token', {}, { client_id: 'spa', token: tokens.refresh_token ?? '' }]
    ]
    for (const [label, headers, body] of attempts) {
      const res = await postForm(endpoint, body, headers)
      t.equal(res.status, 400, label)
      t.equal(res.json.error, 'invalid_request', label)
    }
    t.equal((await introspect(as, tokens.access_token)).active, true, 'access token stays active')
    t.equal(revocations.isRevoked({ jti: jtiOf(tokens.access_token) }), false)
    t.equal(await refreshOutcome(tokens.refresh_token ?? ''), 'ok', 'refresh token stays usable')
  })

  t.test('the gateway client (revokesAnyToken) may revoke anyone\'s tokens', async (t) => {
    const user = await passwordTokens(as)
    const machine = await serviceToken(as)
    await revoke(as, user.access_token, 'gateway')
    await revoke(as, machine.access_token, 'gateway')
    t.same(await introspect(as, user.access_token), { active: false }, 'cli\'s access token')
    t.same(await introspect(as, machine.access_token), { active: false }, 'service\'s access token')
    const family = await passwordTokens(as)
    await revoke(as, family.refresh_token ?? '', 'gateway')
    t.equal(await refreshOutcome(family.refresh_token ?? ''), 'invalid_grant', 'cli\'s refresh token')
    t.same(await introspect(as, family.access_token), { active: false }, 'and the access token of that family')
  })

  if (kind === 'redis') {
    t.test('Redis: a second instance sees the revocation; the sorted set holds the jti with a TTL', async (t) => {
      const redisUrl = running.redis?.url ?? ''
      const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
      await redis.connect()
      t.teardown(() => { redis.disconnect() })
      const second = await startSecondInstance(t, running)

      const tokens = await passwordTokens(as)
      t.equal((await introspect(second.as, tokens.access_token)).active, true, 'instance 2 accepts the token first')
      await revoke(as, tokens.access_token, 'cli')
      const took = await waitFor(async () => !(await introspect(second.as, tokens.access_token)).active)
      t.ok(took >= 0, `instance 2 says inactive (after ${took} ms)`)
      t.equal(second.app.issuer.stores.revocations.isRevoked({ jti: jtiOf(tokens.access_token) }), true, 'instance 2 mirror')

      const key = 'gatehouse:{revocations}:jti'
      const exp = Number(decodeJwt(tokens.access_token).exp) * 1000
      const score = Number(await redis.zscore(key, jtiOf(tokens.access_token)))
      t.ok(score >= exp && score <= exp + 1000, `score ${score} is the token's expiry ${exp} (ms)`)
      const pttl = await redis.pttl(key)
      t.ok(pttl > 0, `the set has a TTL (${pttl} ms)`)
      t.ok(Date.now() + pttl >= score - 1000, 'the TTL reaches the highest score')

      // The other way round: refresh state is shared too, so instance 2 revoking a family
      // stops a refresh on instance 1 and kills the family's access token everywhere.
      const family = await passwordTokens(as)
      await revoke(second.as, family.refresh_token ?? '', 'cli')
      t.equal(await refreshOutcome(family.refresh_token ?? ''), 'invalid_grant', 'instance 1 refuses the refresh')
      t.ok(await waitFor(() => revocations.isRevoked({ jti: jtiOf(family.access_token) })) >= 0, 'instance 1 mirror has the family\'s jti')
      t.same(await introspect(as, family.access_token), { active: false })
    })
  }
})
