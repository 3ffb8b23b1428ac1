/**
 * Issue 9.4: a code exchange and a logout of the same session at the same moment must never
 * leave a live refresh token family behind. Each round injects the exchange and the logout
 * together (the logout shifted by a few event-loop turns, so the rounds walk the possible
 * interleavings inside the issuer), then checks that no refresh token of the session works.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { decodeJwt } from 'jose'
import { forEachStore, insecure, startIssuer } from './fixtures/harness.ts'
import { passwordTokens, refresh } from './fixtures/flows.ts'
import { Browser } from './fixtures/browser.ts'
import { parseRefreshToken } from '../src/tokens/token-service.ts'

const CALLBACK = 'http://127.0.0.1:3000/cb'
const ROUNDS = 50

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

forEachStore(t, async (t, kind) => {
  const { as, url, app } = await startIssuer(t, kind)
  const spa: oauth.Client = { client_id: 'spa' }
  const none = oauth.None()

  /** One authorization request in `browser` (signing in when asked); the code's callback. */
  async function authorize (browser: Browser): Promise<{ params: URLSearchParams, verifier: string }> {
    const verifier = oauth.generateRandomCodeVerifier()
    const state = oauth.generateRandomState()
    const target = new URL(as.authorization_endpoint ?? '')
    for (const [k, v] of Object.entries({
      client_id: 'spa',
      redirect_uri: CALLBACK,
      response_type: 'code',
      scope: 'openid api:read',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256'
    })) target.searchParams.set(k, v)
    let page = await browser.request(target.toString())
    if (page.url.startsWith(url)) page = await browser.submit(page, { username: 'alice', password: 'alice-password' })
    return { params: oauth.validateAuthResponse(as, spa, new URL(page.url), state), verifier }
  }

  const exchange = async (code: { params: URLSearchParams, verifier: string }): Promise<oauth.TokenEndpointResponse | null> =>
    await oauth.authorizationCodeGrantRequest(as, spa, none, code.params, CALLBACK, code.verifier, insecure)
      .then(async (response) => await oauth.processAuthorizationCodeResponse(as, spa, response))
      .catch(() => null)

  /** The same exchange, injected (no socket in between, so the rounds reach the issuer's own awaits). */
  async function injectedExchange (code: { params: URLSearchParams, verifier: string }): Promise<{ refresh_token?: string } | null> {
    const payload = new URLSearchParams({ grant_type: 'authorization_code', client_id: 'spa', code: code.params.get('code') ?? '', redirect_uri: CALLBACK, code_verifier: code.verifier }).toString()
    const res = await app.inject({ method: 'POST', url: '/oauth2/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload })
    return res.statusCode === 200 ? res.json() : null
  }

  /** Whether the family behind `refreshToken` is still live in the store. */
  async function isLive (refreshToken: string | undefined): Promise<boolean> {
    const parsed = parseRefreshToken(refreshToken ?? '')
    if (parsed === null) return false
    return await app.issuer.stores.refreshTokens.find(parsed.familyId, parsed.hash, Date.now()) !== null
  }

  t.test(`exchange and logout together, ${ROUNDS} times: no live family afterwards`, async (t) => {
    let exchangedBeforeLogout = 0
    const live: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const browser = new Browser(url)
      const first = await exchange(await authorize(browser))
      if (first?.id_token === undefined) throw new Error('the first exchange failed')
      const second = await authorize(browser)
      const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
      const [tokens, loggedOut] = await Promise.all([
        injectedExchange(second),
        turns(round % 10).then(async () => await app.inject({ url: `/oauth2/logout?id_token_hint=${first.id_token}`, headers: { cookie } }))
      ])
      if (loggedOut.statusCode !== 200 || !/signed out/i.test(loggedOut.body)) throw new Error(`logout answered ${loggedOut.statusCode}`)
      if (tokens !== null) exchangedBeforeLogout++
      if (await isLive(first.refresh_token) || await isLive(tokens?.refresh_token)) live.push(round)
      if (tokens?.refresh_token !== undefined) {
        const refreshed = await oauth.refreshTokenGrantRequest(as, spa, none, tokens.refresh_token, insecure)
          .then(async (response) => await oauth.processRefreshTokenResponse(as, spa, response))
          .then(() => 'ok', (e: { error?: string }) => e.error ?? String(e))
        if (refreshed !== 'invalid_grant') live.push(round)
      }
    }
    t.same(live, [], 'no round left a refresh token alive')
    t.comment(`${exchangedBeforeLogout} of ${ROUNDS} exchanges answered with tokens`)
  })

  t.test('the refresh grant refuses a family whose session has ended, even one logout missed', async (t) => {
    const tokens = await passwordTokens(as, 'alice', 'openid api:read')
    const sid = String(decodeJwt(tokens.access_token).sid)
    // End the session in the store only, as if the logout had failed before revoking families.
    t.not(await app.issuer.stores.sessions.end(sid), null)
    t.equal(await isLive(tokens.refresh_token), true, 'the family escaped revocation')
    const outcome = await refresh(as, tokens.refresh_token ?? '').then(() => 'ok', (e: { error?: string }) => e.error ?? String(e))
    t.equal(outcome, 'invalid_grant')
    t.equal(await isLive(tokens.refresh_token), false, 'and is revoked now')
  })
})
