/**
 * Writes revocations into the shared list (the gateway mirrors it) and out as Shared Signals
 * events (receivers without the list learn them so).
 */
import type { IssuerContext } from './context.ts'
import type { RevocationCause } from './ssf/events.ts'
import type { IssuedAccessToken } from './stores/types.ts'

/**
 * Each still-live access token's jti goes on the list for its remaining lifetime, and out as
 * one session-revoked event (subject `jwt_id`) per token.
 */
export async function revokeAccessTokens (ctx: IssuerContext, tokens: readonly IssuedAccessToken[], cause: RevocationCause): Promise<void> {
  const now = ctx.clock.now()
  const live = tokens.filter((t) => t.expiresAt > now)
  if (live.length === 0) return
  await Promise.all(live.map(async (t) => await ctx.stores.revocations.revoke({ jti: t.jti }, Math.ceil((t.expiresAt - now) / 1000))))
  await ctx.signals.accessTokensRevoked(cause, live.map((t) => t.jti))
}

/** Revokes a refresh token family and the access tokens it issued. */
export async function revokeFamily (ctx: IssuerContext, familyId: string, cause: RevocationCause): Promise<void> {
  const family = await ctx.stores.refreshTokens.revokeFamily(familyId, ctx.clock.now())
  await revokeAccessTokens(ctx, family?.accessTokens ?? [], cause)
}
