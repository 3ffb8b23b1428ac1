/** GET/POST /oauth2/userinfo (OIDC Core 5.3), Bearer access token with scope openid (RFC 6750). */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { NOT_A_FORM } from '../checks/form.ts'
import type { IssuerContext } from '../context.ts'
import { OAuthError } from '../errors.ts'
import { claimsFor } from '../tokens/id-token.ts'

const invalidToken = (description: string): OAuthError => new OAuthError('invalid_token', 401, description, false)

/** RFC 6750 2.1 (header) or 2.2 (form body), never both. */
function bearerToken (request: FastifyRequest): string {
  const header = request.headers.authorization
  const body = request.body
  const fromBody = body !== NOT_A_FORM && body !== null && typeof body === 'object' ? (body as Record<string, unknown>).access_token : undefined
  if (header !== undefined && fromBody !== undefined) throw new OAuthError('invalid_request', 400, 'more than one access token', false)
  if (typeof fromBody === 'string') return fromBody
  const match = header === undefined ? null : /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header)
  if (match?.[1] === undefined) throw invalidToken(header === undefined ? 'no access token' : 'malformed Authorization header')
  return match[1]
}

export function userinfoRoutes (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    const handler = async (request: FastifyRequest): Promise<Record<string, unknown>> => {
      const claims = await ctx.tokens.readAccessToken(bearerToken(request))
      if (claims === null) throw invalidToken('the access token is invalid or expired')
      // Logged, and the CORS check keeps the response to this client's own web origins.
      if (typeof claims.client_id === 'string') request.clientId = claims.client_id
      if (ctx.stores.revocations.isRevoked({ jti: claims.jti, ...(claims.sid === undefined ? {} : { sid: claims.sid }) })) throw invalidToken('the access token was revoked')
      const scope = (claims.scope ?? '').split(' ')
      if (!scope.includes('openid')) throw new OAuthError('insufficient_scope', 403, 'scope openid is required', false)
      return { sub: claims.sub, ...claimsFor(ctx.users.bySubject(claims.sub), scope) }
    }
    app.get('/oauth2/userinfo', handler)
    app.post('/oauth2/userinfo', handler)
  }
}
