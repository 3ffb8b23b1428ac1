/** The common tail of every grant: mint the access token and, when allowed, a refresh token. */
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import { newRefreshToken } from '../tokens/token-service.ts'

export interface Issuance {
  client: Client
  subject: string
  scope: string[]
  audience: string[]
  sid?: string
  authTime?: number
  /** Start a refresh token family (the client has the refresh_token grant). */
  withRefreshToken: boolean
}

export async function issueTokens (ctx: IssuerContext, issuance: Issuance): Promise<TokenResponse> {
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
  const response: TokenResponse = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope: scope.join(' ') }
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
    }, { jti: access.jti, expiresAt: access.expiresAt })
    response.refresh_token = refresh.token
  }
  return response
}
