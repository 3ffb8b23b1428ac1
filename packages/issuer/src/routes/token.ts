/** POST /oauth2/token (RFC 6749 3.2): authenticate the client, run its grant, answer no-store. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { authenticatedClient } from '../checks/client-auth.ts'
import { formParams, resourceParams, type FormParams } from '../checks/form.ts'
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import { OAuthError, invalidRequest, unauthorizedClient } from '../errors.ts'
import { clientCredentialsGrant } from '../grants/client-credentials.ts'
import { passwordGrant } from '../grants/password.ts'
import { refreshTokenGrant } from '../grants/refresh-token.ts'
import { authorizationCodeGrant } from '../grants/authorization-code.ts'

type GrantHandler = (ctx: IssuerContext, client: Client, params: FormParams, resources: string[], request: FastifyRequest) => Promise<TokenResponse>

const grants = new Map<string, { name: Parameters<Client['grants']['has']>[0], handle: GrantHandler }>([
  ['client_credentials', { name: 'client_credentials', handle: clientCredentialsGrant }],
  ['password', { name: 'password', handle: passwordGrant }],
  ['refresh_token', { name: 'refresh_token', handle: refreshTokenGrant }],
  ['authorization_code', { name: 'authorization_code', handle: authorizationCodeGrant }]
])

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
      const response = await grant.handle(ctx, client, params, resources, request)
      ctx.metrics.tokens.inc(grant.name)
      // RFC 6749 5.1: token responses must not be cached.
      return await reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(response)
    })
  }
}
