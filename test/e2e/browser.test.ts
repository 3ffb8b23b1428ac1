/**
 * A real browser: Debian's headless Chromium, driven by playwright-core, through the seeds'
 * authorization code flow and logout. It opens a small web application (demo-web, a
 * confidential client with its own server: test/fixtures/client-app.ts), signs in as alice on
 * the issuer's login page, allows on the consent page, comes back with a code, has the app call
 * /api through the gateway, and logs out (the gateway's logout, then the issuer's
 * end_session_endpoint). Real processes: redis-server, issuer, gateway, demo resource server.
 *
 * Screenshots of the login and consent pages (desktop and phone width) are written to
 * $GATEHOUSE_SCREENSHOTS, or the test's directory; the test checks what a person would see:
 * the page styled (its stylesheet allowed by the page's CSP), no console errors, the fields and
 * buttons visible and labelled, nothing wider than a phone.
 *
 * Chromium: $CHROMIUM_PATH, else /usr/bin/chromium (`apt-get install chromium`; .ci/run does).
 */
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import { bearer, DEMO, request, startStack, uniquePort, type GatewayProcess } from '../fixtures/processes.ts'
import { discover } from '../fixtures/oauth.ts'
import { startClientApp } from '../fixtures/client-app.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`)
}

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
  }
})
const { issuer, resourceServer } = stack
const gateway = stack.gateways[0] as GatewayProcess
const as = await discover(issuer)
const app = await startClientApp(t, { port: appPort, as, client: DEMO.web, gateway: gateway.url, scope: 'openid profile email api:read' })

const shots = process.env.GATEHOUSE_SCREENSHOTS ?? join(stack.dir, 'screenshots')
mkdirSync(shots, { recursive: true })

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
})
t.teardown(async () => { await browser.close() })

/** Width and height from a PNG's IHDR chunk. */
function pngSize (file: string): { width: number, height: number } {
  const png = readFileSync(file)
  if (png.subarray(1, 4).toString() !== 'PNG') throw new Error(`${file} is not a PNG`)
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

/** Screenshots `page` at desktop and phone widths and checks it as a person would. */
async function lookAt (t: Test, page: Page, name: string): Promise<void> {
  for (const [device, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]] as const) {
    await page.setViewportSize(viewport)
    const file = join(shots, `${name}-${device}.png`)
    await page.screenshot({ path: file, fullPage: true })
    const size = pngSize(file)
    t.equal(size.width, viewport.width, `${name} (${device}): screenshot ${file}`)
    t.ok(readFileSync(file).length > 8_000, `${name} (${device}): the screenshot has content`)
    const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number
    t.ok(overflow <= 0, `${name} (${device}): nothing wider than the screen`)
  }
  await page.setViewportSize({ width: 1280, height: 800 })
  // The stylesheet is inline with a hash in the CSP: if the hash were wrong, the page would be bare.
  const primary = page.locator('button.primary')
  t.equal(await page.evaluate('getComputedStyle(document.querySelector("button.primary")).backgroundColor'), 'rgb(29, 78, 216)', `${name}: styled (the CSP allows its stylesheet)`)
  t.ok(await primary.isVisible(), `${name}: the main button is visible`)
}

t.test('a real browser: sign in, consent, the API through the gateway, log out', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  const problems: string[] = []
  // Console errors other than HTTP statuses (the app has no favicon; a wrong password is a 401).
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`${page.url()}: ${message.text()}`)
  })
  page.on('pageerror', (err) => { problems.push(`${page.url()}: ${err.message}`) })

  await page.goto(appUrl)
  t.equal(await page.textContent('#status'), 'Signed out')

  // The app sends the browser to the issuer; its login page.
  await page.click('#sign-in')
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  t.equal(new URL(page.url()).searchParams.get('code_challenge_method'), 'S256')
  t.equal(await page.title(), 'Sign in · Gatehouse')
  t.equal(await page.textContent('h1'), 'Sign in')
  t.ok(await page.getByLabel('Username').isVisible(), 'a labelled username field')
  t.ok(await page.getByLabel('Password').isVisible(), 'a labelled password field')
  await lookAt(t, page, 'login')

  // A wrong password first: the same page, an error, nothing else.
  await page.getByLabel('Username').fill('alice')
  await page.getByLabel('Password').fill('not-her-password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForLoadState()
  t.match(await page.textContent('body'), /Invalid username or password/, 'a wrong password: told so on the login page')
  t.equal(await page.getByLabel('Username').inputValue(), 'alice', 'the username is kept')
  await lookAt(t, page, 'login-error')

  await page.getByLabel('Password').fill(DEMO.passwords.alice ?? '')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('button', { name: 'Allow' }).waitFor()
  t.equal(await page.textContent('h1'), 'Demo Web App wants to access your account', 'the consent page names the app')
  const body = await page.textContent('body') ?? ''
  for (const words of ['Sign you in', 'See your name', 'See your email address', 'Read data from the demo API']) {
    t.match(body, words, `the consent page says: ${words}`)
  }
  t.ok(await page.getByRole('button', { name: 'Deny' }).isVisible(), 'and offers to deny')
  await lookAt(t, page, 'consent')

  // Allow: back to the app with a code, which it exchanges.
  await page.getByRole('button', { name: 'Allow' }).click()
  await page.waitForURL(`${appUrl}/`)
  t.equal(await page.textContent('#user'), 'alice', 'the app has alice\'s tokens')
  const tokens = app.lastTokens
  if (tokens === undefined) throw new Error('the app got no tokens')
  const sid = JSON.parse(Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString()).sid as string
  t.type(sid, 'string')
  // Over http the issuer's cookies live under /oauth2 only, so the gateway on this host never sees them.
  const ssoCookie = (await context.cookies(`${issuer.url}/oauth2/authorise`)).find((c) => c.name === 'gatehouse_session')
  t.match(ssoCookie, { httpOnly: true, path: '/oauth2', sameSite: 'Lax' }, 'the SSO cookie is httpOnly and scoped to the issuer\'s pages')
  t.notOk((await context.cookies(`${gateway.url}/api/hello`)).some((c) => c.name.startsWith('gatehouse_')), 'the gateway\'s paths carry no issuer cookie')

  // The API through the gateway.
  await page.click('#call-api')
  await page.waitForSelector('#api-status')
  t.equal(await page.textContent('#api-status'), '200')
  const echo = JSON.parse(await page.textContent('#api-result') ?? '{}') as { path: string, headers: Record<string, string> }
  t.equal(echo.path, '/api/hello')
  t.equal(echo.headers['x-auth-subject'], 'alice', 'the resource server learns who called')
  t.equal(echo.headers['x-auth-client-id'], 'demo-web')

  // Log out: the gateway's logout, then the issuer's end_session_endpoint, then back to the app.
  await page.click('#log-out')
  await page.waitForURL(`${appUrl}/?state=*`)
  t.equal(await page.textContent('#status'), 'Signed out')
  t.equal(await page.textContent('#logout-status'), '200', 'the gateway said: logout successful')
  const logout = JSON.parse(await page.textContent('#logout-result') ?? '{}') as { revoked: boolean, session_ended: boolean, sid: string, notified: Array<{ ok: boolean }> }
  t.match(logout, { revoked: true, session_ended: true, sid, notified: [{ ok: true }] })
  t.ok((await resourceServer.loggedOutSessions()).some((s) => s.sid === sid), 'the resource server received the back-channel logout')
  const refused = await request(`${gateway.url}/api/hello`, { headers: bearer(tokens.access_token) })
  t.equal(refused.status, 401, 'the old access token is refused by the gateway')
  t.notOk((await context.cookies(`${issuer.url}/oauth2/authorise`)).some((c) => c.name === 'gatehouse_session'), 'the issuer cleared its SSO cookie')

  // Signing in again needs the password again.
  await page.click('#sign-in')
  await page.waitForURL(`${issuer.url}/oauth2/authorise?**`)
  t.equal(await page.textContent('h1'), 'Sign in', 'the login page, not a silent sign-in')

  t.same(problems, [], 'no console errors and no page errors (no CSP violations)')
})
