/** The common tail of every grant: mint the access token and, when allowed, a refresh token and id_token. */
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import type { IssuedAccessToken } from '../stores/types.ts'
import { mintIdToken } from '../tokens/id-token.ts'
import { newRefreshToken } from '../tokens/token-service.ts'
import { invalidGrant } from '../errors.ts'
import { revokeFamily } from '../revocation.ts'
import { revocationCause } from '../ssf/events.ts'

export interface Issuance {
  client: Client
  subject: string
  scope: string[]
  audience: string[]
  sid?: string
  authTime?: number
  /** Start a refresh token family (the client has the refresh_token grant). */
  withRefreshToken: boolean
  /** For the id_token (scope openid with a user session). */
  nonce?: string
}

export interface Issued {
  response: TokenResponse
  accessToken: IssuedAccessToken
  familyId?: string
}

export async function issueTokens (ctx: IssuerContext, issuance: Issuance): Promise<Issued> {
  const { client, subject, scope, audience, sid, authTime } = issuance
  const access = await ctx.tokens.mintAccessToken({
    clientId: client.id,
    subject,
    scope,
    audience,
    ttl: client.accessTokenTtl,
    ...(sid === undefined ? {} : { sid }),
    ...(authTime === undefined ? {} : { authTime })
  })
  const accessToken = { jti: access.jti, expiresAt: access.expiresAt }
  const response: TokenResponse = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope: scope.join(' ') }
  let familyId: string | undefined
  if (issuance.withRefreshToken) {
    const now = ctx.clock.now()
    const { tokens } = ctx.config
    const refresh = newRefreshToken()
    const familyExpiresAt = now + tokens.refreshTokenMaxTtl * 1000
    await ctx.stores.refreshTokens.create({
      id: refresh.familyId,
      clientId: client.id,
      subject,
      scope: scope.join(' '),
      audience,
      ...(sid === undefined ? {} : { sid }),
      ...(authTime === undefined ? {} : { authTime }),
      createdAt: now,
      expiresAt: familyExpiresAt
    }, {
      hash: refresh.hash,
      familyId: refresh.familyId,
      issuedAt: now,
      expiresAt: Math.min(now + tokens.refreshTokenTtl * 1000, familyExpiresAt)
    }, accessToken)
    // Logout revokes the session's families. Recording it is atomic with the session's end:
    // a logout that won the race leaves nothing alive (the family and its token are revoked).
    if (sid !== undefined && !await ctx.stores.sessions.addFamily(sid, refresh.familyId)) {
      await revokeFamily(ctx, refresh.familyId, revocationCause('sessionEnded'))
      throw invalidGrant('the session of this grant has ended')
    }
    response.refresh_token = refresh.token
    familyId = refresh.familyId
  }
  if (scope.includes('openid') && sid !== undefined && authTime !== undefined) {
    response.id_token = await mintIdToken(ctx, {
      clientId: client.id, subject, scope, authTime, sid, accessToken: access.token, ...(issuance.nonce === undefined ? {} : { nonce: issuance.nonce })
    })
  }
  return { response, accessToken, ...(familyId === undefined ? {} : { familyId }) }
}
