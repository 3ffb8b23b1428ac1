/** RFC 6749 4.4: the client acts on its own behalf; `sub` is the client id (RFC 9068 2.2). */
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import type { FormParams } from '../checks/form.ts'
import { issueTokens } from './issue.ts'

export async function clientCredentialsGrant (ctx: IssuerContext, client: Client, params: FormParams, resources: string[]): Promise<TokenResponse> {
  const scope = ctx.scopes.select(params.scope, client.scopes, { userless: true })
  const grant = ctx.scopes.audience(scope, resources, client)
  // RFC 6749 4.4.3: no refresh token for client credentials.
  return (await issueTokens(ctx, { client, subject: client.id, ...grant, withRefreshToken: false })).response
}
