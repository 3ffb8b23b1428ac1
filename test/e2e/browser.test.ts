/**
 * A real browser: Debian's headless Chromium, driven by playwright-core, through the seeds'
 * authorization code flow and logout with the demo's web app (demo-web, a confidential client
 * with its own server: the demo client app that `pnpm start` runs, packages/demo/src/client-app).
 * It opens the app, signs in as alice on the issuer's login page, allows on the consent page,
 * comes back with a code, has the app call /api through the gateway, refresh the tokens, and
 * log out (the gateway's logout, then the issuer's end_session_endpoint). Real processes:
 * redis-server, issuer, gateway, demo resource server, demo client app.
 *
 * Screenshots of the login and consent pages and of the app (desktop and phone width) are
 * written to $GATEHOUSE_SCREENSHOTS, or the test's directory; the test checks what a person would
 * see: the page styled (its stylesheet allowed by the page's CSP), no console errors, the fields
 * and buttons visible and labelled, nothing wider than a phone.
 *
 * The single-page app (demo-spa), cross-origin: browser-spa.test.ts.
 */
import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { bearer, DEMO, request, startClientApp, startStack, uniquePort, type GatewayProcess } from '../fixtures/processes.ts'
import type { Page } from 'playwright-core'
import { launchChromium, lookAt, watchProblems } from '../fixtures/chromium.ts'

const appPort = await uniquePort()
const appUrl = `http://127.0.0.1:${appPort}`
const stack = await startStack(t, {
  redis: true,
  issuer: {
    configure: (config) => {
      const web = config.clients.find((client) => client.clientId === 'demo-web')
      if (web === undefined) throw new Error('the demo issuer has no demo-web')
      web.redirectUris = [`${appUrl}/callback`]
      web.postLogoutRedirectUris = [`${appUrl}/`]
    }
  },
  // The echo then shows the access token the app sent (the demo's gateway forwards no
  // Authorization header): the test needs it to see it refused after the logout.
  gateways: [{ configure: (config) => { config.identityHeaders.forwardAuthorization = true } }]
})
const { issuer, resourceServer } = stack
const gateway = stack.gateways[0] as GatewayProcess
await startClientApp(t, { port: appPort, issuer, gateway, stack })

const shots = process.env.GATEHOUSE_SCREENSHOTS ?? join(stack.dir, 'screenshots')
mkdirSync(shots, { recursive: true })
const browser = await launchChromium(t)

interface Echo { path: string, headers: Record<string, string> }

/** Presses one of the app's form buttons and waits for the page it redirects back to. */
async function submit (page: Page, selector: string): Promise<void> {
  const landed = page.waitForResponse((res) => res.request().isNavigationRequest() && res.request().method() === 'GET' && res.url() === `${appUrl}/`)
  await page.click(selector)
  await landed
  await page.waitForLoadState()
}

t.test('a real browser: sign in, consent, the API through the gateway, log out', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  // Console errors other than HTTP statuses (a wrong password is a 401).
  const problems = watchProblems(page)

  const home = await page.goto(appUrl)
  t.equal(await page.textContent('#status'), 'Signed out')
  t.match(home?.headers()['content-security-policy'], /^default-src 'none'; style-src 'self';/, 'the app\'s page: a CSP with no script and no inline style')
  const appCookie = (await context.cookies(appUrl)).find((c) => c.name === 'demo_web_session')
  t.match(appCookie, { httpOnly: true, sameSite: 'Lax', path: '/' }, 'the app\'s session cookie is httpOnly')
  await lookAt(t, page, 'web-app-signed-out', shots)

  // The app sends the browser to the issuer; its login page.
  await page.click('#sign-in')
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  t.equal(new URL(page.url()).searchParams.get('code_challenge_method'), 'S256')
  t.equal(await page.title(), 'Sign in · Gatehouse')
  t.equal(await page.textContent('h1'), 'Sign in')
  t.ok(await page.getByLabel('Username').isVisible(), 'a labelled username field')
  t.ok(await page.getByLabel('Password').isVisible(), 'a labelled password field')
  await lookAt(t, page, 'login', shots)

  // A wrong password first: the same page, an error, nothing else.
  await page.getByLabel('Username').fill('alice')
  await page.getByLabel('Password').fill('not-her-password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForLoadState()
  t.match(await page.textContent('body'), /Invalid username or password/, 'a wrong password: told so on the login page')
  t.equal(await page.getByLabel('Username').inputValue(), 'alice', 'the username is kept')
  await lookAt(t, page, 'login-error', shots)

  await page.getByLabel('Password').fill(DEMO.passwords.alice ?? '')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('button', { name: 'Allow' }).waitFor()
  t.equal(await page.textContent('h1'), 'Demo Web App wants to access your account', 'the consent page names the app')
  const body = await page.textContent('body') ?? ''
  for (const words of ['Sign you in', 'See your name', 'See your email address', 'Read data from the demo API']) {
    t.match(body, words, `the consent page says: ${words}`)
  }
  t.ok(await page.getByRole('button', { name: 'Deny' }).isVisible(), 'and offers to deny')
  await lookAt(t, page, 'consent', shots)

  // Allow: back to the app with a code, which it exchanges.
  await page.getByRole('button', { name: 'Allow' }).click()
  await page.waitForURL(`${appUrl}/`)
  t.equal(await page.textContent('#user'), 'alice', 'the app has alice\'s tokens')
  // The ID token's claims, as the app shows them.
  const claim = async (name: string): Promise<string | null> => await page.textContent(`#claims td[data-claim="${name}"]`)
  t.equal(await claim('sub'), 'alice')
  t.equal(await claim('aud'), 'demo-web')
  t.equal(await claim('iss'), issuer.url)
  t.equal(await claim('email'), 'alice@example.com', 'the email scope\'s claims')
  const sid = await claim('sid') ?? ''
  t.match(sid, /^[\w-]{16,}$/, 'the session id')
  t.match(await page.textContent('#scope'), /\bapi:read\b/)
  t.notOk((await page.content()).includes('eyJ'), 'no token in the page: the tokens stay on the app\'s server')
  t.same((await context.cookies(appUrl)).map((c) => c.name), ['demo_web_session'], 'the browser holds only the app\'s session cookie')
  t.not((await context.cookies(appUrl)).find((c) => c.name === 'demo_web_session')?.value, appCookie?.value, 'a new session id after the sign-in')
  // Over http the issuer's cookies live under /oauth2 only, so the gateway on this host never sees them.
  const ssoCookie = (await context.cookies(`${issuer.url}/oauth2/authorise`)).find((c) => c.name === 'gatehouse_session')
  t.match(ssoCookie, { httpOnly: true, path: '/oauth2', sameSite: 'Lax' }, 'the SSO cookie is httpOnly and scoped to the issuer\'s pages')
  t.notOk((await context.cookies(`${gateway.url}/api/hello`)).some((c) => c.name.startsWith('gatehouse_')), 'the gateway\'s paths carry no issuer cookie')

  // The API through the gateway.
  await submit(page, '#call-api')
  t.equal(await page.textContent('#api-status'), '200')
  const echo = JSON.parse(await page.textContent('#api-result') ?? '{}') as Echo
  t.equal(echo.path, '/api/hello')
  t.equal(echo.headers['x-auth-subject'], 'alice', 'the resource server learns who called')
  t.equal(echo.headers['x-auth-client-id'], 'demo-web')
  const accessToken = /^Bearer (\S+)$/.exec(echo.headers.authorization ?? '')?.[1] ?? ''
  t.match(accessToken, /^ey/, 'the app sent its access token (shown by the echo in this test only)')
  await lookAt(t, page, 'web-app-signed-in', shots)

  // Refresh: a new access token, a later expiry.
  const expiresAt = await page.getAttribute('#expires-at', 'datetime') ?? ''
  await submit(page, '#refresh')
  t.equal(await page.textContent('#refresh-count'), '1', 'refreshed once')
  t.ok(Date.parse(await page.getAttribute('#expires-at', 'datetime') ?? '') > Date.parse(expiresAt), 'the access token\'s expiry moved on')
  await submit(page, '#call-api')
  const after = JSON.parse(await page.textContent('#api-result') ?? '{}') as Echo
  const refreshedToken = /^Bearer (\S+)$/.exec(after.headers.authorization ?? '')?.[1] ?? ''
  t.equal(await page.textContent('#api-status'), '200', 'the API with the new access token')
  t.not(refreshedToken, accessToken, 'a new access token')

  // Log out: the gateway's logout, then the issuer's end_session_endpoint, then back to the app.
  await page.click('#log-out')
  await page.waitForURL(`${appUrl}/?state=*`)
  t.equal(await page.textContent('#status'), 'Signed out')
  t.equal(await page.textContent('#logout-status'), '200', 'the gateway said: logout successful')
  const logout = JSON.parse(await page.textContent('#logout-result') ?? '{}') as { revoked: boolean, session_ended: boolean, sid: string, notified: Array<{ ok: boolean }> }
  t.match(logout, { revoked: true, session_ended: true, sid, notified: [{ ok: true }] })
  t.ok((await resourceServer.loggedOutSessions()).some((s) => s.sid === sid), 'the resource server received the back-channel logout')
  for (const [which, token] of [['first', accessToken], ['refreshed', refreshedToken]]) {
    const refused = await request(`${gateway.url}/api/hello`, { headers: bearer(token ?? '') })
    t.equal(refused.status, 401, `the ${which} access token is refused by the gateway`)
  }
  t.notOk((await context.cookies(`${issuer.url}/oauth2/authorise`)).some((c) => c.name === 'gatehouse_session'), 'the issuer cleared its SSO cookie')

  // Signing in again needs the password again.
  await page.click('#sign-in')
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  t.equal(await page.textContent('h1'), 'Sign in', 'the login page, not a silent sign-in')

  t.same(problems, [], 'no console errors and no page errors (no CSP violations)')
})
