/**
 * /oauth2/logout, GET and POST (OIDC RP-Initiated Logout 1.0). Ends the SSO session through
 * `endSession` and redirects only to a registered post_logout_redirect_uri; anything else
 * shows the signed-out page. The user confirms first unless the id_token_hint names the very
 * session this browser holds: a link carrying someone else's id_token (an attacker's own,
 * say) must not sign the victim out unasked.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IssuerContext } from '../context.ts'
import { requestParams, type FormParams } from '../checks/form.ts'
import { csrfToken, isCsrfValid } from '../checks/csrf.ts'
import { OAuthError } from '../errors.ts'
import { endSession } from '../logout/end-session.ts'
import { revocationCause } from '../ssf/events.ts'
import { errorPage, loggedOutPage, logoutConfirmPage } from '../pages/index.ts'
import { clearSessionCookie, currentSession } from '../session/sessions.ts'
import { safeEqual } from '../secrets.ts'
import { sendPage, originOf } from './html.ts'

interface LogoutRequest {
  sid?: string
  /** The `sub` of the id_token_hint naming `sid`. */
  subject?: string
  /** Where to go afterwards, when registered for the client. */
  redirect?: string
  /** The RP asking: `client_id`, or the id_token_hint's audience. */
  clientId?: string
  state?: string
}

async function readLogoutRequest (ctx: IssuerContext, params: FormParams): Promise<LogoutRequest> {
  let hint: Awaited<ReturnType<typeof ctx.tokens.readIdTokenHint>> = null
  if (params.id_token_hint !== undefined) {
    hint = await ctx.tokens.readIdTokenHint(params.id_token_hint)
    if (hint === null) throw new OAuthError('invalid_request', 400, 'id_token_hint is not an id_token of this issuer', false)
  }
  const hintedClients = hint === null ? [] : [hint.aud].flat().filter((a): a is string => typeof a === 'string')
  if (params.client_id !== undefined && hint !== null && !hintedClients.includes(params.client_id)) {
    throw new OAuthError('invalid_request', 400, 'client_id does not match id_token_hint', false)
  }
  const client = ctx.clients.get(params.client_id ?? hintedClients[0] ?? '')
  const uri = params.post_logout_redirect_uri
  // Exact match against the client's registered list, or no redirect at all.
  const redirect = uri !== undefined && client?.postLogoutRedirectUris.includes(uri) === true ? uri : undefined
  return {
    ...(typeof hint?.sid === 'string' ? { sid: hint.sid, ...(typeof hint.sub === 'string' ? { subject: hint.sub } : {}) } : {}),
    ...(redirect === undefined ? {} : { redirect }),
    ...(client === undefined ? {} : { clientId: client.id }),
    ...(params.state === undefined ? {} : { state: params.state.slice(0, 2048) })
  }
}

export function logoutRoutes (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      let params: FormParams
      let logout: LogoutRequest
      try {
        params = requestParams(request)
        logout = await readLogoutRequest(ctx, params)
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err
        return await sendPage(reply, errorPage({ title: 'Sign-out request not valid', message: err.description ?? err.code }), 400)
      }
      const session = await currentSession(ctx, request)
      const confirmed = request.method === 'POST' && params.confirm === 'yes' && isCsrfValid(ctx, request, reply, session, params.csrf)
      // A hint for this browser's own session proves its application asked; any other hint
      // proves only that someone holds an id_token, so the user confirms.
      const hintsThisSession = session !== null && logout.sid !== undefined && safeEqual(logout.sid, session.sid)
      if (session !== null && !hintsThisSession && !confirmed) {
        const hidden: Record<string, string> = {}
        for (const [k, v] of Object.entries(params)) if (v !== undefined && k !== 'csrf' && k !== 'confirm') hidden[k] = v
        const page = logoutConfirmPage({ action: '/oauth2/logout', hidden, csrf: csrfToken(ctx, request, reply, session), username: ctx.users.bySubject(session.subject)?.username ?? session.subject })
        return await sendPage(reply, page, 200, logout.redirect === undefined ? [] : [originOf(logout.redirect)])
      }
      const subjects = new Map<string, string | undefined>()
      if (logout.sid !== undefined) subjects.set(logout.sid, logout.subject)
      if (session !== null) subjects.set(session.sid, session.subject)
      const cause = revocationCause('logout')
      const ending = { how: 'rp_logout' as const, ip: request.ip, ...(logout.clientId === undefined ? {} : { client_id: logout.clientId }) }
      for (const [sid, subject] of subjects) await endSession(ctx, sid, request.log, cause, subject, ending)
      clearSessionCookie(ctx, reply)
      if (logout.redirect !== undefined) {
        const target = new URL(logout.redirect)
        if (logout.state !== undefined) target.searchParams.set('state', logout.state)
        return await reply.header('cache-control', 'no-store').redirect(target.toString(), request.method === 'POST' ? 303 : 302)
      }
      return await sendPage(reply, loggedOutPage())
    }
    app.get('/oauth2/logout', handler)
    app.post('/oauth2/logout', handler)
  }
}
