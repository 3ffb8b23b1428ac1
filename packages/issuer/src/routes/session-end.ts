/**
 * POST /oauth2/session/end: the gateway's logout. A trusted gateway client (`revokesAnyToken`)
 * hands over the caller's access token; the issuer revokes it, ends its session (as
 * RP-initiated logout does) and returns one Back-Channel Logout `logout_token` per requested
 * `audience`, for the gateway to deliver to the resource servers registered with it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { authenticatedClient } from '../checks/client-auth.ts'
import { formParams } from '../checks/form.ts'
import type { IssuerContext } from '../context.ts'
import { invalidRequest, OAuthError } from '../errors.ts'
import { logoutToken } from '../logout/backchannel.ts'
import { endSession } from '../logout/end-session.ts'
import { revokeAccessTokens } from '../revocation.ts'
import { revocationCause } from '../ssf/events.ts'

/** Most logout tokens one request may ask for. */
const MAX_AUDIENCES = 16

export interface SessionEndResponse {
  /** True when the session existed and this call ended it; false on a repeat. */
  ended: boolean
  sid: string | null
  sub: string
  jti: string
  exp: number
  /** audience -> logout_token (OIDC Back-Channel Logout 1.0 2.4); empty without a `sid`. */
  logout_tokens: Record<string, string>
}

/** The repeated `audience` parameter: 0..16 distinct, non-empty values. */
function audienceParams (request: FastifyRequest): string[] {
  const value = (request.body as Record<string, unknown>).audience
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value]
  for (const v of values) {
    if (typeof v !== 'string' || v === '' || v.length > 1024) throw invalidRequest('invalid audience parameter')
  }
  const unique = [...new Set(values as string[])]
  if (unique.length > MAX_AUDIENCES) throw invalidRequest(`at most ${MAX_AUDIENCES} audience parameters`)
  return unique
}

export function sessionEndRoute (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/oauth2/session/end', async (request, reply) => {
      const params = formParams(request)
      const client = authenticatedClient(request)
      // Authenticated but not trusted: a 403 says "who you are is known, this is not for you".
      if (!client.revokesAnyToken) throw new OAuthError('unauthorized_client', 403, 'only a gateway client (revokesAnyToken) may end sessions', false)
      if (params.token === undefined) throw invalidRequest('token is required')
      const audiences = audienceParams(request)

      // Expired or already revoked tokens are accepted: a repeated logout stays a 200.
      const claims = await ctx.tokens.readAccessTokenForLogout(params.token)
      if (claims === null) throw invalidRequest('token is not an access token of this issuer')

      // revokeAccessTokens skips a token that has already expired.
      const cause = revocationCause('logout')
      await revokeAccessTokens(ctx, [{ jti: claims.jti, expiresAt: claims.exp * 1000 }], cause)
      const sid = claims.sid ?? null
      const ended = sid === null ? false : (await endSession(ctx, sid, request.log, cause, claims.sub, { how: 'gateway_logout', client_id: client.id, ip: request.ip })).ended
      const logoutTokens: Record<string, string> = {}
      if (sid !== null) {
        for (const audience of audiences) logoutTokens[audience] = await logoutToken(ctx, audience, sid, claims.sub)
      }
      request.log.info({ ended, has_sid: sid !== null, logout_tokens: audiences.length }, 'session end')
      const body: SessionEndResponse = { ended, sid, sub: claims.sub, jti: claims.jti, exp: claims.exp, logout_tokens: logoutTokens }
      return await reply.header('cache-control', 'no-store').send(body)
    })
  }
}
