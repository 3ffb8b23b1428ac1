/**
 * RFC 6749 4.3, resource owner password credentials: opt-in per client, for first-party
 * clients only (RFC 9700 2.4 says MUST NOT in general; we keep it behind the client's grant list).
 */
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import type { FormParams } from '../checks/form.ts'
import { invalidGrant, invalidRequest } from '../errors.ts'
import { issueTokens } from './issue.ts'
import { createSession } from '../session/sessions.ts'

export async function passwordGrant (ctx: IssuerContext, client: Client, params: FormParams, resources: string[]): Promise<TokenResponse> {
  const { username, password } = params
  if (username === undefined || password === undefined) throw invalidRequest('username and password are required')
  if (username.length > 200 || password.length > 1024) throw invalidGrant('invalid username or password')
  const scope = ctx.scopes.select(params.scope, client.scopes)
  const grant = ctx.scopes.audience(scope, resources, client)
  // Same answer for an unknown user and a wrong password.
  const user = await ctx.users.authenticate(username, password)
  ctx.metrics.signIns.inc(user === null ? 'failure' : 'success')
  if (user === null) throw invalidGrant('invalid username or password')
  // A cookie-less session, so the tokens carry a `sid` and logout (or the gateway) can end it.
  const session = await createSession(ctx, user.subject)
  await ctx.stores.sessions.addClient(session.sid, client.id)
  const issued = await issueTokens(ctx, {
    client,
    subject: user.subject,
    ...grant,
    sid: session.sid,
    authTime: session.authTime,
    withRefreshToken: client.grants.has('refresh_token')
  })
  return issued.response
}
