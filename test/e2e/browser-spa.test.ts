/**
 * The demo's single-page app (demo-spa, a public client) in a real browser: Debian's headless
 * Chromium, driven by playwright-core, on the page the demo client app serves at /spa/. Its
 * script does the OAuth work in the browser (oauth4webapi, PKCE by WebCrypto), so every
 * request with a token is a cross-origin request that CORS must allow:
 *
 * - from the registered origin (`http://127.0.0.1:<app port>`): sign-in as alice, the code
 *   exchanged by a cross-origin POST to the issuer's token endpoint, /api through the gateway
 *   with a Bearer token (a preflight first), a refresh, a reload that forgets the tokens, the
 *   gateway's logout and the issuer's end_session_endpoint; afterwards the tokens are refused;
 * - the same page from another origin (`http://localhost:<app port>`, the same app under
 *   another host name): the browser blocks the token request and the gateway calls. The page's
 *   fetch rejects with a TypeError, the browser reports a CORS block, and the servers, asked
 *   the same from Node, answered without a server error: the token request was even carried
 *   out (its code is spent), the browser only kept the answer from the page; the preflight kept
 *   the logout from being sent at all.
 *
 * Real processes: issuer, gateway, demo resource server, demo client app.
 */
import t, { type Test } from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Page, Response } from 'playwright-core'
import { bearer, DEMO, request, startClientApp, startStack, uniquePort, userSession, waitFor, type GatewayProcess } from '../fixtures/processes.ts'
import { launchChromium, lookAt, watchProblems } from '../fixtures/chromium.ts'

const appPort = await uniquePort()
const appUrl = `http://127.0.0.1:${appPort}`
// The same app reached by another host name: another origin to the browser.
const otherUrl = `http://localhost:${appPort}`

const stack = await startStack(t, {
  issuer: {
    configure: (config) => {
      const spa = config.clients.find((client) => client.clientId === 'demo-spa')
      if (spa === undefined) throw new Error('the demo issuer has no demo-spa')
      // The other origin's redirect URI is registered, so its sign-in gets as far as the token
      // request; its origin is left out of webOrigins (which would default to both), so that
      // request must be blocked by the browser.
      spa.redirectUris = [`${appUrl}/spa/callback`, `${otherUrl}/spa/callback`]
      spa.postLogoutRedirectUris = [`${appUrl}/spa/`]
      spa.webOrigins = [appUrl]
    }
  },
  gateways: [{
    configure: (config) => {
      const api = config.routes.find((route) => route.prefix === '/api')
      if (api?.cors === undefined || config.logout.cors === undefined) throw new Error('the demo gateway has no CORS on /api or on its logout')
      api.cors.origins = [appUrl]
      config.logout.cors.origins = [appUrl]
    }
  }]
})
const { issuer } = stack
const gateway = stack.gateways[0] as GatewayProcess
await startClientApp(t, { port: appPort, issuer, gateway, stack })

const shots = process.env.GATEHOUSE_SCREENSHOTS ?? join(stack.dir, 'screenshots')
mkdirSync(shots, { recursive: true })
const browser = await launchChromium(t)

const tokenEndpoint = `${issuer.url}/oauth2/token`

interface TokenAnswer { status: number, allowOrigin: string | undefined, body: { access_token: string, refresh_token: string, id_token: string, expires_in: number } }

/** Every answer of the token endpoint the page could read. */
function tokenAnswers (page: Page): TokenAnswer[] {
  const answers: TokenAnswer[] = []
  page.on('response', (res: Response) => {
    if (res.url() !== tokenEndpoint || res.request().method() !== 'POST') return
    res.json().then((body: TokenAnswer['body']) => {
      answers.push({ status: res.status(), allowOrigin: res.headers()['access-control-allow-origin'], body })
    }, () => {})
  })
  return answers
}

/** Waits until the page's #status matches; returns its text. */
async function waitForStatus (page: Page, pattern: RegExp): Promise<string> {
  await page.locator('#status', { hasText: pattern }).waitFor()
  return await page.textContent('#status') ?? ''
}

/** Waits for `selector` to show, or the page's error (then fails with its text). */
async function outcome (t: Test, page: Page, selector: string): Promise<void> {
  await page.locator(`${selector}:not([hidden]), #error:not([hidden])`).first().waitFor()
  if (await page.isVisible('#error')) t.fail(`the page shows an error: ${await page.textContent('#error')}`)
}

/** The issuer's login page, filled in as alice. */
async function signInAtIssuer (page: Page): Promise<void> {
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  await page.getByLabel('Username').fill('alice')
  await page.getByLabel('Password').fill(DEMO.passwords.alice ?? '')
  await page.getByRole('button', { name: 'Sign in' }).click()
}

t.test('from its registered origin: sign in, the API through the gateway, refresh, log out', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  const problems = watchProblems(page)
  const answers = tokenAnswers(page)

  const first = await page.goto(`${appUrl}/spa/`)
  t.equal(await waitForStatus(page, /^Signed out$/), 'Signed out', 'the page\'s script ran (its CSP allows it)')
  const csp = first?.headers()['content-security-policy'] ?? ''
  t.match(csp, /(^|; )script-src 'self'(;|$)/, 'scripts from the app itself only')
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'no inline script or eval')
  t.match(csp, new RegExp(`connect-src ${issuer.url} ${gateway.url}(;|$)`), 'requests to the issuer and the gateway only')
  t.match(await page.textContent('#memory-note'), /a reload, or closing the tab, forgets them/, 'the page says a reload loses the tokens')
  await lookAt(t, page, 'spa-signed-out', shots)

  // The authorization request, built in the browser.
  await page.click('#sign-in')
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  const authorization = new URL(page.url()).searchParams
  t.match(Object.fromEntries(authorization), {
    response_type: 'code',
    client_id: 'demo-spa',
    redirect_uri: `${appUrl}/spa/callback`,
    code_challenge_method: 'S256',
    code_challenge: /^[\w-]{43}$/,
    state: /^[\w-]{22,}$/,
    nonce: /^[\w-]{22,}$/
  }, 'PKCE S256, state and nonce')
  await signInAtIssuer(page)

  // Back at /spa/callback: the code exchanged by the page, cross-origin.
  t.equal(await waitForStatus(page, /^Signed (in as|out)/), 'Signed in as alice')
  t.equal(await page.isVisible('#error') ? await page.textContent('#error') : '', '', 'no error')
  t.equal(new URL(page.url()).pathname, '/spa/', 'the code is out of the address bar')
  t.equal(answers.length, 1, 'one token request')
  t.match(answers[0], { status: 200, allowOrigin: appUrl }, 'the issuer allowed this origin to read the tokens')
  const signedIn = answers[0]?.body
  if (signedIn === undefined) throw new Error('no tokens')
  const claim = async (name: string): Promise<string | null> => await page.textContent(`#claims td[data-claim="${name}"]`)
  t.equal(await claim('sub'), 'alice')
  t.equal(await claim('aud'), 'demo-spa')
  t.equal(await claim('nonce'), authorization.get('nonce'), 'the ID token carries the nonce sent')
  const sid = await claim('sid') ?? ''
  t.match(sid, /^[\w-]{16,}$/)
  // Memory only: nothing in storage, no cookie for the app.
  t.same(await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]'), [0, 0, ''], 'no localStorage, sessionStorage or cookie')
  t.same(await context.cookies(`${appUrl}/spa/`), [], 'the browser holds no cookie for the app')

  // The API through the gateway, cross-origin with a Bearer token.
  const apiCall = page.waitForRequest(`${gateway.url}/api/hello`)
  await page.click('#call-api')
  t.equal((await (await apiCall).allHeaders()).authorization, `Bearer ${signedIn.access_token}`, 'the page sent its access token')
  await outcome(t, page, '#api')
  t.equal(await page.textContent('#api-status'), '200', 'the gateway answered the page')
  const echo = JSON.parse(await page.textContent('#api-result') ?? '{}') as { path: string, headers: Record<string, string> }
  t.equal(echo.path, '/api/hello')
  t.equal(echo.headers['x-auth-subject'], 'alice', 'the resource server learns who called')
  t.equal(echo.headers['x-auth-client-id'], 'demo-spa')
  t.equal(echo.headers.origin, appUrl, 'the call came from the page\'s origin')

  // Refresh: a new access token and refresh token, a later expiry.
  const expiresAt = await page.getAttribute('#expires-at', 'datetime') ?? ''
  await page.click('#refresh')
  await outcome(t, page, '#refresh-result')
  t.equal(await page.textContent('#refresh-count'), '1', 'refreshed once')
  t.ok(Date.parse(await page.getAttribute('#expires-at', 'datetime') ?? '') > Date.parse(expiresAt), 'the new expiry is shown')
  t.equal(answers.length, 2, 'a second token request')
  const refreshed = answers[1]?.body
  t.match(answers[1], { status: 200, allowOrigin: appUrl })
  t.not(refreshed?.access_token, signedIn.access_token, 'a new access token')
  t.not(refreshed?.refresh_token, signedIn.refresh_token, 'a new refresh token (rotation)')
  const secondCall = page.waitForRequest(`${gateway.url}/api/hello`)
  await page.click('#call-api')
  t.equal((await (await secondCall).allHeaders()).authorization, `Bearer ${refreshed?.access_token}`, 'the API with the new access token')
  await lookAt(t, page, 'spa-signed-in', shots)

  // A reload forgets the tokens (memory only); the issuer's SSO session signs alice in again
  // without the password.
  await page.reload()
  t.equal(await waitForStatus(page, /^Signed out$/), 'Signed out', 'a reload forgets the tokens')
  const exchanged = page.waitForResponse(tokenEndpoint)
  await page.click('#sign-in')
  await exchanged
  t.equal(await waitForStatus(page, /^Signed (in as|out)/), 'Signed in as alice', 'signed in again through the SSO session')
  t.equal(answers.length, 3)
  const again = answers[2]?.body
  t.equal(await claim('sid'), sid, 'the same SSO session')

  // Log out: the gateway's logout (cross-origin, with the token), then the issuer's
  // end_session_endpoint, back to /spa/.
  const logoutAnswer = page.waitForResponse(`${gateway.url}/oauth2/logout`)
  await page.click('#log-out')
  t.equal((await logoutAnswer).status(), 200, 'the gateway\'s logout answered the page')
  await page.waitForURL(`${appUrl}/spa/`)
  t.equal(await waitForStatus(page, /^Signed out$/), 'Signed out', 'back from the issuer, signed out')
  for (const [which, token] of [['first', signedIn.access_token], ['refreshed', refreshed?.access_token], ['last', again?.access_token]]) {
    const refused = await request(`${gateway.url}/api/hello`, { headers: bearer(token ?? '') })
    t.equal(refused.status, 401, `the ${which} access token is refused by the gateway`)
  }
  t.ok((await stack.resourceServer.loggedOutSessions()).some((s) => s.sid === sid), 'the resource server received the back-channel logout of the session')
  t.notOk((await context.cookies(`${issuer.url}/oauth2/authorise`)).some((c) => c.name === 'gatehouse_session'), 'the issuer cleared its SSO cookie')
  await page.click('#sign-in')
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  t.equal(await page.textContent('h1'), 'Sign in', 'signing in again needs the password')

  t.same(problems, [], 'no console errors and no page errors (no CSP violations)')
})

t.test('the gateway\'s logout fails: the page still ends the session at the issuer (review finding)', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  const answers = tokenAnswers(page)
  await page.goto(`${appUrl}/spa/`)
  await page.click('#sign-in')
  await signInAtIssuer(page)
  t.equal(await waitForStatus(page, /^Signed (in as|out)/), 'Signed in as alice')
  const tokens = answers[0]?.body
  if (tokens === undefined) throw new Error('no tokens')
  // As when the access token expired (401) or the gateway is unreachable: no usable answer.
  await page.route(`${gateway.url}/oauth2/logout`, async (route) => { await route.abort('connectionrefused') })
  await page.click('#log-out')
  await page.waitForURL(`${appUrl}/spa/`)
  t.equal(await waitForStatus(page, /^Signed out$/), 'Signed out', 'signed out all the same')
  t.notOk((await context.cookies(`${issuer.url}/oauth2/authorise`)).some((c) => c.name === 'gatehouse_session'), 'the issuer ended the SSO session')
  const refresh = await request<{ error: string }>(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'demo-spa', refresh_token: tokens.refresh_token }).toString()
  })
  t.match(refresh, { status: 400, body: { error: 'invalid_grant' } }, 'its refresh token is dead')
  await waitFor('the gateway to refuse the access token', async () => (await request(`${gateway.url}/api/hello`, { headers: bearer(tokens.access_token) })).status === 401 ? true : undefined)
  t.pass('and the gateway refuses its access token (the issuer told it)')
})

t.test('the same page from another origin: the browser blocks the token request and the gateway calls', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  const blocked = /has been blocked by CORS policy/
  const consoleErrors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()) })
  const problems = watchProblems(page, [blocked])
  let code: string | undefined
  page.on('request', (req) => {
    const url = new URL(req.url())
    if (url.origin === otherUrl && url.pathname === '/spa/callback') code = url.searchParams.get('code') ?? undefined
  })
  const answers = tokenAnswers(page)

  await page.goto(`${otherUrl}/spa/`)
  t.equal(await waitForStatus(page, /^Signed out$/), 'Signed out', 'the page runs there too')
  await page.click('#sign-in')
  await signInAtIssuer(page)
  t.equal(await waitForStatus(page, /^Signed (in as|out)/), 'Signed out', 'back from the issuer, not signed in')
  t.ok(await page.isVisible('#error'), 'an error is shown')
  t.equal(await page.textContent('#error-step'), 'The token request', 'the token request failed')
  t.equal(await page.textContent('#error-name'), 'TypeError', 'the page\'s fetch rejected with a TypeError: no answer it may read')
  t.equal(await page.textContent('#error-message'), 'Failed to fetch')
  t.ok(await page.isVisible('#error-hint'), 'the page explains a CORS block')
  t.equal(answers.length, 0, 'the browser gave the page no token answer')
  t.ok(consoleErrors.some((line) => line.startsWith(`Access to fetch at '${tokenEndpoint}' from origin '${otherUrl}' has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header`)), 'the browser reports a CORS block of the token request')
  t.notOk(consoleErrors.some((line) => /Content Security Policy/.test(line)), 'not the page\'s CSP')

  // The issuer did answer: a form POST needs no preflight, so the request went through and the
  // code was redeemed; only the answer was kept from the page.
  if (code === undefined) throw new Error('no code reached the callback')
  const replay = await request<{ error: string, error_description: string }>(tokenEndpoint, {
    method: 'POST',
    headers: { origin: otherUrl, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'demo-spa', code, redirect_uri: `${otherUrl}/spa/callback`, code_verifier: 'x'.repeat(43) }).toString()
  })
  t.match(replay, { status: 400, body: { error: 'invalid_grant', error_description: /already used/ } }, 'the page\'s token request was carried out: its code is spent (no server error)')
  t.equal(replay.headers.get('access-control-allow-origin'), null, 'the issuer allows no script of this origin to read its answers')

  // The gateway, with a valid token for alice: from this origin the preflight fails, so the
  // browser sends neither the call nor the logout.
  const { access_token: token } = await userSession(issuer, { scope: 'openid api:read' })
  const fetchFromPage = async (url: string, method: string): Promise<{ status?: number, name?: string, message?: string }> => {
    return await page.evaluate(async ([url, method, token]) => {
      try {
        const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}` } })
        return { status: res.status }
      } catch (err) {
        return { name: (err as Error).name, message: (err as Error).message }
      }
    }, [url, method, token] as const)
  }
  t.same(await fetchFromPage(`${gateway.url}/api/hello`, 'GET'), { name: 'TypeError', message: 'Failed to fetch' }, 'the API call: the page\'s fetch rejects')
  t.same(await fetchFromPage(`${gateway.url}/oauth2/logout`, 'POST'), { name: 'TypeError', message: 'Failed to fetch' }, 'the logout: the page\'s fetch rejects')
  for (const path of ['/api/hello', '/oauth2/logout']) {
    t.ok(consoleErrors.some((line) => line.startsWith(`Access to fetch at '${gateway.url}${path}' from origin '${otherUrl}' has been blocked by CORS policy: Response to preflight request doesn't pass access control check`)), `the browser reports the failed preflight for ${path}`)
  }
  const preflight = async (origin: string, path: string, method: string): Promise<{ status: number, allowOrigin: string | null }> => {
    const res = await request(`${gateway.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization' } })
    return { status: res.status, allowOrigin: res.headers.get('access-control-allow-origin') }
  }
  for (const [path, method] of [['/api/hello', 'GET'], ['/oauth2/logout', 'POST']] as const) {
    const refused = await preflight(otherUrl, path, method)
    t.ok(refused.status < 500, `${path}: the gateway answers the other origin's preflight without a server error (${refused.status})`)
    t.equal(refused.allowOrigin, null, `${path}: and allows nothing`)
    t.equal((await preflight(appUrl, path, method)).allowOrigin, appUrl, `${path}: the registered origin's preflight is allowed`)
  }
  const still = await request(`${gateway.url}/api/hello`, { headers: bearer(token) })
  t.equal(still.status, 200, 'the token still works: the blocked logout never reached the gateway')

  t.same(problems, [], 'no other console errors and no page errors')
})
