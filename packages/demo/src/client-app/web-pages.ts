/** demo-web's one page, signed out or signed in, with the last result of each action. */
import { html, type Html } from './html.ts'
import { layout, shownTime } from './pages.ts'
import type { WebSession } from './sessions.ts'

export interface WebPageOptions {
  clientId: string
  issuer: string
  gateway: string
}

/** A body as the page shows it: JSON pretty-printed, anything else as it came. */
export function prettyBody (body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2)
  } catch {
    return body
  }
}

/** The ID token's claims, one row each; times also as dates. */
export function claimRows (claims: Record<string, unknown>): Html[] {
  return Object.entries(claims).map(([name, value]) => {
    const shown = typeof value === 'string' ? value : JSON.stringify(value)
    const when = ['iat', 'exp', 'auth_time', 'nbf'].includes(name) && typeof value === 'number' ? ` (${shownTime(value * 1000)})` : ''
    return html`<tr><th scope="row">${name}</th><td data-claim="${name}">${shown}${when}</td></tr>\n`
  })
}

const hidden = (session: WebSession): Html => html`<input type="hidden" name="csrf" value="${session.csrf}">`

function results (session: WebSession, returnedFromLogout: boolean): Html {
  const api = session.api === undefined
    ? undefined
    : html`<h2>The API's answer</h2>
<p>GET ${'/api/hello'} through the gateway answered HTTP <span id="api-status">${session.api.status}</span>.</p>
<pre id="api-result">${prettyBody(session.api.body)}</pre>`
  const refreshed = session.refreshed === undefined || session.signedIn === undefined
    ? undefined
    : html`<p class="ok" id="refresh-result">Refreshed (<span id="refresh-count">${session.refreshed.count}</span>): a new access token, valid until ${shownTime(session.signedIn.accessTokenExpiresAt)}; the old refresh token is spent.</p>`
  const logout = session.logout === undefined
    ? undefined
    : html`<h2>Logged out</h2>
<p>The gateway's logout answered HTTP <span id="logout-status">${session.logout.status}</span>${returnedFromLogout ? ', and the issuer ended its SSO session' : ''}.</p>
<pre id="logout-result">${prettyBody(session.logout.body)}</pre>`
  return html`${refreshed}${api}${logout}`
}

export function homePage (o: WebPageOptions, session: WebSession, returnedFromLogout: boolean): string {
  const error = session.error === undefined ? undefined : html`<p class="alert" id="error" role="alert">${session.error}</p>`
  const intro = html`<h1>Demo Web App</h1>
<p class="lead"><code>${o.clientId}</code>, a confidential client with its own server: it signs you in at the issuer (${o.issuer}) with the authorization code flow (PKCE, state, nonce), keeps the tokens on its server and gives your browser only an httpOnly session cookie. It calls the API through the gateway (${o.gateway}).</p>
${error}`
  const signedIn = session.signedIn
  if (signedIn === undefined) {
    return layout({
      title: 'Demo Web App',
      section: 'web',
      body: html`${intro}
<p class="status" id="status">Signed out</p>
<div class="actions"><a class="button primary" id="sign-in" href="/login">Sign in</a></div>
<p class="note">Demo users: alice / alice-password, bob / bob-password. The same flow in the browser alone: the <a href="/spa/">single-page app</a>.</p>
${results(session, returnedFromLogout)}`
    })
  }
  const user = String(signedIn.claims.preferred_username ?? signedIn.claims.sub ?? '')
  return layout({
    title: `Signed in as ${user}`,
    section: 'web',
    body: html`${intro}
<p class="status" id="status">Signed in as <b id="user">${user}</b></p>
<div class="actions">
<form method="post" action="/call">${hidden(session)}<button class="primary" id="call-api" type="submit">Call the API</button></form>
<form method="post" action="/refresh">${hidden(session)}<button id="refresh" type="submit">Refresh the tokens</button></form>
<form method="post" action="/logout">${hidden(session)}<button id="log-out" type="submit">Log out</button></form>
</div>
${results(session, false)}
<h2>Access token</h2>
<p>Valid until <time id="expires-at" datetime="${new Date(signedIn.accessTokenExpiresAt).toISOString()}">${shownTime(signedIn.accessTokenExpiresAt)}</time>, scope <code id="scope">${signedIn.scope ?? ''}</code>. It stays on this app's server, as does the refresh token${signedIn.refreshToken === undefined ? ' (none was issued)' : ''}.</p>
<h2>ID token claims</h2>
<table id="claims"><tbody>
${claimRows(signedIn.claims)}</tbody></table>`
  })
}
