/** Sign-in throttling per username and per IP (@fastify/rate-limit), and userinfo's RFC 6750 errors. */
import t from 'tap'
import { startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { Browser } from './fixtures/browser.ts'

const authorize = (url: string): string => `${url}/oauth2/authorise?response_type=code&client_id=web&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/callback')}&code_challenge=${'A'.repeat(43)}&code_challenge_method=S256`

t.test('per username: the limit stops guessing even with the right password', async (t) => {
  const { url } = await startIssuer(t, 'memory', 'rateLimit: { loginPerUsername: 3, loginPerIp: 100 }\n')
  const browser = new Browser(url)
  const page = await browser.request(authorize(url))
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await browser.submit(page, { username: 'alice', password: 'wrong' })).status)
  t.same(statuses, [401, 401, 401])
  const blocked = await browser.submit(page, { username: 'alice', password: 'alice-password' })
  t.equal(blocked.status, 429, 'the fourth attempt for alice is throttled')
  t.ok(Number(blocked.headers.get('retry-after')) > 0)
  t.match(blocked.html, /Too many sign-in attempts/, 'a page for a person, not JSON')
  const other = await browser.submit(page, { username: 'bob', password: 'bob-password' })
  t.not(other.status, 429, 'another user is not affected')
})

t.test('per IP', async (t) => {
  const { url } = await startIssuer(t, 'redis', 'rateLimit: { loginPerUsername: 100, loginPerIp: 2 }\n')
  const browser = new Browser(url)
  const page = await browser.request(authorize(url))
  t.equal((await browser.submit(page, { username: 'u1', password: 'x' })).status, 401)
  t.equal((await browser.submit(page, { username: 'u2', password: 'x' })).status, 401)
  t.equal((await browser.submit(page, { username: 'u3', password: 'x' })).status, 429)
  t.equal((await browser.request(authorize(url))).status, 200, 'showing the login page is not counted')
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
