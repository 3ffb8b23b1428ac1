/** POST /oauth2/introspect (RFC 7662), for authenticated confidential clients (resource servers). */
import type { FastifyInstance } from 'fastify'
import { authenticatedClient } from '../checks/client-auth.ts'
import { formParams } from '../checks/form.ts'
import type { Client } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { invalidClient, invalidRequest } from '../errors.ts'
import { parseRefreshToken } from '../tokens/token-service.ts'

const INACTIVE = { active: false } as const

/**
 * RFC 7662 4: a client learns about a token only when it was issued to it, when it is one of
 * the token's audiences (a resource server), or when it is trusted with every token (the
 * gateway's client, `revokesAnyToken`). Anyone else hears `active: false`, as for a bad token.
 */
function mayLearnAbout (client: Client, issuedTo: string, audience: string | string[] | undefined): boolean {
  return client.revokesAnyToken || client.id === issuedTo || [audience ?? []].flat().includes(client.id)
}

export async function introspect (ctx: IssuerContext, client: Client, token: string): Promise<Record<string, unknown>> {
  const now = ctx.clock.now()
  const refresh = parseRefreshToken(token)
  if (refresh !== null) {
    const found = await ctx.stores.refreshTokens.find(refresh.familyId, refresh.hash, now)
    // A refresh token is for its own client only: its audiences never redeem it.
    if (found === null || !mayLearnAbout(client, found.family.clientId, [])) return INACTIVE
    const { family, token: record } = found
    return {
      active: true,
      token_type: 'refresh_token',
      client_id: family.clientId,
      sub: family.subject,
      scope: family.scope,
      aud: family.audience,
      iss: ctx.config.issuer,
      iat: Math.floor(record.issuedAt / 1000),
      exp: Math.floor(record.expiresAt / 1000),
      ...(family.sid === undefined ? {} : { sid: family.sid })
    }
  }
  const claims = await ctx.tokens.readAccessToken(token)
  if (claims === null || ctx.stores.revocations.isRevoked({ jti: claims.jti, ...(claims.sid === undefined ? {} : { sid: claims.sid }) })) return INACTIVE
  if (!mayLearnAbout(client, claims.client_id, claims.aud)) return INACTIVE
  return { active: true, token_type: 'Bearer', ...claims }
}

export function introspectRoute (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/oauth2/introspect', async (request, reply) => {
      const params = formParams(request)
      const client = authenticatedClient(request)
      // RFC 7662 2.1 requires authorization; a public client proves nothing.
      if (client.isPublic) throw invalidClient('introspection needs a confidential client')
      if (params.token === undefined) throw invalidRequest('token is required')
      const body = await introspect(ctx, client, params.token)
      request.log.debug({ active: body.active }, 'introspection')
      return await reply.header('cache-control', 'no-store').send(body)
    })
  }
}
