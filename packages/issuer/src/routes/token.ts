/** POST /oauth2/token (RFC 6749 3.2): authenticate the client, run its grant, answer no-store. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import { authenticatedClient } from '../checks/client-auth.ts'
import { formParams, resourceParams, type FormParams } from '../checks/form.ts'
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import { OAuthError, invalidRequest, unauthorizedClient } from '../errors.ts'
import { clientCredentialsGrant } from '../grants/client-credentials.ts'
import { passwordGrant } from '../grants/password.ts'
import { refreshTokenGrant } from '../grants/refresh-token.ts'
import { authorizationCodeGrant } from '../grants/authorization-code.ts'
import { traceGrant } from '../tracing.ts'

type GrantHandler = (ctx: IssuerContext, client: Client, params: FormParams, resources: string[], request: FastifyRequest) => Promise<TokenResponse>

const grants = new Map<string, { name: Parameters<Client['grants']['has']>[0], handle: GrantHandler }>([
  ['client_credentials', { name: 'client_credentials', handle: clientCredentialsGrant }],
  ['password', { name: 'password', handle: passwordGrant }],
  ['refresh_token', { name: 'refresh_token', handle: refreshTokenGrant }],
  ['authorization_code', { name: 'authorization_code', handle: authorizationCodeGrant }]
])

/** The ids in the access token a grant just minted (ours, so read without a check), for the audit line. */
function issuedClaims (accessToken: string): { sub?: string, jti?: string, sid?: string } {
  // Never throws: the grant has done its work (a refresh token rotated), the answer must go out.
  try {
    const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
    const id = (value: unknown): string | undefined => typeof value === 'string' ? value : undefined
    return { sub: id(claims.sub), jti: id(claims.jti), sid: id(claims.sid) }
  } catch {
    return {}
  }
}

export function tokenRoute (ctx: IssuerContext, rateLimit: Record<string, unknown> | undefined) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/oauth2/token', { config: rateLimit === undefined ? {} : { rateLimit } }, async (request, reply) => {
      const params = formParams(request)
      const resources = resourceParams(request)
      const client = authenticatedClient(request)
      const grantType = params.grant_type
      if (grantType === undefined) throw invalidRequest('grant_type is required')
      const grant = grants.get(grantType)
      if (grant === undefined) throw new OAuthError('unsupported_grant_type', 400, `grant_type "${grantType.slice(0, 64)}" is not supported`)
      if (!client.grants.has(grant.name)) throw unauthorizedClient(`client may not use the ${grantType} grant`)
      const response = await traceGrant(grant.name, client.id, async () => await grant.handle(ctx, client, params, resources, request))
      ctx.metrics.tokens.inc(grant.name)
      const issued = issuedClaims(response.access_token)
      audit(request.log, 'token.issued', { grant_type: grant.name, client_id: client.id, sub: issued.sub, jti: issued.jti, sid: issued.sid, scope: response.scope, ip: request.ip })
      // RFC 6749 5.1: token responses must not be cached.
      return await reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(response)
    })
  }
}
