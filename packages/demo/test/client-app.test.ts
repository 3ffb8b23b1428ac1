/**
 * The demo client app's server side, against a real issuer built in-process: its pages and
 * their Content-Security-Policy, the files of the single-page app, the web app's authorization
 * request and the checks on the issuer's answer, forms refused without the session's CSRF
 * token, and an issuer that is down (then up). The flows in a real browser:
 * test/e2e/browser.test.ts (demo-web) and test/e2e/browser-spa.test.ts (demo-spa).
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildClientApp } from '../src/client-app/app.ts'
import { WebSessions } from '../src/client-app/sessions.ts'
import { issuerUrl, startIssuer } from './fixtures/issuer.ts'

const APP = 'http://127.0.0.1:3000'
const GATEWAY = 'http://127.0.0.1:8080'

function clientApp (t: Test, issuer: string): FastifyInstance {
  const app = buildClientApp({ url: APP, issuer, gateway: GATEWAY, logger: false })
  t.teardown(async () => { await app.close() })
  return app
}

/** `name=value` of the response's session cookie, for the next request. */
function sessionCookie (setCookie: string | string[] | undefined): string {
  const line = [setCookie ?? []].flat().find((c) => c.startsWith('demo_web_session='))
  if (line === undefined) throw new Error('no session cookie')
  return line.split(';', 1)[0] ?? ''
}

const issuer = await startIssuer(t, await issuerUrl())

t.test('the web app\'s page: no script at all, an httpOnly session cookie', async (t) => {
  const app = clientApp(t, issuer.url)
  t.equal((await app.inject('/healthz')).statusCode, 200)
  const home = await app.inject('/')
  t.equal(home.statusCode, 200)
  t.match(home.headers['content-type'], /^text\/html/)
  t.equal(home.headers['content-security-policy'], `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' ${issuer.url}; frame-ancestors 'none'; base-uri 'none'`, 'scripts fall under default-src \'none\'; forms may continue to the issuer (the logout)')
  t.equal(home.headers['x-content-type-options'], 'nosniff')
  t.equal(home.headers['cache-control'], 'no-store')
  t.match(String(home.headers['set-cookie']), /^demo_web_session=[\w-]{22}; Path=\/; HttpOnly; SameSite=Lax$/, 'httpOnly, Lax, no Secure over http')
  t.match(home.body, '<p class="status" id="status">Signed out</p>')
  t.match(home.body, '<a class="button primary" id="sign-in" href="/login">')
  t.notMatch(home.body, /<script|style=/, 'no script, no inline style')
  const css = await app.inject('/style.css')
  t.match(css.headers['content-type'], /^text\/css/)
  t.match(css.body, 'button.primary')
  t.match((await app.inject('/favicon.svg')).headers['content-type'], 'image/svg+xml')
  const missing = await app.inject('/legacy/callback')
  t.equal(missing.statusCode, 404)
  t.ok(missing.headers['content-security-policy'], 'the not-found page has the policy too')
})

t.test('the single-page app: a strict CSP, its script, oauth4webapi, the issuer\'s metadata', async (t) => {
  const app = clientApp(t, issuer.url)
  t.match(await app.inject('/spa'), { statusCode: 308, headers: { location: '/spa/' } })
  for (const path of ['/spa/', '/spa/callback?code=abc&state=xyz']) {
    const page = await app.inject(path)
    t.equal(page.statusCode, 200, path)
    t.equal(page.headers['content-security-policy'], `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src ${issuer.url} ${GATEWAY}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'`, `${path}: scripts from the app only, requests to the issuer and the gateway only`)
    const scripts = [...page.body.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1] ?? '')
    t.same(scripts, [' type="module" src="/spa/app.js"', ' type="application/json" id="issuer-metadata"'], `${path}: one module script from a file, one JSON data block, nothing inline`)
    t.notMatch(page.body, /\s(style|on[a-z]+)=/, `${path}: no inline style or handler`)
  }
  const page = (await app.inject('/spa/')).body
  const metadata = JSON.parse(/<script type="application\/json" id="issuer-metadata">([^<]*)<\/script>/.exec(page)?.[1] ?? 'null') as { issuer: string, token_endpoint: string, end_session_endpoint: string }
  t.match(metadata, { issuer: issuer.url, token_endpoint: `${issuer.url}/oauth2/token`, end_session_endpoint: String }, 'the metadata the server discovered')
  t.match(page, `<main id="app" data-client-id="demo-spa" data-scope="openid profile email api:read" data-gateway="${GATEWAY}" data-logout-path="/oauth2/logout">`)
  for (const id of ['status', 'sign-in', 'call-api', 'refresh', 'log-out', 'claims', 'expires-at', 'api-status', 'api-result', 'refresh-count', 'error', 'error-name', 'memory-note']) {
    t.match(page, `id="${id}"`, `#${id} for the tests`)
  }

  const script = await app.inject('/spa/app.js')
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.match(script.body, "import * as oauth from './vendor/oauth4webapi.js'")
  t.notMatch(script.body, /localStorage|innerHTML|document\.cookie|eval\(/, 'no localStorage, no HTML from strings, no cookie, no eval')
  const vendor = await app.inject('/spa/vendor/oauth4webapi.js')
  t.match(vendor.headers['content-type'], /^text\/javascript/)
  t.equal(vendor.body, readFileSync(fileURLToPath(import.meta.resolve('oauth4webapi')), 'utf8'), 'the installed oauth4webapi, as is')
  t.equal((await app.inject('/spa/vendor/index.js.map')).statusCode, 200, 'and its source map')
})

t.test('the web app\'s sign-in: PKCE S256, state and nonce; the answer is checked', async (t) => {
  const app = clientApp(t, issuer.url)
  const login = await app.inject('/login')
  t.equal(login.statusCode, 303)
  const target = new URL(String(login.headers.location))
  t.equal(`${target.origin}${target.pathname}`, `${issuer.url}/oauth2/authorise`)
  t.match(Object.fromEntries(target.searchParams), {
    response_type: 'code',
    client_id: 'demo-web',
    redirect_uri: `${APP}/callback`,
    scope: 'openid profile email api:read',
    code_challenge: /^[\w-]{43}$/,
    code_challenge_method: 'S256',
    state: /^[\w-]{43}$/,
    nonce: /^[\w-]{43}$/
  })
  const cookie = sessionCookie(login.headers['set-cookie'])
  const again = new URL(String((await app.inject({ url: '/login', headers: { cookie } })).headers.location))
  t.not(again.searchParams.get('state'), target.searchParams.get('state'), 'a new state per sign-in')
  t.not(again.searchParams.get('code_challenge'), target.searchParams.get('code_challenge'), 'a new PKCE pair per sign-in')

  const callback = async (query: Record<string, string>, headers: Record<string, string> = { cookie }): Promise<string> => {
    const res = await app.inject({ url: `/callback?${new URLSearchParams(query).toString()}`, headers })
    t.match(res, { statusCode: 303, headers: { location: '/' } })
    // Without a cookie the callback made a new session: the page is that session's.
    const home = await app.inject({ url: '/', headers: { cookie: headers.cookie ?? sessionCookie(res.headers['set-cookie']) } })
    return /<p class="alert" id="error" role="alert">([^<]*)<\/p>/.exec(home.body)?.[1] ?? ''
  }
  const state = again.searchParams.get('state') ?? ''
  t.match(await callback({ code: 'x', state: 'forged', iss: issuer.url }), /^Not signed in: unexpected &quot;state&quot;/, 'a foreign state: refused')
  t.match(await callback({ code: 'x', state, iss: issuer.url }), /^Not signed in: no sign-in is in progress/, 'the pending sign-in was used up by the failed attempt')
  const third = new URL(String((await app.inject({ url: '/login', headers: { cookie } })).headers.location)).searchParams.get('state') ?? ''
  t.match(await callback({ error: 'access_denied', error_description: 'The user said no', state: third, iss: issuer.url }), /^Not signed in: access_denied: The user said no$/, 'the issuer\'s error, shown')
  t.match(await callback({ code: 'x', state: third }, {}), /^Not signed in: no sign-in is in progress/, 'no session: nothing to check against')
})

t.test('the web app\'s forms: refused without the session\'s CSRF token', async (t) => {
  const app = clientApp(t, issuer.url)
  const home = await app.inject('/')
  const cookie = sessionCookie(home.headers['set-cookie'])
  for (const path of ['/call', '/refresh', '/logout']) {
    for (const [what, payload] of [['no token', ''], ['a wrong token', 'csrf=not-the-one']]) {
      const res = await app.inject({ method: 'POST', url: path, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload })
      t.equal(res.statusCode, 403, `POST ${path}, ${what}: 403`)
      t.match(res.body, 'nothing was done')
    }
  }
  const bogus = await app.inject({ method: 'POST', url: '/call', headers: { cookie, 'content-type': 'application/json' }, payload: '{}' })
  t.equal(bogus.statusCode, 415, 'a body other than a form is refused')
})

t.test('an issuer that is down: told so, and found once it is up', async (t) => {
  const url = await issuerUrl()
  const app = clientApp(t, url)
  const login = await app.inject('/login')
  t.match(login, { statusCode: 303, headers: { location: '/' } })
  const home = await app.inject({ url: '/', headers: { cookie: sessionCookie(login.headers['set-cookie']) } })
  t.match(home.body, `Sign-in could not start: the issuer at ${url} did not answer its discovery`)
  const spa = await app.inject('/spa/')
  t.equal(spa.statusCode, 503)
  t.match(spa.body, `the issuer at ${url} did not answer its discovery`)
  t.match(spa.headers['content-security-policy'], "connect-src 'none'")

  await startIssuer(t, url)
  t.equal((await app.inject('/spa/')).statusCode, 200, 'discovery is tried again')
})

t.test('options are checked when the app is built', async (t) => {
  t.throws(() => buildClientApp({ url: APP, issuer: 'not a url', gateway: GATEWAY }), { name: 'TypeError', message: 'issuer must be a URL, got "not a url"' })
  t.throws(() => buildClientApp({ url: APP, issuer: issuer.url, gateway: 'ftp://127.0.0.1' }), { message: 'gateway must be an http(s) URL, got "ftp://127.0.0.1"' })
  t.throws(() => buildClientApp({ url: '', issuer: issuer.url, gateway: GATEWAY }), { message: /^url must be a URL/ })
})

t.test('signing in renews the session id and its CSRF token (review finding)', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(async () => { await app.close() })
  const sessions = new WebSessions({ secure: false })
  app.get('/session', async (request, reply) => ({ csrf: sessions.of(request, reply).csrf }))
  app.get('/sign-in', async (request, reply) => {
    const session = sessions.of(request, reply)
    sessions.renew(request, reply, session)
    return { csrf: session.csrf }
  })
  const first = await app.inject('/session')
  const cookie = String(first.headers['set-cookie']).split(';')[0] ?? ''
  const before = (first.json() as { csrf: string }).csrf
  t.equal((await app.inject({ url: '/session', headers: { cookie } }).then((r) => r.json() as { csrf: string })).csrf, before, 'the same session, the same token')
  const signedIn = await app.inject({ url: '/sign-in', headers: { cookie } })
  t.not((signedIn.json() as { csrf: string }).csrf, before, 'a token known before the sign-in is worth nothing after it')
  t.not(String(signedIn.headers['set-cookie']).split(';')[0], cookie, 'nor is the session id')
  const stale = await app.inject({ url: '/session', headers: { cookie } })
  t.not((stale.json() as { csrf: string }).csrf, (signedIn.json() as { csrf: string }).csrf, 'the old id leads to no signed-in session')
})
