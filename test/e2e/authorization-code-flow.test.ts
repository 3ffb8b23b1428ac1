/**
 * Seed: "Authorization Code flow" (PKCE), and the "Authentication and Authorization" steps 1-8.
 *
 * In real processes (issuer, gateway, demo resource server, redis-server, all started as a user
 * starts them): the client makes a code_verifier and its S256 challenge, sends the user to
 * /oauth2/authorise with the seed's parameters (response_type=code, code_challenge,
 * code_challenge_method=S256, client_id, redirect_uri, scope, audience, state), the user signs
 * in and authorises the client, the issuer redirects back with `code` and the same `state`, the
 * client exchanges the code with the verifier (the seed's exact form body), gets the seed's
 * response (access_token, refresh_token, id_token, token_type, expires_in), and calls /api
 * through the gateway with the Bearer token. Then the same with a confidential client that
 * authenticates with its secret (the seed's step 5) and RFC 8707 `resource`, through
 * oauth4webapi; and what the seed says the issuer checks: the verifier, and one use per code.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { bearer, decodeJwt, request, startStack, type Echo, type GatewayProcess } from '../fixtures/processes.ts'
import { BROWSER_CLIENTS, codeFlow, decide, discover, exchangeCode, insecure, isConsentPage, signIn, startAuthorization, refusal } from '../fixtures/oauth.ts'

const stack = await startStack(t, { redis: true })
const { issuer } = stack
const gateway = stack.gateways[0] as GatewayProcess
const as = await discover(issuer)

t.test('Authorization Code flow: the seed\'s requests, PKCE S256, audience, state, then the API', async (t) => {
  t.equal(as.authorization_endpoint, `${issuer.url}/oauth2/authorise`, 'the seeds\' spelling of the endpoint')
  t.equal(as.token_endpoint, `${issuer.url}/oauth2/token`)
  t.ok(as.code_challenge_methods_supported?.includes('S256'))

  // 1-3. The client makes a random code_verifier and its challenge, and sends the user off.
  const verifier = oauth.generateRandomCodeVerifier()
  const challenge = await oauth.calculatePKCECodeChallenge(verifier)
  const { redirectUri } = BROWSER_CLIENTS.spa
  const started = await startAuthorization(as, 'spa', {
    response_type: 'code',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    client_id: 'demo-spa',
    redirect_uri: redirectUri,
    scope: 'openid profile api:read',
    audience: 'demo-api',
    state: 'xyzABC123'
  })
  const authorize = started.url
  t.same([...authorize.searchParams.keys()].sort(),
    ['audience', 'client_id', 'code_challenge', 'code_challenge_method', 'nonce', 'redirect_uri', 'response_type', 'scope', 'state'], 'the seed\'s parameters (and a nonce)')
  t.equal(started.page.status, 200)
  t.match(started.page.html, /name="username"/, '4. the issuer authenticates the user: its login page')

  // 4-5. The user signs in and authorises the client (a consent page when the client asks for one).
  let callback = await signIn(started)
  if (isConsentPage(callback)) callback = await decide(started.browser, callback, 'allow')
  // The seed shows the GET's 302; after a POSTed login form the answer is a 303, so that the
  // browser follows with a GET and never re-posts the password (RFC 9700 4.11).
  t.equal(callback.status, 303, '6. redirected back (303 See Other after the POSTed form)')
  const location = new URL(callback.url)
  t.equal(`${location.origin}${location.pathname}`, redirectUri, 'back to the registered redirect_uri, exactly')
  t.equal(location.searchParams.get('state'), 'xyzABC123', 'state as sent')
  t.equal(location.searchParams.get('iss'), issuer.url, 'RFC 9207 iss')
  const code = location.searchParams.get('code') ?? ''
  t.ok(code.length >= 32, 'an authorization code')

  // With the SSO session, the same request is answered straight from the GET: the seed's 302.
  const sso = await startAuthorization(as, 'spa', { scope: 'openid api:read', audience: 'demo-api', state: 'xyzABC124' }, started.browser)
  t.equal(sso.page.status, 302, '302 Found when the user is already signed in')
  t.equal(new URL(sso.page.url).searchParams.get('state'), 'xyzABC124')

  // 7. The seed's token request, field for field: a public client, no secret, the verifier.
  const res = await fetch(as.token_endpoint ?? '', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'demo-spa', code_verifier: verifier, code, redirect_uri: redirectUri }).toString()
  })
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store', 'RFC 6749 5.1')
  const tokens = await res.json() as Record<string, unknown>
  t.match(tokens, { access_token: String, refresh_token: String, id_token: String, token_type: 'Bearer', expires_in: Number }, '8. the seed\'s response body')

  const access = decodeJwt(String(tokens.access_token))
  t.equal(access.header.typ, 'at+jwt', 'RFC 9068')
  t.match(access.payload, { iss: issuer.url, sub: 'alice', aud: 'demo-api', client_id: 'demo-spa', scope: 'openid profile api:read', sid: String, jti: String })
  const idToken = decodeJwt(String(tokens.id_token)).payload
  t.match(idToken, { iss: issuer.url, sub: 'alice', aud: 'demo-spa', nonce: started.nonce, name: 'Alice Liddell', sid: access.payload.sid })

  // 9. The API, through the gateway, with the seed's request.
  const api = await request<Echo>(`${gateway.url}/api`, { headers: { ...bearer(String(tokens.access_token)), 'content-type': 'application/json' } })
  t.equal(api.status, 200, '10. the protected resource')
  t.equal(api.body.method, 'GET')
  t.equal(api.body.path, '/api')
  t.equal(api.body.headers['x-auth-subject'], 'alice', 'the resource server learns who called')
  t.equal(api.body.headers['x-auth-client-id'], 'demo-spa')
  t.equal(api.body.headers['x-auth-scope'], 'openid profile api:read')
  t.equal(api.body.headers.authorization, undefined, 'the token itself stays at the gateway')
})

t.test('Authorization Code flow: a confidential client with its secret and RFC 8707 resource (oauth4webapi)', async (t) => {
  const web = { ...BROWSER_CLIENTS.web, auth: oauth.ClientSecretPost('demo-web-secret') }
  const started = await startAuthorization(as, 'web', { scope: 'openid profile email api:read', resource: 'demo-api' })
  const consent = await signIn(started)
  t.ok(isConsentPage(consent), 'demo-web asks for consent')
  t.match(consent.html, /Demo Web App/, 'the consent page names the client')
  t.match(consent.html, /Read data from the demo API/, 'and what it may do, in words')
  const callback = await decide(started.browser, consent, 'allow')
  const params = oauth.validateAuthResponse(as, web.client, new URL(callback.url), started.state)
  // The seed's step 5: code, client_id, client_secret and the original redirect_uri.
  const response = await oauth.authorizationCodeGrantRequest(as, web.client, web.auth, params, web.redirectUri, started.verifier, insecure)
  const tokens = await oauth.processAuthorizationCodeResponse(as, web.client, response, { expectedNonce: started.nonce, requireIdToken: true })
  t.type(tokens.refresh_token, 'string', 'and a refresh token')
  t.equal(oauth.getValidatedIdTokenClaims(tokens)?.email, 'alice@example.com')

  const read = await request<Echo>(`${gateway.url}/api/orders`, { headers: bearer(tokens.access_token) })
  t.equal(read.status, 200, 'GET /api with api:read')
  t.equal(read.body.headers['x-auth-client-id'], 'demo-web')
  const write = await request(`${gateway.url}/api/orders`, { method: 'POST', headers: bearer(tokens.access_token) })
  t.equal(write.status, 403, 'POST needs api:write, which was not asked for')
  t.match(write.headers.get('www-authenticate'), /error="insufficient_scope"/)

  const both = await codeFlow(as, 'web', { scope: 'api:read api:write', audience: 'demo-api' })
  t.equal((await request(`${gateway.url}/api/orders`, { method: 'POST', headers: bearer(both.access_token) })).status, 200, 'with api:write, POST passes')
})

t.test('Authorization Code flow: the issuer validates the code_verifier, and a code works once', async (t) => {
  const wrong = await startAuthorization(as, 'spa')
  const callback = await signIn(wrong)
  const stolen = { ...wrong, verifier: oauth.generateRandomCodeVerifier() }
  t.equal(await refusal(exchangeCode(as, stolen, callback)), 'invalid_grant', 'a verifier that does not match the challenge')

  const right = await startAuthorization(as, 'spa')
  const again = await signIn(right)
  const tokens = await exchangeCode(as, right, again)
  t.equal((await request(`${gateway.url}/api`, { headers: bearer(tokens.access_token) })).status, 200)
  t.equal(await refusal(exchangeCode(as, right, again)), 'invalid_grant', 'the code a second time')
  // RFC 6749 4.1.2: a replayed code revokes what it was exchanged for.
  const refused = await request(`${gateway.url}/api`, { headers: bearer(tokens.access_token) })
  t.equal(refused.status, 401, 'the replay revoked the tokens of the first exchange, at the gateway too')
  t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/)
})
