/**
 * Sign-in throttling (issue 9 items 1 and 2): FAILED sign-ins are counted per username and per
 * client IP, on the login page and the password grant alike; a locked username is refused even
 * with the right password until its window ends; a success clears the username's failures.
 * Also userinfo's RFC 6750 errors.
 */
import t from 'tap'
import { forEachStore, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { Browser, type Page } from './fixtures/browser.ts'
import { MovableClock } from './fixtures/flows.ts'

const CALLBACK = 'http://127.0.0.1:3000/cb'
// `spa` needs no consent: a successful sign-in redirects straight to the callback with a code.
const authorize = (url: string): string => `${url}/oauth2/authorise?response_type=code&client_id=spa&redirect_uri=${encodeURIComponent(CALLBACK)}&code_challenge=${'A'.repeat(43)}&code_challenge_method=S256`

/** One sign-in on the login page, in a fresh browser (a kiosk, or an e2e test). */
async function signIn (url: string, username: string, password: string): Promise<Page> {
  const browser = new Browser(url)
  return await browser.submit(await browser.request(authorize(url)), { username, password })
}

const isSignedIn = (page: Page): boolean => page.url.startsWith(`${CALLBACK}?code=`)

const passwordGrant = async (url: string, username: string, password: string): Promise<Awaited<ReturnType<typeof postForm>>> =>
  await postForm(`${url}/oauth2/token`, { grant_type: 'password', username, password, scope: 'api:read' }, { authorization: basic('cli', SECRETS.cli) })

forEachStore(t, async (t, kind) => {
  t.test('50 successful sign-ins of one user inside a minute all succeed (defaults)', async (t) => {
    const { url } = await startIssuer(t, kind, 'rateLimit: { window: 60 }\n')
    let signedIn = 0
    for (let i = 0; i < 50; i++) if (isSignedIn(await signIn(url, 'alice', 'alice-password'))) signedIn++
    t.equal(signedIn, 50)
  })

  t.test('10 wrong passwords lock the username for the window, the right one included', async (t) => {
    const clock = new MovableClock()
    const { url } = await startIssuer(t, kind, 'rateLimit: { loginWindow: 300 }\n', { clock })
    const statuses: number[] = []
    for (let i = 0; i < 10; i++) statuses.push((await signIn(url, 'alice', 'wrong')).status)
    t.same(statuses, Array(10).fill(401), 'the defaults allow 10 failures')
    const locked = await signIn(url, 'alice', 'alice-password')
    t.equal(locked.status, 429, 'the right password is refused while locked')
    const retryAfter = Number(locked.headers.get('retry-after'))
    t.ok(retryAfter > 0 && retryAfter <= 300, `Retry-After ${retryAfter} within the window`)
    t.match(locked.html, /Too many failed sign-ins for this username\. Try again in 5 minutes\./, 'the login page says so')
    t.match(locked.html, /name="password"/, 'and still offers the form')
    t.equal((await signIn(url, 'ALICE', 'alice-password')).status, 429, 'the count is per username, whatever its case')
    t.equal((await passwordGrant(url, 'alice', 'alice-password')).status, 429, 'the password grant is locked too')
    t.ok(isSignedIn(await signIn(url, 'bob', 'bob-password')), 'another user is not affected')
    clock.advance(301)
    t.ok(isSignedIn(await signIn(url, 'alice', 'alice-password')), 'the lock ends with the window')
  })

  t.test('a successful sign-in clears the username\'s failures', async (t) => {
    const { url } = await startIssuer(t, kind, 'rateLimit: { loginPerUsername: 3, loginPerIp: 100 }\n')
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) t.equal((await signIn(url, 'alice', 'wrong')).status, 401)
      t.ok(isSignedIn(await signIn(url, 'alice', 'alice-password')), `round ${round}: signed in`)
    }
    for (let i = 0; i < 2; i++) t.equal((await passwordGrant(url, 'alice', 'wrong')).status, 400)
    t.equal((await passwordGrant(url, 'alice', 'alice-password')).status, 200, 'the password grant clears them too')
    t.equal((await signIn(url, 'alice', 'wrong')).status, 401)
  })

  t.test('per IP: failures over every username; the IP cap is separate and higher', async (t) => {
    const { url } = await startIssuer(t, kind, 'rateLimit: { loginPerUsername: 2, loginPerIp: 5 }\n')
    for (let i = 0; i < 12; i++) t.ok(isSignedIn(await signIn(url, 'bob', 'bob-password')), `success ${i + 1} is not counted`)
    for (const user of ['u1', 'u2', 'u3', 'u4', 'u5']) t.equal((await signIn(url, user, 'x')).status, 401, `${user}: wrong`)
    const locked = await signIn(url, 'alice', 'alice-password')
    t.equal(locked.status, 429, 'the 6th failure of this address locks it: even the right password of another user')
    t.match(locked.html, /Too many failed sign-ins from this network address/)
    t.equal((await passwordGrant(url, 'bob', 'bob-password')).status, 429, 'the password grant shares the address\'s count')
    t.equal((await new Browser(url).request(authorize(url))).status, 200, 'showing the login page is not refused')
  })

  t.test('password grant: 30 wrong passwords get 429 past the limit; the right one too while locked', async (t) => {
    const clock = new MovableClock()
    const { url } = await startIssuer(t, kind, 'rateLimit: { loginWindow: 300 }\n', { clock })
    const statuses: number[] = []
    for (let i = 0; i < 30; i++) statuses.push((await passwordGrant(url, 'bob', `guess-${i}`)).status)
    t.same(statuses, [...Array(10).fill(400), ...Array(20).fill(429)])
    const locked = await passwordGrant(url, 'bob', 'bob-password')
    t.equal(locked.status, 429)
    t.same(locked.json, { error: 'temporarily_unavailable', error_description: 'too many failed sign-ins for this username, try again later' }, 'an RFC 6749 5.2 body')
    const retryAfter = Number(locked.headers.get('retry-after'))
    t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 300, `Retry-After ${retryAfter}`)
    t.equal(locked.headers.get('cache-control'), 'no-store')
    t.equal((await signIn(url, 'bob', 'bob-password')).status, 429, 'the login page is locked by the same count')
    t.equal((await passwordGrant(url, 'alice', 'alice-password')).status, 200, 'another user is served')
    clock.advance(301)
    t.equal((await passwordGrant(url, 'bob', 'bob-password')).status, 200, 'served once the window has ended')
  })
})

t.test('userinfo errors (RFC 6750)', async (t) => {
  const { url } = await startIssuer(t, 'memory')
  const none = await fetch(`${url}/oauth2/userinfo`)
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^Bearer error="invalid_token"/)
  const junk = await fetch(`${url}/oauth2/userinfo`, { headers: { authorization: 'Bearer not-a-token' } })
  t.equal(junk.status, 401)
  const token = await postForm(`${url}/oauth2/token`, { grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read' }, { authorization: basic('cli', SECRETS.cli) })
  const noOpenid = await fetch(`${url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${String(token.json.access_token)}` } })
  t.equal(noOpenid.status, 403)
  t.match(noOpenid.headers.get('www-authenticate'), /error="insufficient_scope"/)
  const viaBody = await postForm(`${url}/oauth2/userinfo`, { access_token: String(token.json.access_token) })
  t.equal(viaBody.status, 403, 'a form-body token is read too (RFC 6750 2.2)')
})
