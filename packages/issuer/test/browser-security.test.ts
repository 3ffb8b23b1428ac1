/**
 * Issue 9.5 and 9.8, as an attacker would try them: logout CSRF with the attacker's own
 * id_token_hint, CSRF pairs planted from elsewhere, session fixation and replacement, and the
 * cookies' names and scopes (`__Host-` under https, `/oauth2` over http).
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import { build } from '../src/app.ts'
import { fixtureConfig, SECRETS } from './fixtures/issuer.ts'
import { basic, forEachStore, postForm, startIssuer } from './fixtures/harness.ts'
import { passwordTokens } from './fixtures/flows.ts'
import { signIn, WEB_CALLBACK } from './fixtures/sign-in.ts'

forEachStore(t, async (t, kind) => {
  const { as, url } = await startIssuer(t, kind)
  const { startAuthorization, webLogin } = signIn(as, url)
  const isActive = async (token: string): Promise<boolean> =>
    (await postForm(`${url}/oauth2/introspect`, { token }, { authorization: basic('gateway', SECRETS.gateway) })).json.active === true
  const refreshOutcome = async (refreshToken: string | undefined): Promise<string> => {
    const res = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: refreshToken ?? '' }, { authorization: basic('web', SECRETS.web) })
    return res.status === 200 ? 'ok' : String(res.json.error)
  }

  t.test('a logout link with the attacker\'s own id_token_hint asks the victim first', async (t) => {
    const victim = await webLogin({ scope: 'openid api:read' })
    const attacker = await passwordTokens(as, 'bob', 'openid api:read')
    const link = `${url}/oauth2/logout?id_token_hint=${attacker.id_token ?? ''}`
    const page = await victim.browser.request(link)
    t.equal(page.status, 200)
    t.match(page.html, /name="confirm"/, 'the confirmation page, not a sign-out')
    t.match(page.html, /signed in as <strong>alice<\/strong>/, 'naming the account the browser holds')
    t.equal(await isActive(victim.tokens.access_token), true, 'the victim\'s access token still works')
    t.equal(await refreshOutcome(victim.tokens.refresh_token), 'ok', 'and the refresh token')
    const again = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:read', prompt: 'none' }, victim.browser)
    t.type(new URL(again.page.url).searchParams.get('code'), 'string', 'and the SSO session')

    const done = await victim.browser.submit(page, {}, { name: 'confirm', value: 'yes' })
    t.match(done.html, /You are signed out/, 'confirmed: signed out')
    t.equal(await isActive(victim.tokens.access_token), false, 'now the session is over')
  })

  t.test('a hint naming the browser\'s own session signs out without a question', async (t) => {
    const { tokens, browser } = await webLogin({ scope: 'openid api:read' })
    const page = await browser.request(`${url}/oauth2/logout?id_token_hint=${tokens.id_token ?? ''}`)
    t.match(page.html, /You are signed out/)
    t.equal(await isActive(tokens.access_token), false)
  })

  t.test('a CSRF pair from another browser does not work once the victim has a session', async (t) => {
    const victim = await webLogin({ scope: 'openid api:read' })
    // The attacker gets a pre-session cookie and its token from the login page in their own browser.
    const attacker = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:write' })
    const attackerForm = attacker.browser.form(attacker.page)
    for (const [name, value] of attacker.browser.cookies) victim.browser.cookies.set(name, value)
    const consentAsked = await startAuthorization({ client_id: 'web', redirect_uri: WEB_CALLBACK, scope: 'openid api:write' }, victim.browser)
    const form = victim.browser.form(consentAsked.page)
    const redirected = victim.browser.lastExternalRedirect
    const forged = await victim.browser.request(form.action, {
      method: 'POST',
      body: new URLSearchParams({ ...form.fields, csrf: attackerForm.fields.csrf ?? '', decision: 'allow' }).toString()
    })
    t.equal(forged.status, 403, 'the planted pair is refused')
    t.equal(victim.browser.lastExternalRedirect, redirected, 'no code went out')
  })

  t.test('a sign-in replaces the browser\'s session: new sid, the old session ended', async (t) => {
    const first = await webLogin({ scope: 'openid api:read' })
    const before = [...first.browser.cookies]
    const second = await webLogin({ scope: 'openid api:read', prompt: 'login' }, first.browser, 'bob')
    t.not(decodeJwt(second.tokens.access_token).sid, decodeJwt(first.tokens.access_token).sid, 'a fresh sid')
    t.notSame([...second.browser.cookies], before, 'a new session cookie')
    t.equal(await isActive(first.tokens.access_token), false, 'alice\'s session in this browser is over')
    t.equal(await refreshOutcome(first.tokens.refresh_token), 'invalid_grant')
    t.equal(await isActive(second.tokens.access_token), true, 'bob\'s is live')
  })
})

/** Every Set-Cookie of a response, as name -> attribute string. */
function setCookies (headers: Record<string, unknown>): Map<string, string> {
  const lines = [headers['set-cookie'] ?? []].flat() as string[]
  return new Map(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf(';'))]))
}

for (const scheme of ['http', 'https'] as const) {
  t.test(`cookies under ${scheme}`, async (t) => {
    const config = await fixtureConfig(t.testdir())
    const app = await build({ ...config, issuer: config.issuer.replace('http:', `${scheme}:`) }, { logger: false })
    t.teardown(async () => await app.close())
    const authorize = '/oauth2/authorise?response_type=code&client_id=web&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&redirect_uri=' + encodeURIComponent(WEB_CALLBACK)
    const loginPage = await app.inject({ url: authorize })
    const preSession = setCookies(loginPage.headers)
    const csrf = /name="csrf" value="([^"]+)"/.exec(loginPage.body)?.[1] ?? ''
    const prefix = scheme === 'https' ? '__Host-' : ''
    const path = scheme === 'https' ? 'Path=/;' : 'Path=/oauth2;'
    const preName = `${prefix}gatehouse_csrf`
    t.ok(preSession.has(preName), `the pre-session cookie is ${preName}`)
    t.match(preSession.get(preName), path)
    t.match(preSession.get(preName), /HttpOnly/)
    if (scheme === 'https') t.match(preSession.get(preName), /Secure/)
    else t.notMatch(preSession.get(preName), /Secure/)

    const cookie = `${preName}=${loginPage.cookies.find((c) => c.name === preName)?.value ?? ''}`
    const signedIn = await app.inject({
      method: 'POST',
      url: '/oauth2/authorise',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ ...Object.fromEntries(new URL(authorize, 'http://x').searchParams), csrf, username: 'alice', password: 'alice-password' }).toString()
    })
    t.equal(signedIn.statusCode, 200, 'signed in: the consent page')
    const session = setCookies(signedIn.headers)
    const sessionName = `${prefix}gatehouse_session`
    t.ok(session.has(sessionName), `the session cookie is ${sessionName}`)
    t.match(session.get(sessionName), path)
    t.match(session.get(sessionName), /SameSite=Lax/)
    t.notMatch(session.get(sessionName), /Domain=/i)
  })
}
