/**
 * RFC 6749 4.1.3 with PKCE (RFC 7636): a code is single use, short-lived and bound to its
 * client, redirect_uri and code_challenge. A replayed code revokes what it issued (4.1.2).
 */
import type { FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import type { FormParams } from '../checks/form.ts'
import { checkCodeVerifier } from '../checks/pkce.ts'
import { invalidGrant, invalidRequest } from '../errors.ts'
import { revokeAccessTokens, revokeFamily } from '../revocation.ts'
import { revocationCause } from '../ssf/events.ts'
import { hashToken } from '../tokens/token-service.ts'
import { issueTokens } from './issue.ts'

export async function authorizationCodeGrant (ctx: IssuerContext, client: Client, params: FormParams, resources: string[], request: FastifyRequest): Promise<TokenResponse> {
  if (params.code === undefined) throw invalidRequest('code is required')
  if (params.code.length > 256) throw invalidGrant('invalid authorization code')
  const now = ctx.clock.now()
  const hash = hashToken(params.code)
  const result = await ctx.stores.codes.consume(hash, now)
  if (result.status === 'invalid') throw invalidGrant('invalid or expired authorization code')
  if (result.status === 'replayed') {
    // RFC 6749 4.1.2: a code used twice revokes the tokens issued from it.
    const issued = result.issued
    audit(request.log, 'authorization_code.replayed', { client_id: client.id, ip: request.ip, jti: issued?.accessToken.jti })
    const cause = revocationCause('codeReplay')
    if (issued?.familyId !== undefined) await revokeFamily(ctx, issued.familyId, cause)
    if (issued !== undefined) await revokeAccessTokens(ctx, [issued.accessToken], cause)
    throw invalidGrant('authorization code was already used; its tokens are revoked')
  }
  const code = result.code
  if (code.clientId !== client.id) throw invalidGrant('the code was issued to another client')
  // RFC 6749 4.1.3: redirect_uri must be identical when the authorization request had one.
  if ((code.redirectUriGiven || params.redirect_uri !== undefined) && params.redirect_uri !== code.redirectUri) {
    throw invalidGrant('redirect_uri does not match the authorization request')
  }
  checkCodeVerifier(params.code_verifier, code.codeChallenge)
  // The session may have ended (logout) between the redirect and this exchange.
  if (await ctx.stores.sessions.get(code.sid, now) === null) throw invalidGrant('the session of this code has ended')

  const grant = ctx.scopes.audience(code.scope, resources, client, code.audience)
  const issued = await issueTokens(ctx, {
    client,
    subject: code.subject,
    scope: grant.scope,
    audience: grant.audience,
    sid: code.sid,
    authTime: code.authTime,
    withRefreshToken: client.grants.has('refresh_token'),
    ...(code.nonce === undefined ? {} : { nonce: code.nonce })
  })
  await ctx.stores.codes.recordIssued(hash, { accessToken: issued.accessToken, ...(issued.familyId === undefined ? {} : { familyId: issued.familyId }) })
  return issued.response
}
