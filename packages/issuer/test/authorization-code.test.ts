/**
 * The browser flows: authorization code with PKCE (the seeds' flow), login and consent pages,
 * SSO, implicit, logout with back-channel logout. A strict client (oauth4webapi) on one side,
 * a form-driving browser with a cookie jar on the other, real HTTP, both stores.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose'
import { forEachStore, insecure, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { Browser, type Page } from './fixtures/browser.ts'
import { signIn, WEB_CALLBACK } from './fixtures/sign-in.ts'
import { startLogoutReceiver } from './fixtures/logout-receiver.ts'

forEachStore(t, async (t, kind) => {
  const receiver = await startLogoutReceiver(t)
  const { as, url } = await startIssuer(t, kind, '', {}, { backchannelUri: receiver.url })
  const web: oauth.Client = { client_id: 'web' }
  const webAuth = oauth.ClientSecretBasic(SECRETS.web)
  const spa: oauth.Client = { client_id: 'spa' }

  const { startAuthorization, login, loginAndAllow, webLogin } = signIn(as, url)

  t.test('consent page: the client and the scopes in plain words', async (t) => {
    const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid profile' })
    const consent = await login(started.browser, started.page, 'bob')
    t.equal(consent.status, 200)
    t.match(consent.html, /Web App/, 'names the client')
    t.match(consent.html, /See your name/, 'and the scopes in plain words')
    t.match(consent.html, /name="decision" value="allow"/)
    t.match(consent.html, /name="decision" value="deny"/)
  })

  t.test('confidential client: code + PKCE, login, consent, tokens, id_token, userinfo', async (t) => {
    const { tokens, browser } = await webLogin()
    t.type(tokens.refresh_token, 'string')
    const idToken = oauth.getValidatedIdTokenClaims(tokens)
    t.equal(idToken?.sub, 'alice')
    t.equal(idToken?.aud, 'web')
    t.equal(idToken?.name, 'Alice Liddell')
    t.equal(idToken?.email, 'alice@example.com')
    t.type(idToken?.sid, 'string')
    t.type(idToken?.auth_time, 'number')
    t.type(idToken?.at_hash, 'string')
    const access = decodeJwt(tokens.access_token)
    t.equal(access.sid, idToken?.sid, 'sid in the access token and the id_token')
    t.equal(access.aud, 'demo-api')
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''))
    await t.resolves(jwtVerify(tokens.id_token ?? '', jwks, { issuer: url, audience: 'web' }), 'id_token signature verifies')
    const userinfo = await oauth.processUserInfoResponse(as, web, 'alice', await oauth.userInfoRequest(as, web, tokens.access_token, insecure))
    t.same(userinfo, { sub: 'alice', name: 'Alice Liddell', preferred_username: 'alice', email: 'alice@example.com' })
    t.ok([...browser.cookies.keys()].includes('gatehouse_session'), 'the SSO session cookie is set')
  })

  t.test('the seeds\' request shape: audience (RFC 8707 resource) survives login and consent', async (t) => {
    const { tokens } = await webLogin({ scope: 'openid profile api:read', audience: 'web' })
    const access = decodeJwt(tokens.access_token)
    t.equal(access.aud, 'web', 'the audience asked for, not the scopes\' default')
    t.equal(access.scope, 'openid profile', 'scopes of other audiences are dropped')
  })

  t.test('SSO: a second authorization needs neither login nor consent again', async (t) => {
    const { browser } = await webLogin()
    const again = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:read' }, browser)
    t.equal(again.page.status, 302, 'redirected straight back')
    const params = oauth.validateAuthResponse(as, web, new URL(again.page.url), again.state)
    t.type(params.get('code'), 'string')
    t.equal(params.get('iss'), url, 'RFC 9207 iss')
    const forced = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid', prompt: 'login' }, browser)
    t.match(forced.page.html, /name="password"/, 'prompt=login asks again')
    const consentAgain = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid', prompt: 'consent' }, browser)
    t.match(consentAgain.page.html, /name="decision"/, 'prompt=consent asks again')
  })

  t.test('public client: PKCE required, no secret', async (t) => {
    const started = await startAuthorization({ client_id: 'spa', redirect_uri: 'http://127.0.0.1:3000/cb', scope: 'openid api:read' })
    const callback = await login(started.browser, started.page, 'bob')
    const params = oauth.validateAuthResponse(as, spa, new URL(callback.url), started.state)
    const result = await oauth.processAuthorizationCodeResponse(as, spa,
      await oauth.authorizationCodeGrantRequest(as, spa, oauth.None(), params, 'http://127.0.0.1:3000/cb', started.verifier, insecure), { expectedNonce: started.nonce })
    t.equal(decodeJwt(result.access_token).sub, 'bob')
    const noPkce = new Browser(url)
    const page = await noPkce.request(`${url}/oauth2/authorize?response_type=code&client_id=spa&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/cb')}&state=s1`)
    const error = new URL(page.url)
    t.equal(error.searchParams.get('error'), 'invalid_request', 'no code_challenge for a public client')
    t.equal(error.searchParams.get('state'), 's1')
    const plain = await noPkce.request(`${url}/oauth2/authorise?response_type=code&client_id=spa&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/cb')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=plain`)
    t.equal(new URL(plain.url).searchParams.get('error'), 'invalid_request', 'plain is refused')
  })

  t.test('the user denies consent: access_denied, no code', async (t) => {
    const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:write' })
    const consent = await login(started.browser, started.page)
    const callback = await started.browser.submit(consent, {}, { name: 'decision', value: 'deny' })
    const params = new URL(callback.url).searchParams
    t.equal(params.get('error'), 'access_denied')
    t.equal(params.get('code'), null)
    t.equal(params.get('state'), started.state)
    t.equal(params.get('iss'), url)
    t.throws(() => oauth.validateAuthResponse(as, web, new URL(callback.url), started.state), oauth.AuthorizationResponseError)
  })

  t.test('prompt=none without a session: login_required', async (t) => {
    const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, prompt: 'none' })
    t.equal(new URL(started.page.url).searchParams.get('error'), 'login_required')
  })

  t.test('a replayed code is refused and revokes what it issued', async (t) => {
    const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid offline_access api:read' })
    const callback = await loginAndAllow(started)
    const params = oauth.validateAuthResponse(as, web, new URL(callback.url), started.state)
    const first = await oauth.processAuthorizationCodeResponse(as, web,
      await oauth.authorizationCodeGrantRequest(as, web, webAuth, params, WEB_CALLBACK, started.verifier, insecure), { expectedNonce: started.nonce })
    const replay = await postForm(`${url}/oauth2/token`, { grant_type: 'authorization_code', code: params.get('code') ?? '', redirect_uri: WEB_CALLBACK, code_verifier: started.verifier }, { authorization: basic('web', SECRETS.web) })
    t.equal(replay.status, 400)
    t.equal(replay.json.error, 'invalid_grant')
    const introspection = await postForm(`${url}/oauth2/introspect`, { token: first.access_token }, { authorization: basic('gateway', SECRETS.gateway) })
    t.equal(introspection.json.active, false, 'the access token from the first exchange is revoked')
    const refresh = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' }, { authorization: basic('web', SECRETS.web) })
    t.equal(refresh.json.error, 'invalid_grant', 'and so is its refresh token')
  })

  t.test('wrong verifier, wrong redirect_uri, wrong client', async (t) => {
    for (const [label, body, auth] of [
      ['wrong code_verifier', { code_verifier: oauth.generateRandomCodeVerifier(), redirect_uri: WEB_CALLBACK }, basic('web', SECRETS.web)],
      ['no code_verifier', { redirect_uri: WEB_CALLBACK, code_verifier: '' }, basic('web', SECRETS.web)],
      ['other redirect_uri', { redirect_uri: 'http://127.0.0.1:3000/other' }, basic('web', SECRETS.web)],
      ['another client', { redirect_uri: WEB_CALLBACK }, basic('cli', SECRETS.cli)]
    ] as const) {
      const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid' })
      const callback = await loginAndAllow(started)
      const code = new URL(callback.url).searchParams.get('code') ?? ''
      const res = await postForm(`${url}/oauth2/token`, { grant_type: 'authorization_code', code, ...('code_verifier' in body ? {} : { code_verifier: started.verifier }), ...body }, { authorization: auth })
      t.equal(res.json.error, label === 'another client' ? 'unauthorized_client' : 'invalid_grant', label)
    }
  })

  t.test('unregistered redirect_uri or unknown client: an error page, never a redirect', async (t) => {
    const browser = new Browser(url)
    for (const query of [
      `client_id=web&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&response_type=code`,
      `client_id=web&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/callback/extra')}&response_type=code`,
      `client_id=nobody&redirect_uri=${encodeURIComponent(WEB_CALLBACK)}&response_type=code`,
      'response_type=code'
    ]) {
      const page = await browser.request(`${url}/oauth2/authorise?${query}`)
      t.equal(page.status, 400, query)
      t.equal(page.headers.get('location'), null)
      t.match(page.headers.get('content-type'), /text\/html/)
    }
  })

  t.test('implicit: only for clients that opted in', async (t) => {
    const refused = await new Browser(url).request(`${url}/oauth2/authorise?response_type=token&client_id=spa&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/cb')}&state=x`)
    t.equal(new URL(refused.url.replace('#', '?')).searchParams.get('error'), 'unauthorized_client')
    const browser = new Browser(url)
    const page = await browser.request(`${url}/oauth2/authorise?response_type=token&client_id=legacy&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/legacy')}&scope=api:read&state=st`)
    const callback = await login(browser, page)
    const fragment = new URLSearchParams(new URL(callback.url).hash.slice(1))
    t.equal(new URL(callback.url).search, '', 'tokens in the fragment, not the query')
    t.equal(fragment.get('token_type'), 'Bearer')
    t.equal(fragment.get('state'), 'st')
    t.equal(fragment.get('iss'), url)
    t.equal(fragment.get('refresh_token'), null, 'never a refresh token')
    t.equal(decodeJwt(fragment.get('access_token') ?? '').client_id, 'legacy')
  })

  t.test('login: the same answer for unknown user and wrong password; CSRF enforced', async (t) => {
    const started = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK })
    const wrong = await login(started.browser, started.page, 'alice', 'nope')
    const unknown = await login(started.browser, started.page, 'mallory', 'alice-password')
    t.equal(wrong.status, 401)
    t.equal(unknown.status, 401)
    const message = (p: Page): string => /role="alert"[^>]*>([^<]*)</.exec(p.html)?.[1] ?? ''
    t.equal(message(wrong), message(unknown))
    t.not(message(wrong), '')
    const form = started.browser.form(started.page)
    const forged = await new Browser(url).request(form.action, { method: 'POST', body: new URLSearchParams({ ...form.fields, username: 'alice', password: 'alice-password' }).toString() })
    t.equal(forged.status, 403, 'a POST without the CSRF cookie is refused')
    t.match(started.page.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  })

  t.test('logout: ends the session, revokes refresh tokens and the sid, back-channel logout', async (t) => {
    receiver.received.length = 0
    const { tokens, browser } = await webLogin({ scope: 'openid offline_access api:read' })
    const sid = decodeJwt(tokens.access_token).sid
    const logout = new URL(as.end_session_endpoint ?? '')
    logout.searchParams.set('id_token_hint', tokens.id_token ?? '')
    logout.searchParams.set('post_logout_redirect_uri', 'http://127.0.0.1:3000/')
    logout.searchParams.set('state', 'bye')
    const page = await browser.request(logout.toString())
    t.equal(page.url, 'http://127.0.0.1:3000/?state=bye', 'back to the registered post-logout URI')
    const refresh = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' }, { authorization: basic('web', SECRETS.web) })
    t.equal(refresh.json.error, 'invalid_grant', 'refresh fails after logout')
    const introspection = await postForm(`${url}/oauth2/introspect`, { token: tokens.access_token }, { authorization: basic('gateway', SECRETS.gateway) })
    t.equal(introspection.json.active, false, 'the access token is revoked through its sid')
    const again = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, prompt: 'none' }, browser)
    t.equal(new URL(again.page.url).searchParams.get('error'), 'login_required', 'the SSO session is gone')

    const jwks = createRemoteJWKSet(new URL(as.jwks_uri ?? ''))
    t.same(receiver.received.map((r) => r.path).sort(), ['/client', '/rs'], 'the client and the resource server were told')
    for (const { path, logoutToken } of receiver.received) {
      const { payload, protectedHeader } = await jwtVerify(logoutToken, jwks, { issuer: url, audience: path === '/client' ? 'web' : 'demo-api', typ: 'logout+jwt' })
      t.equal(payload.sid, sid)
      t.equal(payload.sub, 'alice')
      t.ok(payload.events !== undefined && 'http://schemas.openid.net/event/backchannel-logout' in (payload.events as object))
      t.equal(payload.nonce, undefined)
      t.equal(protectedHeader.alg, 'ES256')
    }
  })

  t.test('logout without a hint asks first; an unregistered post_logout_redirect_uri is not followed', async (t) => {
    const { tokens, browser } = await webLogin()
    const confirm = await browser.request(`${url}/oauth2/logout?client_id=web&post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`)
    t.equal(confirm.status, 200)
    t.match(confirm.html, /name="confirm"/)
    const done = await browser.submit(confirm, {}, { name: 'confirm', value: 'yes' })
    t.equal(done.status, 200, 'the signed-out page, no redirect to an unregistered URI')
    t.equal(done.url.startsWith(url), true)
    const introspection = await postForm(`${url}/oauth2/introspect`, { token: tokens.access_token }, { authorization: basic('gateway', SECRETS.gateway) })
    t.equal(introspection.json.active, false)
    const twice = await browser.request(`${url}/oauth2/logout`)
    t.equal(twice.status, 200, 'logging out again is fine')
  })

  t.test('the gateway path: revoking an access token ends its session', async (t) => {
    const { tokens } = await webLogin({ scope: 'openid offline_access api:read' })
    const res = await postForm(`${url}/oauth2/revoke`, { token: tokens.access_token, token_type_hint: 'access_token' }, { authorization: basic('gateway', SECRETS.gateway) })
    t.equal(res.status, 200)
    const refresh = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' }, { authorization: basic('web', SECRETS.web) })
    t.equal(refresh.json.error, 'invalid_grant', 'the session\'s refresh tokens are revoked')
  })

  t.test('password grant tokens carry a session that logout can end', async (t) => {
    const res = await postForm(`${url}/oauth2/token`, { grant_type: 'password', username: 'bob', password: 'bob-password', scope: 'openid api:read' }, { authorization: basic('cli', SECRETS.cli) })
    t.type(decodeJwt(String(res.json.access_token)).sid, 'string')
    t.type(res.json.id_token, 'string')
  })
})
