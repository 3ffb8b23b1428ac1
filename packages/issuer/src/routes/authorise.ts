/**
 * /oauth2/authorise (alias /oauth2/authorize), GET and POST: the authorization endpoint with
 * its login and consent steps. The login and consent forms post back here with the original
 * request in hidden fields, so every step re-validates everything and no interaction state
 * is kept between requests.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { IssuerContext } from '../context.ts'
import { OAuthError } from '../errors.ts'
import { requestParams, resourceParams, type FormParams } from '../checks/form.ts'
import { checkClientAndRedirect, UnsafeRequestError } from '../checks/redirect-uri.ts'
import { authorizationResponse, parseAuthorizationRequest, type AuthorizationRequest } from '../checks/authorization-request.ts'
import { csrfToken, isCsrfValid } from '../checks/csrf.ts'
import { auditSignIn, loginRefusal, signIn, type SignInAttempt } from '../checks/sign-in.ts'
import { consentPage, errorPage, loginPage } from '../pages/index.ts'
import { currentSession, startBrowserSession } from '../session/sessions.ts'
import type { SessionRecord } from '../stores/types.ts'
import { hashToken } from '../tokens/token-service.ts'
import { sendPage, originOf } from './html.ts'

/** Fields our own forms add; everything else is the original authorization request. */
const FORM_FIELDS = new Set(['username', 'password', 'csrf', 'decision'])

function originalRequest (params: FormParams, resources: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(params)) if (v !== undefined && !FORM_FIELDS.has(k)) out[k] = v
  // RFC 8707 resources (repeatable) ride in one field, space-separated (a URI has no spaces).
  if (resources.length > 0) out.resource = resources.join(' ')
  return out
}

export function authoriseRoutes (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      let params: FormParams
      let target: ReturnType<typeof checkClientAndRedirect>
      try {
        params = requestParams(request)
        target = checkClientAndRedirect(params, ctx.clients)
      } catch (err) {
        // RFC 6749 4.1.2.1: without a valid client and redirect_uri, never redirect.
        if (err instanceof UnsafeRequestError || err instanceof OAuthError) {
          request.log.info({ reason: err.message }, 'authorization request refused')
          return await sendPage(reply, errorPage({ title: 'This sign-in link is not valid', message: err.message }), 400)
        }
        throw err
      }
      let authz: AuthorizationRequest | undefined
      try {
        const resources = resourceParams(request)
        authz = parseAuthorizationRequest(ctx, target.client, target.redirectUri, target.redirectUriGiven, params, resources)
        return await authorize(ctx, request, reply, authz, originalRequest(params, resources), params)
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err
        request.log.info({ client_id: target.client.id, code: err.code }, 'authorization error')
        const error: Record<string, string> = { error: err.code }
        if (err.description !== undefined) error.error_description = err.description
        const back = { redirectUri: target.redirectUri, responseType: authz?.responseType ?? (params.response_type === 'token' ? 'token' as const : 'code' as const), ...(params.state === undefined ? {} : { state: params.state }) }
        return await redirect(reply, request, authorizationResponse(ctx, back, error))
      }
    }
    for (const path of ['/oauth2/authorise', '/oauth2/authorize']) {
      app.get(path, handler)
      app.post(path, handler)
    }
  }
}

async function redirect (reply: FastifyReply, request: FastifyRequest, location: string): Promise<FastifyReply> {
  // 303 after a form POST, so the browser follows with a GET.
  return await reply.header('cache-control', 'no-store').redirect(location, request.method === 'POST' ? 303 : 302)
}

/** The named steps: who is the user, did they consent, then issue. */
async function authorize (ctx: IssuerContext, request: FastifyRequest, reply: FastifyReply, authz: AuthorizationRequest, hidden: Record<string, string>, params: FormParams): Promise<FastifyReply> {
  const isForm = request.method === 'POST' && params.csrf !== undefined
  let session = await currentSession(ctx, request)
  if (isForm && !isCsrfValid(ctx, request, reply, session, params.csrf)) {
    return await sendPage(reply, errorPage({ title: 'Please try again', message: 'This form has expired or was not sent from this site. Go back to the application and start again.' }), 403)
  }
  const formTargets = [originOf(authz.redirectUri)]
  let justLoggedIn = false

  // Step 1: authentication.
  if (isForm && params.username !== undefined) {
    // Throttled: checks/sign-in.ts counts failures per username and IP, and locks.
    const result = await signIn(ctx, params.username, params.password ?? '', request.ip)
    const attempt: SignInAttempt = { username: params.username, client_id: authz.client.id, ip: request.ip, via: 'login_page' }
    if (result.status !== 'ok') {
      auditSignIn(request.log, result, attempt)
      const refused = loginRefusal(result, reply)
      const page = loginPage({ clientName: authz.client.name, action: request.url.split('?')[0] ?? '/oauth2/authorise', hidden, csrf: csrfToken(ctx, request, reply, session), username: params.username, error: refused.message })
      return await sendPage(reply, page, refused.status, formTargets)
    }
    session = await startBrowserSession(ctx, reply, result.user.subject, session, request, authz.client.id)
    auditSignIn(request.log, result, { ...attempt, sid: session.sid })
    justLoggedIn = true
  }
  if (!justLoggedIn && needsLogin(ctx, authz, session)) {
    if (authz.prompt.has('none')) throw new OAuthError('login_required', 400, 'the user is not signed in')
    const page = loginPage({ clientName: authz.client.name, action: '/oauth2/authorise', hidden, csrf: csrfToken(ctx, request, reply, session), ...(authz.loginHint === undefined ? {} : { username: authz.loginHint }) })
    return await sendPage(reply, page, 200, formTargets)
  }
  if (session === null) throw new OAuthError('login_required', 400, 'the user is not signed in')

  // Step 2: consent.
  if (authz.client.consentRequired || authz.prompt.has('consent')) {
    const decided = isForm && (params.decision === 'allow' || params.decision === 'deny') ? params.decision : undefined
    const decision = { client_id: authz.client.id, sub: session.subject, sid: session.sid, scope: authz.scope.join(' '), ip: request.ip }
    if (decided === 'deny') {
      audit(request.log, 'consent.denied', decision)
      throw new OAuthError('access_denied', 400, 'the user denied the request')
    }
    if (decided === 'allow') {
      await ctx.stores.consents.grant(session.subject, authz.client.id, authz.scope, ctx.config.session.consentTtl * 1000, ctx.clock.now())
      audit(request.log, 'consent.given', decision)
    } else {
      const granted = new Set(await ctx.stores.consents.get(session.subject, authz.client.id, ctx.clock.now()))
      if (authz.prompt.has('consent') || !authz.scope.every((s) => granted.has(s))) {
        if (authz.prompt.has('none')) throw new OAuthError('consent_required', 400, 'the user has not consented')
        // The login already happened: the consent form must not ask for it again.
        const consentHidden = { ...hidden }
        if (justLoggedIn) {
          delete consentHidden.max_age
          if (consentHidden.prompt !== undefined) consentHidden.prompt = consentHidden.prompt.split(' ').filter((p) => p !== 'login').join(' ')
        }
        const username = ctx.users.bySubject(session.subject)?.username ?? session.subject
        const page = consentPage({
          clientName: authz.client.name,
          username,
          scopes: authz.scope.map((name) => ({ name, description: ctx.scopes.description(name) ?? name })),
          action: '/oauth2/authorise',
          hidden: consentHidden,
          csrf: csrfToken(ctx, request, reply, session)
        })
        return await sendPage(reply, page, 200, formTargets)
      }
    }
  }

  // Step 3: issue.
  await ctx.stores.sessions.addClient(session.sid, authz.client.id)
  return await redirect(reply, request, authorizationResponse(ctx, authz, await issue(ctx, authz, session, request)))
}

function needsLogin (ctx: IssuerContext, authz: AuthorizationRequest, session: SessionRecord | null): boolean {
  if (session === null) return true
  if (authz.prompt.has('login')) return true
  if (authz.maxAge !== undefined && Math.floor(ctx.clock.now() / 1000) - session.authTime > authz.maxAge) return true
  return false
}

async function issue (ctx: IssuerContext, authz: AuthorizationRequest, session: SessionRecord, request: FastifyRequest): Promise<Record<string, string>> {
  const now = ctx.clock.now()
  if (authz.responseType === 'token') {
    // Implicit: the access token goes in the fragment; never a refresh token (RFC 6749 4.2.2).
    const access = await ctx.tokens.mintAccessToken({
      clientId: authz.client.id, subject: session.subject, scope: authz.scope, audience: authz.audience, ttl: authz.client.accessTokenTtl, sid: session.sid, authTime: session.authTime
    })
    audit(request.log, 'token.issued', { grant_type: 'implicit', client_id: authz.client.id, sub: session.subject, jti: access.jti, sid: session.sid, scope: authz.scope.join(' '), ip: request.ip })
    return { access_token: access.token, token_type: 'Bearer', expires_in: String(access.expiresIn), scope: authz.scope.join(' ') }
  }
  const code = randomBytes(32).toString('base64url')
  await ctx.stores.codes.save({
    hash: hashToken(code),
    clientId: authz.client.id,
    redirectUri: authz.redirectUri,
    redirectUriGiven: authz.redirectUriGiven,
    subject: session.subject,
    scope: authz.scope,
    audience: authz.audience,
    sid: session.sid,
    authTime: session.authTime,
    ...(authz.nonce === undefined ? {} : { nonce: authz.nonce }),
    ...(authz.codeChallenge === undefined ? {} : { codeChallenge: authz.codeChallenge }),
    createdAt: now,
    expiresAt: now + ctx.config.authorization.codeTtl * 1000
  })
  return { code }
}
