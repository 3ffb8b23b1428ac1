/**
 * RFC 6749 6 with rotation (RFC 9700 4.14.2): each refresh token is single use; presenting a
 * used one revokes the whole family and the access tokens it issued.
 */
import type { FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import type { FormParams } from '../checks/form.ts'
import { invalidGrant, invalidRequest } from '../errors.ts'
import { newRefreshToken, parseRefreshToken } from '../tokens/token-service.ts'
import { revokeAccessTokens, revokeFamily } from '../revocation.ts'
import { revocationCause } from '../ssf/events.ts'
import type { IssuedAccessToken, RotateResult } from '../stores/types.ts'
import { mintIdToken } from '../tokens/id-token.ts'

/** The audit line of a reuse: whose family it was, and who presented the used token. */
function auditReuse (request: FastifyRequest, client: Client, result: Extract<RotateResult, { status: 'reused' }>): void {
  const { family } = result
  audit(request.log, 'refresh_token.reused', {
    client_id: family.clientId,
    ...(family.clientId === client.id ? {} : { by: client.id }),
    sub: family.subject,
    sid: family.sid,
    ip: request.ip,
    revoked: result.accessTokens.length
  })
}

export async function refreshTokenGrant (ctx: IssuerContext, client: Client, params: FormParams, resources: string[], request: FastifyRequest): Promise<TokenResponse> {
  if (params.refresh_token === undefined) throw invalidRequest('refresh_token is required')
  const presented = parseRefreshToken(params.refresh_token)
  if (presented === null) throw invalidGrant('invalid refresh token')
  const now = ctx.clock.now()
  const next = newRefreshToken(presented.familyId)
  const rotate = async (accessToken: IssuedAccessToken, familyExpiresAt: number): Promise<RotateResult> =>
    await ctx.stores.refreshTokens.rotate(presented.familyId, presented.hash, {
      hash: next.hash,
      familyId: presented.familyId,
      issuedAt: now,
      expiresAt: Math.min(now + ctx.config.tokens.refreshTokenTtl * 1000, familyExpiresAt)
    }, accessToken, now)

  const current = await ctx.stores.refreshTokens.find(presented.familyId, presented.hash, now)
  if (current === null) {
    // Unknown, expired or already used: the store tells which, and a reuse revokes the family.
    const result = await rotate({ jti: '-', expiresAt: now }, now)
    if (result.status === 'reused') {
      auditReuse(request, client, result)
      await revokeAccessTokens(ctx, result.accessTokens, revocationCause('refreshTokenReuse'))
    }
    throw invalidGrant(result.status === 'reused' ? 'refresh token was already used; the grant is revoked' : 'invalid refresh token')
  }
  const { family } = current
  // RFC 6749 10.4: a refresh token is bound to its client; another client's is unknown here.
  if (family.clientId !== client.id) throw invalidGrant('invalid refresh token')
  // A family never outlives its session's end (logout), even one that escaped revocation.
  if (family.sid !== undefined && await ctx.stores.sessions.hasEnded(family.sid)) {
    // Said again for receivers that missed the session's end, with what the family issued.
    const cause = revocationCause('sessionEnded')
    await ctx.signals.sessionRevoked(cause, family.sid, family.subject)
    await revokeFamily(ctx, family.id, cause)
    throw invalidGrant('the session of this grant has ended')
  }

  const scope = ctx.scopes.select(params.scope, family.scope.split(' ').filter(Boolean))
  const grant = ctx.scopes.audience(scope, resources, client, family.audience)
  const access = await ctx.tokens.mintAccessToken({
    clientId: client.id,
    subject: family.subject,
    scope: grant.scope,
    audience: grant.audience,
    ttl: client.accessTokenTtl,
    ...(family.sid === undefined ? {} : { sid: family.sid }),
    ...(family.authTime === undefined ? {} : { authTime: family.authTime })
  })
  // `find` was only a read; the store decides atomically, so of two concurrent refreshes one wins.
  const result = await rotate({ jti: access.jti, expiresAt: access.expiresAt }, family.expiresAt)
  if (result.status === 'reused') {
    auditReuse(request, client, result)
    await revokeAccessTokens(ctx, result.accessTokens, revocationCause('refreshTokenReuse'))
    throw invalidGrant('refresh token was already used; the grant is revoked')
  }
  if (result.status !== 'rotated') throw invalidGrant('invalid refresh token')
  const response: TokenResponse = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope: grant.scope.join(' '), refresh_token: next.token }
  // OIDC Core 12.2: a refresh may return a new id_token for the same session.
  if (grant.scope.includes('openid') && family.sid !== undefined && family.authTime !== undefined) {
    response.id_token = await mintIdToken(ctx, { clientId: client.id, subject: family.subject, scope: grant.scope, authTime: family.authTime, sid: family.sid, accessToken: access.token })
  }
  return response
}
