/**
 * A username and password sign-in (login page and password grant), throttled as Keycloak's
 * brute-force detection does. Only FAILED attempts count, per username and per client IP (the
 * IP cap is higher: people share addresses). At its max a username or address is locked until
 * its window ends, the right password included, and no password is checked meanwhile (no
 * scrypt spent). A success clears the username's failures, not the address's: else one account
 * of an attacker's own would reset the address's count. Unknown usernames are counted like
 * known ones, so a lock tells nothing about which exist.
 */
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { User } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { PasswordChecksBusy } from '../password-check-limit.ts'
import { FailureLimit, type Counted, type Lock } from './failure-limit.ts'

export type SignInResult =
  | { status: 'ok', user: User }
  /** Wrong password or unknown user: one answer for both. */
  | { status: 'failed' }
  /** `lock.kind` is `username` or `login-ip`. */
  | { status: 'locked', lock: Lock }
  /** Too many password checks at once (rateLimit.passwordHashQueue). */
  | { status: 'busy' }

/** Case and compatibility forms do not make a new count: `Alice` and `alice` are one. */
function usernameKey (username: string): string {
  return username.normalize('NFKC').toLowerCase().slice(0, 200)
}

export async function signIn (ctx: IssuerContext, username: string, password: string, ip: string): Promise<SignInResult> {
  const limits = ctx.config.rateLimit
  const limit = new FailureLimit(ctx.stores.authFailures, ctx.clock, limits.loginWindow)
  const byUsername: Counted = { kind: 'username', id: usernameKey(username), max: limits.loginPerUsername }
  const counted = [byUsername, { kind: 'login-ip' as const, id: ip, max: limits.loginPerIp }]
  const { lock, failing } = await limit.check(counted)
  if (lock !== null) return { status: 'locked', lock }
  let user: User | null
  try {
    user = await ctx.users.authenticate(username, password)
  } catch (err) {
    if (err instanceof PasswordChecksBusy) return { status: 'busy' }
    throw err
  }
  ctx.metrics.signIns.inc(user === null ? 'failure' : 'success')
  if (user === null) {
    await limit.fail(counted)
    return { status: 'failed' }
  }
  if (failing.includes(byUsername)) await limit.clear([byUsername])
  return { status: 'ok', user }
}

/** Who tried to sign in, where, and the session a success started. */
export interface SignInAttempt {
  username: string
  client_id: string
  ip: string
  via: 'login_page' | 'password_grant'
  sid?: string
}

/** The audit line of a sign-in: succeeded, failed (wrong password or unknown user) or throttled. */
export function auditSignIn (log: FastifyBaseLogger, result: SignInResult, attempt: SignInAttempt): void {
  switch (result.status) {
    case 'ok':
      audit(log, 'sign_in.succeeded', { ...attempt, username: result.user.username, sub: result.user.subject })
      return
    case 'failed':
      audit(log, 'sign_in.failed', { ...attempt, reason: 'invalid_credentials' })
      return
    case 'busy':
      audit(log, 'sign_in.throttled', { ...attempt, reason: 'password_checks_busy' })
      return
    case 'locked':
      audit(log, 'sign_in.throttled', { ...attempt, reason: result.lock.kind === 'username' ? 'username_locked' : 'ip_locked', retry_after: result.lock.retryAfterSeconds })
  }
}

/**
 * How the login page answers a sign-in that did not succeed: the status and the words shown
 * above the form (which stays, for the next try), with `Retry-After` on the reply when
 * waiting helps (RFC 9110 10.2.3).
 */
export function loginRefusal (result: Exclude<SignInResult, { status: 'ok' }>, reply: FastifyReply): { status: number, message: string } {
  if (result.status === 'failed') return { status: 401, message: 'Invalid username or password.' }
  if (result.status === 'busy') {
    reply.header('retry-after', '1')
    return { status: 503, message: 'Too many sign-ins at this moment. Try again in a few seconds.' }
  }
  const { kind, retryAfterSeconds } = result.lock
  reply.header('retry-after', String(retryAfterSeconds))
  const minutes = Math.ceil(retryAfterSeconds / 60)
  const what = kind === 'username' ? 'for this username' : 'from this network address'
  return { status: 429, message: `Too many failed sign-ins ${what}. Try again in ${minutes <= 1 ? 'a minute' : `${minutes} minutes`}.` }
}
