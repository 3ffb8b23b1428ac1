/**
 * The token endpoint driven by a real, strict OAuth client (oauth4webapi), over real HTTP,
 * against both stores.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { forEachStore, insecure, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'

forEachStore(t, async (t, kind) => {
  const { as, url } = await startIssuer(t, kind)
  const service: oauth.Client = { client_id: 'service' }
  const serviceAuth = oauth.ClientSecretBasic(SECRETS.service)
  const cli: oauth.Client = { client_id: 'cli' }
  const cliAuth = oauth.ClientSecretBasic(SECRETS.cli)

  /** Validates an access token the way a strict resource server does (RFC 9068). */
  async function validate (token: string, audience: string): Promise<oauth.JWTAccessTokenClaims> {
    const request = new Request('http://rs.example/api', { headers: { authorization: `Bearer ${token}` } })
    return await oauth.validateJwtAccessToken(as, request, audience, insecure)
  }

  t.test('client_credentials: a JWT access token that verifies against the JWKS', async (t) => {
    const response = await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, new URLSearchParams({ scope: 'api:read' }), insecure)
    t.equal(response.headers.get('cache-control'), 'no-store')
    const result = await oauth.processClientCredentialsResponse(as, service, response)
    t.equal(result.token_type, 'bearer')
    t.equal(result.expires_in, 300)
    t.equal(result.scope, 'api:read')
    t.equal(result.refresh_token, undefined, 'no refresh token for client_credentials (RFC 6749 4.4.3)')
    const claims = await validate(result.access_token, 'demo-api')
    t.equal(claims.iss, url)
    t.equal(claims.sub, 'service')
    t.equal(claims.client_id, 'service')
    t.equal(claims.aud, 'demo-api')
    t.equal(claims.scope, 'api:read')
    t.match(claims.jti, /^[A-Za-z0-9_-]{22}$/)
    t.equal(claims.exp - claims.iat, 300)
    const header = decodeProtectedHeader(result.access_token)
    t.equal(header.typ, 'at+jwt')
    t.equal(header.alg, 'ES256')
    t.type(header.kid, 'string')
  })

  t.test('client_credentials without scope gets all of the client\'s scopes and audiences', async (t) => {
    const result = await oauth.processClientCredentialsResponse(as, service,
      await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, new URLSearchParams(), insecure))
    t.same(result.scope?.split(' ').sort(), ['api:read', 'api:write', 'other:read'])
    t.same([decodeJwt(result.access_token).aud].flat().sort(), ['demo-api', 'other-api'])
  })

  t.test('RFC 8707 resource narrows the audience and the scopes', async (t) => {
    const params = new URLSearchParams({ scope: 'api:read other:read', resource: 'other-api' })
    const result = await oauth.processClientCredentialsResponse(as, service,
      await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, params, insecure))
    t.equal(result.scope, 'other:read')
    const claims = await validate(result.access_token, 'other-api')
    t.equal(claims.aud, 'other-api')
    const seedSpelling = await oauth.processClientCredentialsResponse(as, service,
      await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, new URLSearchParams({ audience: 'demo-api' }), insecure))
    t.equal(decodeJwt(seedSpelling.access_token).aud, 'demo-api', 'the seeds\' `audience` parameter works the same')
    t.same(seedSpelling.scope?.split(' ').sort(), ['api:read', 'api:write'])
  })

  t.test('requested scopes never exceed the client\'s', async (t) => {
    for (const scope of ['openid', 'api:read nope', 'offline_access']) {
      const error = await oauth.processClientCredentialsResponse(as, service,
        await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, new URLSearchParams({ scope }), insecure)).catch((e: unknown) => e)
      t.ok(error instanceof oauth.ResponseBodyError, scope)
      t.equal((error as oauth.ResponseBodyError).error, 'invalid_scope', scope)
      t.equal((error as oauth.ResponseBodyError).status, 400)
    }
    const target = await oauth.processClientCredentialsResponse(as, service,
      await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, new URLSearchParams({ resource: 'https://elsewhere.example' }), insecure)).catch((e: unknown) => e)
    t.equal((target as oauth.ResponseBodyError).error, 'invalid_target')
  })

  t.test('password grant, then refresh with rotation', async (t) => {
    const first = await oauth.processGenericTokenEndpointResponse(as, cli,
      await oauth.genericTokenEndpointRequest(as, cli, cliAuth, 'password', new URLSearchParams({ username: 'alice', password: 'alice-password', scope: 'profile api:read' }), insecure))
    t.type(first.refresh_token, 'string')
    const claims = await validate(first.access_token, 'demo-api')
    t.equal(claims.sub, 'alice')
    t.type(claims.auth_time, 'number')

    const second = await oauth.processRefreshTokenResponse(as, cli,
      await oauth.refreshTokenGrantRequest(as, cli, cliAuth, first.refresh_token ?? '', insecure))
    t.not(second.refresh_token, first.refresh_token, 'a new refresh token each time')
    t.equal(second.scope, 'profile api:read')
    t.equal((await validate(second.access_token, 'demo-api')).sub, 'alice')

    const narrowed = await oauth.processRefreshTokenResponse(as, cli,
      await oauth.refreshTokenGrantRequest(as, cli, cliAuth, second.refresh_token ?? '', { ...insecure, additionalParameters: { scope: 'api:read' } }))
    t.equal(narrowed.scope, 'api:read', 'a refresh may narrow the scope')
    const widened = await oauth.processRefreshTokenResponse(as, cli,
      await oauth.refreshTokenGrantRequest(as, cli, cliAuth, narrowed.refresh_token ?? '', { ...insecure, additionalParameters: { scope: 'api:write' } })).catch((e: unknown) => e)
    t.equal((widened as oauth.ResponseBodyError).error, 'invalid_scope', 'never widen it')
  })

  t.test('reusing a rotated refresh token revokes the whole family', async (t) => {
    const first = await oauth.processGenericTokenEndpointResponse(as, cli,
      await oauth.genericTokenEndpointRequest(as, cli, cliAuth, 'password', new URLSearchParams({ username: 'bob', password: 'bob-password', scope: 'api:read' }), insecure))
    const second = await oauth.processRefreshTokenResponse(as, cli, await oauth.refreshTokenGrantRequest(as, cli, cliAuth, first.refresh_token ?? '', insecure))
    const reuse = await oauth.processRefreshTokenResponse(as, cli, await oauth.refreshTokenGrantRequest(as, cli, cliAuth, first.refresh_token ?? '', insecure)).catch((e: unknown) => e)
    t.equal((reuse as oauth.ResponseBodyError).error, 'invalid_grant')
    const afterReuse = await oauth.processRefreshTokenResponse(as, cli, await oauth.refreshTokenGrantRequest(as, cli, cliAuth, second.refresh_token ?? '', insecure)).catch((e: unknown) => e)
    t.equal((afterReuse as oauth.ResponseBodyError).error, 'invalid_grant', 'the newest token of the family is dead too')
    const introspection = await oauth.processIntrospectionResponse(as, service,
      await oauth.introspectionRequest(as, service, serviceAuth, second.access_token, insecure))
    t.equal(introspection.active, false, 'and so is the access token the family issued')
  })

  t.test('two concurrent refreshes of one token: exactly one succeeds', async (t) => {
    const first = await oauth.processGenericTokenEndpointResponse(as, cli,
      await oauth.genericTokenEndpointRequest(as, cli, cliAuth, 'password', new URLSearchParams({ username: 'alice', password: 'alice-password', scope: 'api:read' }), insecure))
    const attempts = await Promise.all(Array.from({ length: 8 }, async () =>
      await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' }, { authorization: basic('cli', SECRETS.cli) })))
    t.equal(attempts.filter((a) => a.status === 200).length, 1, 'one winner')
    for (const a of attempts.filter((a) => a.status !== 200)) t.same(a.json.error, 'invalid_grant')
  })

  t.test('wrong password and unknown user get the same answer', async (t) => {
    const answers = []
    for (const [username, password] of [['alice', 'nope'], ['mallory', 'alice-password']]) {
      const res = await postForm(`${url}/oauth2/token`, { grant_type: 'password', username: username ?? '', password: password ?? '' }, { authorization: basic('cli', SECRETS.cli) })
      t.equal(res.status, 400)
      answers.push(res.json)
    }
    t.same(answers[0], answers[1])
    t.equal(answers[0]?.error, 'invalid_grant')
  })

  t.test('client_secret_post', async (t) => {
    const result = await oauth.processGenericTokenEndpointResponse(as, { client_id: 'cli-post' },
      await oauth.genericTokenEndpointRequest(as, { client_id: 'cli-post' }, oauth.ClientSecretPost(SECRETS.cli), 'password',
        new URLSearchParams({ username: 'alice', password: 'alice-password' }), insecure))
    t.equal(result.scope, 'api:read')
    const viaBasic = await postForm(`${url}/oauth2/token`, { grant_type: 'password', username: 'alice', password: 'alice-password' }, { authorization: basic('cli-post', SECRETS.cli) })
    t.equal(viaBasic.status, 401, 'a client registered for client_secret_post may not use Basic')
    t.equal(viaBasic.json.error, 'invalid_client')
  })
})
