/**
 * demo-web: a confidential client with its own server (RFC 9700; the browser-based-apps BCP's
 * "backend for frontend"). The tokens stay in this process; the browser holds only the
 * session cookie. oauth4webapi does the OAuth work.
 *
 *   GET  /          signed out: "Sign in"; signed in: the ID token's claims, the access token's
 *                   expiry and the actions, with the last result of each
 *   GET  /login     a new authorization request (PKCE S256, state, nonce), sent to the issuer
 *   GET  /callback  the issuer's answer checked (state, iss), the code exchanged (nonce, id_token)
 *   POST /call      GET /api/hello through the gateway with the access token
 *   POST /refresh   the refresh_token grant: a new access token (rotation: a new refresh token)
 *   POST /logout    POST the gateway's logout with the access token (token, session, resource
 *                   servers), then the issuer's end_session_endpoint with id_token_hint, which
 *                   clears the browser's SSO cookie and comes back to /
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as oauth from 'oauth4webapi'
import { describeError, httpOptions, OUTBOUND_TIMEOUT_MS, type MetadataSource } from './issuer-metadata.ts'
import { isCsrfValid, WebSessions, type WebSession } from './sessions.ts'
import { homePage, type WebPageOptions } from './web-pages.ts'

export interface WebClientOptions {
  url: URL
  issuer: URL
  metadata: MetadataSource
  gateway: URL
  logoutPath: string
  client: { id: string, secret: string }
  scope: string
}

export function webClientRoutes (o: WebClientOptions) {
  const client: oauth.Client = { client_id: o.client.id }
  const auth = oauth.ClientSecretBasic(o.client.secret)
  const redirectUri = new URL('/callback', o.url).href
  const sessions = new WebSessions({ secure: o.url.protocol === 'https:' })
  const pageOptions: WebPageOptions = { clientId: o.client.id, issuer: o.issuer.origin, gateway: o.gateway.origin }

  const sendPage = async (reply: FastifyReply, page: string, status = 200): Promise<FastifyReply> => {
    return await reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page)
  }
  const home = async (reply: FastifyReply): Promise<FastifyReply> => await reply.header('cache-control', 'no-store').redirect('/', 303)

  /** The POST routes: the session, once its form's CSRF token is checked. */
  const formSession = (request: FastifyRequest, reply: FastifyReply): WebSession | undefined => {
    const session = sessions.of(request, reply)
    const body = request.body as Record<string, unknown> | undefined
    return isCsrfValid(session, body?.csrf) ? session : undefined
  }

  async function login (session: WebSession): Promise<URL> {
    const as = await o.metadata()
    const pending = { verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce() }
    session.pending = pending
    const target = new URL(as.authorization_endpoint ?? '')
    const params = {
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: o.scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce
    }
    for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value)
    return target
  }

  async function callback (session: WebSession, current: URL): Promise<void> {
    const pending = session.pending
    if (pending === undefined) throw new Error('no sign-in is in progress in this browser (start again with "Sign in")')
    delete session.pending
    const as = await o.metadata()
    const params = oauth.validateAuthResponse(as, client, current, pending.state)
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, pending.verifier, httpOptions(o.issuer))
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true })
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    if (claims === undefined || tokens.id_token === undefined) throw new Error('the issuer sent no ID token')
    session.signedIn = {
      accessToken: tokens.access_token,
      accessTokenExpiresAt: Date.now() + (tokens.expires_in ?? 0) * 1000,
      ...(tokens.refresh_token === undefined ? {} : { refreshToken: tokens.refresh_token }),
      idToken: tokens.id_token,
      ...(tokens.scope === undefined ? {} : { scope: tokens.scope }),
      claims: { ...claims }
    }
    for (const key of ['api', 'refreshed', 'logout', 'logoutState', 'error'] as const) delete session[key]
  }

  async function callApi (session: WebSession): Promise<void> {
    const signedIn = session.signedIn
    if (signedIn === undefined) return
    const answer = await fetch(new URL('/api/hello', o.gateway), { headers: { authorization: `Bearer ${signedIn.accessToken}` }, signal: AbortSignal.timeout(OUTBOUND_TIMEOUT_MS) })
    session.api = { status: answer.status, body: await answer.text() }
  }

  async function refresh (session: WebSession): Promise<void> {
    const signedIn = session.signedIn
    if (signedIn?.refreshToken === undefined) throw new Error('no refresh token: the issuer did not issue one')
    const as = await o.metadata()
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, signedIn.refreshToken, httpOptions(o.issuer))
    const tokens = await oauth.processRefreshTokenResponse(as, client, response)
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    signedIn.accessToken = tokens.access_token
    signedIn.accessTokenExpiresAt = Date.now() + (tokens.expires_in ?? 0) * 1000
    // Rotation: the old refresh token is spent; keep the new one.
    if (tokens.refresh_token !== undefined) signedIn.refreshToken = tokens.refresh_token
    if (tokens.id_token !== undefined && claims !== undefined) {
      signedIn.idToken = tokens.id_token
      signedIn.claims = { ...claims }
    }
    session.refreshed = { count: (session.refreshed?.count ?? 0) + 1 }
  }

  /** The gateway's logout, then where the browser goes: the issuer's end_session_endpoint. */
  async function logout (session: WebSession): Promise<URL | undefined> {
    const signedIn = session.signedIn
    if (signedIn === undefined) return undefined
    try {
      const answer = await fetch(new URL(o.logoutPath, o.gateway), { method: 'POST', headers: { authorization: `Bearer ${signedIn.accessToken}` }, signal: AbortSignal.timeout(OUTBOUND_TIMEOUT_MS) })
      session.logout = { status: answer.status, body: await answer.text() }
    } catch (err) {
      // The user still signs out at the issuer below.
      session.logout = { status: 0, body: `the gateway did not answer: ${(err as Error).message}` }
    }
    for (const key of ['signedIn', 'api', 'refreshed', 'error'] as const) delete session[key]
    const as = await o.metadata()
    if (as.end_session_endpoint === undefined) return undefined
    session.logoutState = oauth.generateRandomState()
    const end = new URL(as.end_session_endpoint)
    end.searchParams.set('id_token_hint', signedIn.idToken)
    end.searchParams.set('post_logout_redirect_uri', new URL('/', o.url).href)
    end.searchParams.set('state', session.logoutState)
    return end
  }

  return async function (app: FastifyInstance): Promise<void> {
    app.get('/', async (request, reply) => {
      const session = sessions.of(request, reply)
      const state = (request.query as Record<string, unknown>).state
      // Back from the issuer's logout: the state it returns is the one sent.
      const returned = session.logoutState !== undefined && state === session.logoutState
      if (returned) delete session.logoutState
      const page = homePage(pageOptions, session, returned)
      delete session.error
      return await sendPage(reply, page)
    })

    app.get('/login', async (request, reply) => {
      const session = sessions.of(request, reply)
      try {
        const target = await login(session)
        return await reply.header('cache-control', 'no-store').redirect(target.href, 303)
      } catch (err) {
        session.error = `Sign-in could not start: ${describeError(err)}`
        return await home(reply)
      }
    })

    app.get('/callback', async (request, reply) => {
      const session = sessions.of(request, reply)
      try {
        await callback(session, new URL(request.url, o.url))
        sessions.renew(request, reply, session)
      } catch (err) {
        session.error = `Not signed in: ${describeError(err)}`
      }
      return await home(reply)
    })

    const refuse = async (reply: FastifyReply): Promise<FastifyReply> => {
      return await sendPage(reply, homePage(pageOptions, { csrf: '', lastSeen: 0, error: 'This form is not from this page (its CSRF token is missing or wrong): nothing was done.' }, false), 403)
    }
    const action = (run: (session: WebSession) => Promise<unknown>, what: string) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const session = formSession(request, reply)
      if (session === undefined) return await refuse(reply)
      try {
        await run(session)
      } catch (err) {
        session.error = `${what} failed: ${describeError(err)}`
      }
      return await home(reply)
    }
    app.post('/call', action(callApi, 'The API call'))
    app.post('/refresh', action(refresh, 'The refresh'))
    app.post('/logout', async (request, reply) => {
      const session = formSession(request, reply)
      if (session === undefined) return await refuse(reply)
      try {
        const end = await logout(session)
        if (end !== undefined) return await reply.header('cache-control', 'no-store').redirect(end.href, 303)
      } catch (err) {
        session.error = `The logout failed: ${describeError(err)}`
      }
      return await home(reply)
    })
  }
}
