/**
 * POST /oauth2/revoke (RFC 7009). Refresh token: its whole family and the access tokens it
 * issued. Access token: its jti goes on the shared revocation list for its remaining lifetime.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import { endSession } from '../logout/end-session.ts'
import { authenticatedClient } from '../checks/client-auth.ts'
import { formParams } from '../checks/form.ts'
import type { Client } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { invalidRequest } from '../errors.ts'
import { revokeAccessTokens } from '../revocation.ts'
import { revocationCause } from '../ssf/events.ts'
import { looksLikeJwt, parseRefreshToken } from '../tokens/token-service.ts'

/** A client may revoke its own tokens; a trusted gateway client (`revokesAnyToken`) anyone's. */
function mayTouch (client: Client, ownerClientId: string): boolean {
  return client.revokesAnyToken || client.id === ownerClientId
}

/** Revokes `token` for `client` and writes the `token.revoked` audit line (one per request). */
export async function revokeToken (ctx: IssuerContext, client: Client, token: string, request: FastifyRequest): Promise<'revoked' | 'session-ended' | 'unknown'> {
  const now = ctx.clock.now()
  const by = { client_id: client.id, ip: request.ip }
  const unknown = (): 'unknown' => {
    audit(request.log, 'token.revoked', { ...by, outcome: 'unknown' })
    return 'unknown'
  }
  const refresh = parseRefreshToken(token)
  if (refresh !== null) {
    const found = await ctx.stores.refreshTokens.find(refresh.familyId, refresh.hash, now)
    if (found === null) return unknown()
    if (!mayTouch(client, found.family.clientId)) throw invalidRequest('the token was issued to another client')
    const revoked = await ctx.stores.refreshTokens.revokeFamily(refresh.familyId, now)
    await revokeAccessTokens(ctx, revoked?.accessTokens ?? [], revocationCause('tokenRevoked'))
    const { family } = found
    audit(request.log, 'token.revoked', { ...by, outcome: 'revoked', token_type: 'refresh_token', sub: family.subject, sid: family.sid, revoked: revoked?.accessTokens.length ?? 0 })
    return 'revoked'
  }
  if (!looksLikeJwt(token)) return unknown()
  const claims = await ctx.tokens.readAccessToken(token)
  if (claims === null) return unknown()
  if (!mayTouch(client, claims.client_id)) throw invalidRequest('the token was issued to another client')
  // The gateway's logout path (documented variant of RFC 7009): a trusted gateway client
  // revoking a user's access token ends that token's whole session.
  const isLogout = client.revokesAnyToken && claims.sid !== undefined
  const cause = revocationCause(isLogout ? 'logout' : 'tokenRevoked')
  await revokeAccessTokens(ctx, [{ jti: claims.jti, expiresAt: claims.exp * 1000 }], cause)
  const revoked = { ...by, token_type: 'access_token', jti: claims.jti, sub: claims.sub, sid: claims.sid }
  if (isLogout && claims.sid !== undefined) {
    audit(request.log, 'token.revoked', { ...revoked, outcome: 'session_ended' })
    await endSession(ctx, claims.sid, request.log, cause, claims.sub, { how: 'gateway_revocation', client_id: client.id, ip: request.ip })
    return 'session-ended'
  }
  audit(request.log, 'token.revoked', { ...revoked, outcome: 'revoked' })
  return 'revoked'
}

export function revokeRoute (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/oauth2/revoke', async (request, reply) => {
      const params = formParams(request)
      const client = authenticatedClient(request)
      if (params.token === undefined) throw invalidRequest('token is required')
      // The hint only orders the search (RFC 7009 2.1); both kinds are tried whatever it says.
      await revokeToken(ctx, client, params.token, request)
      // RFC 7009 2.2: 200 whether or not the token was valid.
      return await reply.header('cache-control', 'no-store').send()
    })
  }
}
