/** The browser-flow pages: exact form fields, labels, escaping, the CSP hash, nothing external. */
import t from 'tap'
import { createHash } from 'node:crypto'
import {
  consentPage, errorPage, loggedOutPage, loginPage, logoutConfirmPage, STYLE_CSP_SOURCE
} from '../src/pages/index.ts'

const DANGER = '"><script>alert(1)</script>&\'`x'
const DANGER_ESCAPED = '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#39;&#96;x'
const XSS_NAME = '<img src=x onerror=alert(1)>'
const XSS_NAME_ESCAPED = '&lt;img src=x onerror=alert(1)&gt;'

const hidden = { client_id: 'demo-web', state: DANGER, [DANGER]: 'key-too', redirect_uri: 'http://127.0.0.1:3000/callback?a=1&b=2' }
const csrf = 'tok"<&>'

const pages = {
  login: loginPage({ clientName: 'Demo Web', action: '/oauth2/authorise', hidden, csrf }),
  loginWithError: loginPage({ clientName: 'Demo Web', action: '/oauth2/authorise', hidden, csrf, username: 'alice', error: 'Wrong password' }),
  consent: consentPage({
    clientName: 'Demo Web',
    username: 'alice',
    action: '/oauth2/authorise/consent',
    hidden,
    csrf,
    scopes: [{ name: 'openid', description: 'Sign you in' }, { name: 'api:read', description: '' }]
  }),
  logoutConfirm: logoutConfirmPage({ action: '/oauth2/logout', hidden, csrf }),
  loggedOut: loggedOutPage(),
  error: errorPage({ title: 'Unknown app', message: 'This app is not registered.' })
}

type Attrs = Record<string, string | true>

function unescape (s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39|#96);/g, (_, e: string) =>
    ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`' })[e] ?? '')
}

/** Every `<tag ...>` start tag, its attributes parsed (values are always double-quoted here). */
function tags (page: string, tag: string): Attrs[] {
  const out: Attrs[] = []
  for (const m of page.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'g'))) {
    const attrs: Attrs = {}
    for (const a of (m[1] ?? '').matchAll(/([^\s=]+)(?:="([^"]*)")?/g)) {
      attrs[a[1] as string] = a[2] === undefined ? true : unescape(a[2])
    }
    out.push(attrs)
  }
  return out
}

function hiddenOf (page: string): Array<[string, string]> {
  return tags(page, 'input').filter((i) => i.type === 'hidden').map((i) => [String(i.name), String(i.value)])
}

const expectedHidden = [...Object.entries(hidden), ['csrf', csrf]]

t.test('login: exact fields, hidden round-trip, labels', async (t) => {
  for (const page of [pages.login, pages.loginWithError]) {
    const [form, ...others] = tags(page, 'form')
    t.same(others, [])
    t.equal(form?.method, 'post')
    t.equal(form?.action, '/oauth2/authorise')
    t.same(hiddenOf(page), expectedHidden)
    const visible = tags(page, 'input').filter((i) => i.type !== 'hidden')
    t.same(visible.map((i) => [i.name, i.type, i.autocomplete, i.required]), [
      ['username', 'text', 'username', true],
      ['password', 'password', 'current-password', true]
    ])
    t.same(tags(page, 'button').map((b) => [b.type, b.name]), [['submit', undefined]])
    t.match(page, />Sign in<\/button>/)
    t.match(page, /<h1>Sign in<\/h1>/)
    t.match(page, /to continue to <strong>Demo Web<\/strong>/)
  }
  t.notMatch(pages.login, 'role="alert"')
  t.match(pages.loginWithError, /<p class="alert" role="alert"[^>]*>Wrong password<\/p>/)
  t.equal(tags(pages.loginWithError, 'input').find((i) => i.name === 'username')?.value, 'alice')
  t.equal(tags(pages.login, 'input').find((i) => i.name === 'username')?.value, '')
  t.equal(tags(pages.login, 'input').find((i) => i.name === 'password')?.value, undefined, 'no password is ever echoed')
})

t.test('consent: decision buttons, scopes in plain words, hidden round-trip', async (t) => {
  const page = pages.consent
  t.equal(tags(page, 'form').length, 1)
  t.same(tags(page, 'form')[0], { method: 'post', action: '/oauth2/authorise/consent' })
  t.same(hiddenOf(page), expectedHidden)
  t.same(tags(page, 'button').map((b) => [b.type, b.name, b.value, b.class]), [
    ['submit', 'decision', 'allow', 'primary'],
    ['submit', 'decision', 'deny', undefined]
  ])
  t.match(page, />Allow<\/button>/)
  t.match(page, />Deny<\/button>/)
  t.match(page, /<h1>Demo Web wants to access your account<\/h1>/)
  t.match(page, /Signed in as <strong>alice<\/strong>/)
  t.match(page, /<li>Sign you in<\/li>/)
  t.match(page, /<li>api:read<\/li>/, 'an empty description falls back to the scope name')
})

t.test('logout confirm and logged out', async (t) => {
  const page = pages.logoutConfirm
  t.same(tags(page, 'form'), [{ method: 'post', action: '/oauth2/logout' }])
  t.same(hiddenOf(page), expectedHidden)
  t.same(tags(page, 'button').map((b) => [b.type, b.name, b.value]), [['submit', 'confirm', 'yes']])
  t.match(page, />Sign out<\/button>/)
  t.match(page, /<h1>Sign out\?<\/h1>/)
  t.match(pages.loggedOut, /<h1>You are signed out<\/h1>/)
  t.same(tags(pages.loggedOut, 'form'), [])
})

t.test('error page: plain words, no form, no redirect', async (t) => {
  t.match(pages.error, /<h1>Unknown app<\/h1>/)
  t.match(pages.error, 'This app is not registered.')
  t.same(tags(pages.error, 'form'), [])
  t.notMatch(pages.error, /http-equiv/i)
  const escaped = errorPage({ title: XSS_NAME, message: DANGER })
  t.notOk(escaped.includes(XSS_NAME))
  t.notOk(escaped.includes(DANGER))
  t.ok(escaped.includes(DANGER_ESCAPED))
})

t.test('hidden names that collide with the form\'s own controls are dropped', async (t) => {
  const sneaky = { decision: 'allow', confirm: 'yes', username: 'mallory', password: 'x', csrf: 'forged', state: 's' }
  const consent = consentPage({ clientName: 'c', username: 'u', scopes: [], action: '/a', hidden: sneaky, csrf: 'real' })
  t.same(hiddenOf(consent), [['confirm', 'yes'], ['username', 'mallory'], ['password', 'x'], ['state', 's'], ['csrf', 'real']])
  const login = loginPage({ clientName: 'c', action: '/a', hidden: sneaky, csrf: 'real' })
  t.same(hiddenOf(login), [['decision', 'allow'], ['confirm', 'yes'], ['state', 's'], ['csrf', 'real']])
  const logout = logoutConfirmPage({ action: '/a', hidden: sneaky, csrf: 'real' })
  t.same(hiddenOf(logout), [['decision', 'allow'], ['username', 'mallory'], ['password', 'x'], ['state', 's'], ['csrf', 'real']])
})

t.test('dangerous values are escaped and cannot leave their attribute', async (t) => {
  for (const [name, page] of Object.entries(pages)) {
    if (name === 'loggedOut' || name === 'error') continue
    t.notOk(page.includes(DANGER), `${name}: raw value absent`)
    t.ok(page.includes(`value="${DANGER_ESCAPED}"`), `${name}: escaped value present`)
    t.ok(page.includes(`name="${DANGER_ESCAPED}"`), `${name}: escaped name present`)
    t.ok(page.includes('value="tok&quot;&lt;&amp;&gt;"'), `${name}: csrf escaped`)
    t.ok(page.includes('value="http://127.0.0.1:3000/callback?a=1&amp;b=2"'), `${name}: & escaped`)
  }
  const login = loginPage({ clientName: XSS_NAME, action: '"><x', hidden: {}, csrf: '', username: DANGER, error: XSS_NAME })
  const consent = consentPage({ clientName: XSS_NAME, username: XSS_NAME, scopes: [{ name: XSS_NAME, description: '' }, { name: 'a', description: DANGER }], action: '/a', hidden: {}, csrf: '' })
  for (const page of [login, consent]) {
    t.notOk(page.includes(XSS_NAME))
    t.ok(page.includes(XSS_NAME_ESCAPED))
    t.notMatch(page, /<img/)
  }
  t.ok(login.includes('action="&quot;&gt;&lt;x"'))
  t.ok(login.includes(`value="${DANGER_ESCAPED}"`))
  t.ok(consent.includes(`<li>${DANGER_ESCAPED}</li>`))
  t.ok(consent.includes(`<title>${XSS_NAME_ESCAPED} wants to access your account · Gatehouse</title>`))
})

t.test('every page: one style block matching STYLE_CSP_SOURCE, accessible shell, nothing external', async (t) => {
  const styles = new Set<string>()
  for (const [name, page] of Object.entries(pages)) {
    t.test(name, async (t) => {
      const blocks = [...page.matchAll(/<style>([\s\S]*?)<\/style>/g)]
      t.equal(blocks.length, 1, 'one style element')
      t.equal(page.split('<style').length, 2, 'no other style element')
      const text = blocks[0]?.[1] ?? ''
      styles.add(text)
      t.equal(`'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`, STYLE_CSP_SOURCE)
      t.notMatch(page, /\sstyle=/, 'no style attributes (CSP would block them)')
      t.notMatch(page, /<script/i)
      t.notMatch(page, /\son[a-z]+=/i, 'no event handlers')
      t.notMatch(page, /<(link|img|iframe|object|embed)\b/i)
      t.notMatch(page, /(src|href)=/i)
      t.notMatch(page, /url\(/i)
      t.notMatch(page, /@import/i)
      t.notMatch(page.replace(/<input type="hidden"[^>]*>/g, ''), /https?:\/\//, 'no URL outside hidden values')
      t.match(page, /^<!doctype html>\n<html lang="en">/)
      t.match(page, '<meta name="viewport" content="width=device-width, initial-scale=1">')
      t.equal(page.split('<h1').length, 2, 'one h1')
      t.equal(page.split('<main').length, 2, 'one main')
      for (const input of tags(page, 'input').filter((i) => i.type !== 'hidden')) {
        t.type(input.id, 'string', `${String(input.name)} has an id`)
        t.equal(tags(page, 'label').filter((l) => l.for === input.id).length, 1, `${String(input.name)} has a label`)
      }
    })
  }
  t.equal(styles.size, 1, 'the style text is the same on every page')
  t.match(STYLE_CSP_SOURCE, /^'sha256-[A-Za-z0-9+/]{43}='$/)
  t.match([...styles][0], /prefers-color-scheme:dark/)
  t.match([...styles][0], /:focus-visible/)
})
