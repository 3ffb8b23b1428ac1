/**
 * Seed: the grant flows table (Authorization Code, Implicit, Client Credentials, Resource Owner
 * Password Credentials) and "Authentication and Authorization", whose step 3 ends the flow when
 * the user denies: the application receives no token.
 *
 * Each grant with the demo client the fixture gives it, through a strict client library
 * (oauth4webapi) where it supports the grant (it does not do implicit: that one is read off the
 * redirect's fragment by hand), then a call to /api through the gateway. Real processes and a
 * real redis-server.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { bearer, decodeJwt, DEMO, request, startStack, type Echo, type GatewayProcess } from '../fixtures/processes.ts'
import { BROWSER_CLIENTS, CLIENTS, codeFlow, decide, discover, insecure, isConsentPage, signIn, startAuthorization, refusal } from '../fixtures/oauth.ts'

const stack = await startStack(t, { redis: true })
const gateway = stack.gateways[0] as GatewayProcess
const as = await discover(stack.issuer)

/** GET and POST /api through the gateway with `token`. */
async function callApi (token: string): Promise<{ get: number, post: number, echo: Echo }> {
  const read = await request<Echo>(`${gateway.url}/api/things`, { headers: bearer(token) })
  const write = await request(`${gateway.url}/api/things`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: '{}' })
  return { get: read.status, post: write.status, echo: read.body }
}

t.test('grant types advertised', async (t) => {
  t.same([...(as.grant_types_supported ?? [])].sort(), ['authorization_code', 'client_credentials', 'implicit', 'password', 'refresh_token'])
  t.same([...(as.response_types_supported ?? [])].sort(), ['code', 'token'])
})

t.test('Authorization Code: a web app gets a token on behalf of its user', async (t) => {
  const tokens = await codeFlow(as, 'web', { scope: 'openid api:read api:write' })
  t.type(tokens.refresh_token, 'string')
  t.equal(oauth.getValidatedIdTokenClaims(tokens)?.sub, 'alice')
  const { get, post, echo } = await callApi(tokens.access_token)
  t.equal(get, 200)
  t.equal(post, 200, 'api:write granted')
  t.equal(echo.headers['x-auth-subject'], 'alice', 'on behalf of the user')
  t.equal(echo.headers['x-auth-client-id'], 'demo-web')
})

t.test('Implicit: a legacy browser client gets the token in the redirect\'s fragment', async (t) => {
  const started = await startAuthorization(as, 'legacy', { response_type: 'token', scope: 'api:read', state: 'legacy-state' })
  // No PKCE in the implicit grant; the parameters are ignored, not an error.
  let page = await signIn(started)
  if (isConsentPage(page)) page = await decide(started.browser, page, 'allow')
  const redirect = new URL(page.url)
  t.equal(`${redirect.origin}${redirect.pathname}`, BROWSER_CLIENTS.legacy.redirectUri)
  t.equal(redirect.search, '', 'nothing in the query: the token never reaches the client\'s server logs')
  const fragment = new URLSearchParams(redirect.hash.slice(1))
  t.equal(fragment.get('token_type'), 'Bearer')
  t.equal(fragment.get('state'), 'legacy-state')
  t.equal(fragment.get('iss'), stack.issuer.url, 'RFC 9207 iss')
  t.ok(Number(fragment.get('expires_in')) > 0)
  t.equal(fragment.get('refresh_token'), null, 'never a refresh token in a URL')
  t.equal(fragment.get('code'), null)
  const token = fragment.get('access_token') ?? ''
  t.match(decodeJwt(token).payload, { sub: 'alice', client_id: 'demo-legacy', aud: 'demo-api', scope: 'api:read' })
  const { get, post, echo } = await callApi(token)
  t.equal(get, 200)
  t.equal(echo.headers['x-auth-client-id'], 'demo-legacy')
  t.equal(post, 403, 'demo-legacy may only read')

  const spa = await startAuthorization(as, 'spa', { response_type: 'token', state: 's' })
  const refused = new URL(spa.page.url)
  t.equal(new URLSearchParams(refused.hash.slice(1)).get('error') ?? refused.searchParams.get('error'), 'unauthorized_client', 'a client that did not opt in cannot use it')
})

t.test('Client Credentials: a service gets an application token, no user', async (t) => {
  const { client, auth } = CLIENTS.service
  const tokens = await oauth.processClientCredentialsResponse(as, client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'api:read api:write' }), insecure))
  t.equal(tokens.refresh_token, undefined, 'no refresh token without a user (RFC 6749 4.4.3)')
  const claims = decodeJwt(tokens.access_token).payload
  t.equal(claims.sub, 'demo-service', 'the subject is the client itself')
  t.equal(claims.sid, undefined, 'no user session')
  const { get, post, echo } = await callApi(tokens.access_token)
  t.equal(get, 200)
  t.equal(post, 200)
  t.equal(echo.headers['x-auth-subject'], 'demo-service')

  const web = CLIENTS.web
  t.equal(await refusal(oauth.processClientCredentialsResponse(as, web.client,
    await oauth.clientCredentialsGrantRequest(as, web.client, web.auth, new URLSearchParams(), insecure))), 'unauthorized_client', 'a client without the grant is refused')
  // RFC 6749 5.2: a failed Basic authentication is a 401 with a challenge, which the library raises.
  const wrong = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic('not-the-secret'), new URLSearchParams(), insecure)
  t.equal(wrong.status, 401)
  t.match(wrong.headers.get('www-authenticate'), /^Basic /)
  await t.rejects(oauth.processClientCredentialsResponse(as, client, wrong), oauth.WWWAuthenticateChallengeError, 'a wrong secret: invalid_client with a Basic challenge')
})

t.test('Resource Owner Password Credentials: a first-party app signs its user in with a password', async (t) => {
  const { client, auth } = CLIENTS.cli
  const grant = async (username: string, password: string, who = { client, auth }): Promise<oauth.TokenEndpointResponse> =>
    await oauth.processGenericTokenEndpointResponse(as, who.client,
      await oauth.genericTokenEndpointRequest(as, who.client, who.auth, 'password', new URLSearchParams({ username, password, scope: 'openid api:read' }), insecure))
  const tokens = await grant('bob', DEMO.passwords.bob ?? '')
  t.type(tokens.refresh_token, 'string')
  const claims = decodeJwt(tokens.access_token).payload
  t.equal(claims.sub, 'bob')
  t.type(claims.sid, 'string', 'a session, so a logout can end it')
  const { get, post, echo } = await callApi(tokens.access_token)
  t.equal(get, 200)
  t.equal(echo.headers['x-auth-subject'], 'bob')
  t.equal(post, 403, 'only api:read was asked for')

  t.equal(await refusal(grant('bob', 'alice-password')), 'invalid_grant', 'a wrong password is invalid_grant')
  t.equal(await refusal(grant('alice', DEMO.passwords.alice ?? '', CLIENTS.web)), 'unauthorized_client', 'only clients that opted in may use it')
})

t.test('Authentication and Authorization: the user denies, the flow ends, no token', async (t) => {
  // bob: alice has already consented to demo-web in this file (consent is remembered).
  const started = await startAuthorization(as, 'web', { scope: 'openid profile email api:read', state: 'deny-state' })
  const consent = await signIn(started, 'bob')
  t.ok(isConsentPage(consent), 'the issuer asks for permission')
  t.match(consent.html, /See your email address/, 'for the scopes asked for, in words')
  const callback = await decide(started.browser, consent, 'deny')
  const params = new URL(callback.url).searchParams
  t.equal(params.get('error'), 'access_denied', 'RFC 6749 4.1.2.1')
  t.equal(params.get('state'), 'deny-state')
  t.equal(params.get('iss'), stack.issuer.url)
  t.equal(params.get('code'), null, 'no authorization code')
  t.equal(await refusal(() => oauth.validateAuthResponse(as, BROWSER_CLIENTS.web.client, new URL(callback.url), 'deny-state')), 'access_denied', 'the client library sees the refusal')

  // Nothing was remembered: the next attempt asks again, and denying then allowing works.
  const retry = await startAuthorization(as, 'web', { scope: 'openid api:read' }, started.browser)
  t.ok(isConsentPage(retry.page), 'signed in (SSO), but asked for consent again')
  const allowed = await decide(retry.browser, retry.page, 'allow')
  t.type(new URL(allowed.url).searchParams.get('code'), 'string', 'allowing this time gives a code')

  const noToken = await request(`${gateway.url}/api/things`)
  t.equal(noToken.status, 401, 'and without a token the API stays shut')
  t.match(noToken.headers.get('www-authenticate'), /^Bearer /)
})
