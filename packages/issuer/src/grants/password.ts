/**
 * RFC 6749 4.3, resource owner password credentials: opt-in per client, for first-party
 * clients only (RFC 9700 2.4 says MUST NOT in general; we keep it behind the client's grant list).
 */
import type { FastifyRequest } from 'fastify'
import type { Client } from '../clients.ts'
import type { IssuerContext, TokenResponse } from '../context.ts'
import type { FormParams } from '../checks/form.ts'
import { invalidGrant, invalidRequest } from '../errors.ts'
import { issueTokens } from './issue.ts'
import { createSession } from '../session/sessions.ts'
import { auditSignIn, signIn, type SignInAttempt } from '../checks/sign-in.ts'
import { TooManyFailures } from '../checks/failure-limit.ts'
import { PasswordChecksBusy } from '../password-check-limit.ts'

export async function passwordGrant (ctx: IssuerContext, client: Client, params: FormParams, resources: string[], request: FastifyRequest): Promise<TokenResponse> {
  const { username, password } = params
  if (username === undefined || password === undefined) throw invalidRequest('username and password are required')
  if (username.length > 200 || password.length > 1024) throw invalidGrant('invalid username or password')
  const scope = ctx.scopes.select(params.scope, client.scopes)
  const grant = ctx.scopes.audience(scope, resources, client)
  // The login page's failure counts apply here too (checks/sign-in.ts); a lock is a 429.
  const result = await signIn(ctx, username, password, request.ip)
  const attempt: SignInAttempt = { username, client_id: client.id, ip: request.ip, via: 'password_grant' }
  if (result.status !== 'ok') auditSignIn(request.log, result, attempt)
  if (result.status === 'locked') {
    const what = result.lock.kind === 'username' ? 'for this username' : 'from this address'
    throw new TooManyFailures(`too many failed sign-ins ${what}, try again later`, result.lock.retryAfterSeconds)
  }
  if (result.status === 'busy') throw new PasswordChecksBusy()
  // Same answer for an unknown user and a wrong password.
  if (result.status === 'failed') throw invalidGrant('invalid username or password')
  const { user } = result
  // A cookie-less session, so the tokens carry a `sid` and logout (or the gateway) can end it.
  const session = await createSession(ctx, user.subject)
  await ctx.stores.sessions.addClient(session.sid, client.id)
  auditSignIn(request.log, result, { ...attempt, sid: session.sid })
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
