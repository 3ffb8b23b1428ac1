// The demo single-page app (demo-spa, a public client): everything happens in this browser,
// through oauth4webapi. The tokens live in the `signedIn` variable only; a reload forgets them.
// The one thing kept across the trip to the issuer is the sign-in on its way (PKCE verifier,
// state, nonce) in sessionStorage, taken out as soon as the browser is back.
import * as oauth from './vendor/oauth4webapi.js'

const TIMEOUT_MS = 10_000
const PENDING_KEY = 'gatehouse-demo-spa:pending'

const $ = (id) => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`the page has no #${id}`)
  return element
}

const root = $('app')
/** The issuer's metadata, discovered by the app's server and checked there (its `issuer`). */
const as = JSON.parse($('issuer-metadata').textContent ?? '{}')
const client = { client_id: root.dataset.clientId ?? '' }
const gateway = new URL(root.dataset.gateway ?? '')
const logoutPath = root.dataset.logoutPath ?? '/oauth2/logout'
const scope = root.dataset.scope ?? 'openid'
// This page's own URLs: the issuer decides whether they are registered.
const redirectUri = new URL('/spa/callback', window.location.origin).href
const postLogoutRedirectUri = new URL('/spa/', window.location.origin).href

/** oauth4webapi refuses plain http unless told: the demo runs on http://127.0.0.1. */
const requestOptions = () => ({
  ...(new URL(as.token_endpoint).protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}),
  signal: AbortSignal.timeout(TIMEOUT_MS)
})

/** The tokens and the ID token's claims: memory only. */
let signedIn = null
let refreshCount = 0
/** What the page is doing, for its error message. */
let step = ''

// ---------------------------------------------------------------------------------------------
// What the page shows

function show (id, visible) { $(id).hidden = !visible }

function showError (err) {
  const name = err instanceof Error ? err.name : 'Error'
  let message = err instanceof Error ? err.message : String(err)
  if (err instanceof oauth.ResponseBodyError || err instanceof oauth.AuthorizationResponseError) {
    message = err.error + (err.error_description === undefined ? '' : `: ${err.error_description}`)
  }
  $('error-step').textContent = step
  $('error-name').textContent = name
  $('error-message').textContent = message
  // A fetch that rejects with a TypeError got no answer the page may read.
  show('error-hint', name === 'TypeError' && /fetch/i.test(message))
  show('error', true)
}

function clearError () { show('error', false) }

function setBusy (busy) {
  for (const id of ['sign-in', 'call-api', 'refresh', 'log-out']) $(id).disabled = busy
}

function pretty (text) {
  try { return JSON.stringify(JSON.parse(text), null, 2) } catch { return text }
}

function claimRow (name, value) {
  const row = document.createElement('tr')
  const th = document.createElement('th')
  th.scope = 'row'
  th.textContent = name
  const td = document.createElement('td')
  td.dataset.claim = name
  const time = ['iat', 'exp', 'auth_time', 'nbf'].includes(name) && typeof value === 'number'
    ? ` (${new Date(value * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')})`
    : ''
  td.textContent = (typeof value === 'string' ? value : JSON.stringify(value)) + time
  row.append(th, td)
  return row
}

function render () {
  const status = $('status')
  show('sign-in', signedIn === null)
  for (const id of ['call-api', 'refresh', 'log-out', 'token-info']) show(id, signedIn !== null)
  if (signedIn === null) {
    status.textContent = 'Signed out'
    show('api', false)
    show('refresh-result', false)
    return
  }
  const user = document.createElement('b')
  user.id = 'user'
  user.textContent = String(signedIn.claims.preferred_username ?? signedIn.claims.sub)
  status.replaceChildren('Signed in as ', user)
  const expires = $('expires-at')
  expires.dateTime = new Date(signedIn.expiresAt).toISOString()
  expires.textContent = expires.dateTime.replace(/\.\d{3}Z$/, 'Z')
  $('scope').textContent = signedIn.tokens.scope ?? ''
  $('claims').querySelector('tbody').replaceChildren(...Object.entries(signedIn.claims).map(([name, value]) => claimRow(name, value)))
  $('refresh-count').textContent = String(refreshCount)
  show('refresh-result', refreshCount > 0)
}

/** Keeps a token endpoint response, and the claims of its ID token when it has one. */
function keep (tokens) {
  const claims = oauth.getValidatedIdTokenClaims(tokens)
  signedIn = {
    tokens: { ...signedIn?.tokens, ...tokens },
    claims: claims === undefined ? signedIn?.claims ?? {} : { ...claims },
    expiresAt: Date.now() + (tokens.expires_in ?? 0) * 1000
  }
}

// ---------------------------------------------------------------------------------------------
// The flows

async function signIn () {
  const pending = { verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce() }
  const target = new URL(as.authorization_endpoint)
  const params = {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: redirectUri,
    scope,
    // S256 of the verifier, by WebCrypto.
    code_challenge: await oauth.calculatePKCECodeChallenge(pending.verifier),
    code_challenge_method: 'S256',
    state: pending.state,
    nonce: pending.nonce
  }
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value)
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending))
  window.location.assign(target.href)
}

/** Back from the issuer at /spa/callback: the answer checked, the code exchanged. */
async function completeSignIn () {
  const current = new URL(window.location.href)
  // The code is single use: out of the address bar, the history and any reload.
  window.history.replaceState(null, '', '/spa/')
  const stored = sessionStorage.getItem(PENDING_KEY)
  sessionStorage.removeItem(PENDING_KEY)
  if (stored === null) throw new Error('no sign-in is in progress in this tab (start again with "Sign in")')
  const pending = JSON.parse(stored)
  // state, iss (RFC 9207) and error checked.
  const params = oauth.validateAuthResponse(as, client, current, pending.state)
  step = 'The token request'
  // A cross-origin POST to the token endpoint: the issuer allows it for this page's origin (CORS).
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, pending.verifier, requestOptions())
  // nonce, aud, iss, exp of the ID token checked.
  keep(await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true }))
}

async function callApi () {
  // Cross-origin with a Bearer token: the browser asks the gateway first (a CORS preflight).
  const answer = await fetch(new URL('/api/hello', gateway), { headers: { authorization: `Bearer ${signedIn.tokens.access_token}` }, signal: AbortSignal.timeout(TIMEOUT_MS) })
  $('api-status').textContent = String(answer.status)
  $('api-result').textContent = pretty(await answer.text())
  show('api', true)
}

async function refresh () {
  if (signedIn.tokens.refresh_token === undefined) throw new Error('the issuer issued no refresh token')
  const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), signedIn.tokens.refresh_token, requestOptions())
  // Rotation: the answer carries a new refresh token, and the old one is spent.
  keep(await oauth.processRefreshTokenResponse(as, client, response))
  refreshCount++
}

async function logOut () {
  const { tokens } = signedIn
  // The gateway's logout: the token, its session, the resource servers told.
  // Whatever it answers (401 for an access token that expired meanwhile, 503 while it cannot
  // reach Redis, or no answer at all), the user asked to leave: the tokens are dropped here and
  // the issuer still ends the session, which revokes the rest and tells every gateway.
  try {
    const answer = await fetch(new URL(logoutPath, gateway), { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` }, signal: AbortSignal.timeout(TIMEOUT_MS) })
    if (!answer.ok) console.warn(`the gateway's logout answered HTTP ${answer.status}; ending the session at the issuer`)
  } catch (err) {
    console.warn(`the gateway's logout failed (${err.message}); ending the session at the issuer`)
  }
  signedIn = null
  // Then the issuer's end_session_endpoint (RP-Initiated Logout): its SSO cookie goes, and it
  // sends the browser back here.
  const end = new URL(as.end_session_endpoint)
  end.searchParams.set('id_token_hint', tokens.id_token)
  end.searchParams.set('post_logout_redirect_uri', postLogoutRedirectUri)
  window.location.assign(end.href)
}

/** Runs one action with the buttons disabled; its error shown as the failure of `what`. */
async function run (what, action) {
  step = what
  clearError()
  setBusy(true)
  try {
    await action()
  } catch (err) {
    showError(err)
  } finally {
    setBusy(false)
    render()
  }
}

$('sign-in').addEventListener('click', () => { run('The sign-in', signIn) })
$('call-api').addEventListener('click', () => { run('The API call', callApi) })
$('refresh').addEventListener('click', () => { run('The refresh', refresh) })
$('log-out').addEventListener('click', () => { run('The logout', logOut) })

if (window.location.pathname === '/spa/callback') {
  $('status').textContent = 'Signing in…'
  run('The sign-in', completeSignIn)
} else {
  render()
}
