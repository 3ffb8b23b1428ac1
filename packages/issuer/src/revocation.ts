/** Writes revocations into the shared list (the gateway mirrors it). */
import type { IssuerContext } from './context.ts'
import type { IssuedAccessToken } from './stores/types.ts'

/** Each still-live access token's jti goes on the list for its remaining lifetime. */
export async function revokeAccessTokens (ctx: IssuerContext, tokens: readonly IssuedAccessToken[]): Promise<void> {
  const now = ctx.clock.now()
  await Promise.all(tokens
    .filter((t) => t.expiresAt > now)
    .map(async (t) => await ctx.stores.revocations.revoke({ jti: t.jti }, Math.ceil((t.expiresAt - now) / 1000))))
}

/** Revokes a refresh token family and the access tokens it issued. */
export async function revokeFamily (ctx: IssuerContext, familyId: string): Promise<void> {
  const family = await ctx.stores.refreshTokens.revokeFamily(familyId, ctx.clock.now())
  await revokeAccessTokens(ctx, family?.accessTokens ?? [])
}
