/**
 * Who may use the Shared Signals endpoints (docs/shared-signals.md, "Authorisation"): a bearer
 * access token of this issuer (RFC 6750 2.1; never in the query), for the issuer's audience,
 * not revoked, of a client still registered, with `ssf.manage` (or `ssf.read` for reads:
 * CAEP interoperability profile 2.7.2).
 */
import type { FastifyRequest } from 'fastify'
import type { Client } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { OAuthError } from '../errors.ts'
import { SSF_MANAGE_SCOPE, SSF_READ_SCOPE } from '../checks/scope.ts'

export type SsfAccess = 'manage' | 'read'

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

const invalidToken = (description: string): OAuthError => new OAuthError('invalid_token', 401, description, false)

/** The receiver client the request acts for; throws a 401 or 403 otherwise. */
export async function authenticateReceiver (ctx: IssuerContext, request: FastifyRequest, access: SsfAccess): Promise<Client> {
  const header = request.headers.authorization
  const token = header === undefined ? undefined : BEARER.exec(header)?.[1]
  if (token === undefined) throw invalidToken('a bearer access token is required')
  const claims = await ctx.tokens.readAccessToken(token)
  if (claims === null) throw invalidToken('the access token is not valid')
  const audience = [claims.aud].flat()
  if (!audience.includes(ctx.config.issuer)) throw invalidToken('the access token is not for this issuer')
  if (ctx.stores.revocations.isRevoked({ jti: claims.jti, ...(claims.sid === undefined ? {} : { sid: claims.sid }) })) throw invalidToken('the access token is revoked')
  const client = ctx.clients.get(claims.client_id)
  if (client === undefined) throw invalidToken('the client of the access token is not registered')
  const scopes = (claims.scope ?? '').split(' ')
  const allowed = access === 'manage' ? [SSF_MANAGE_SCOPE] : [SSF_MANAGE_SCOPE, SSF_READ_SCOPE]
  if (!scopes.some((s) => allowed.includes(s))) throw new OAuthError('insufficient_scope', 403, `needs scope ${allowed.join(' or ')}`, false)
  request.clientId = client.id
  return client
}
