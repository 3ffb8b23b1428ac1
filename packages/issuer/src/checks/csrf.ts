/**
 * CSRF protection for the issuer's forms. Every form repeats a token in a hidden `csrf` field;
 * the token is an HMAC (the cookie secret's signer) of what the browser holds: its SSO session
 * (the sid) once signed in, else a random pre-session id in a cookie of its own. So a token
 * works only with the cookie it was made for: a pair planted by a sibling subdomain does not
 * work once the victim has a session, and a token from another browser works nowhere.
 * (Under https the cookies are `__Host-` cookies, which a sibling cannot plant at all.)
 */
import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IssuerContext } from '../context.ts'
import { safeEqual } from '../secrets.ts'
import { cookiePolicy } from '../session/cookies.ts'
import type { SessionRecord } from '../stores/types.ts'

/** The token for the next form: bound to `session`, or to the pre-session cookie (set now if missing). */
export function csrfToken (ctx: IssuerContext, request: FastifyRequest, reply: FastifyReply, session: SessionRecord | null): string {
  if (session !== null) return tokenFor(reply, `sid:${session.sid}`)
  let preSession = readPreSession(ctx, request)
  if (preSession === undefined) {
    preSession = randomBytes(24).toString('base64url')
    const cookies = cookiePolicy(ctx)
    reply.setCookie(cookies.preSession, preSession, { ...cookies.attributes, sameSite: 'strict' })
  }
  return tokenFor(reply, `pre:${preSession}`)
}

/** True when the form's `csrf` field is the token for what the browser holds now. */
export function isCsrfValid (ctx: IssuerContext, request: FastifyRequest, reply: FastifyReply, session: SessionRecord | null, submitted: string | undefined): boolean {
  if (submitted === undefined) return false
  const preSession = readPreSession(ctx, request)
  const binding = session !== null ? `sid:${session.sid}` : preSession === undefined ? undefined : `pre:${preSession}`
  return binding !== undefined && safeEqual(tokenFor(reply, binding), submitted)
}

/** The signature part of the signer's `value.signature`: an HMAC-SHA256 of the binding. */
function tokenFor (reply: FastifyReply, binding: string): string {
  const signed = reply.signCookie(`csrf|${binding}`)
  return signed.slice(signed.lastIndexOf('.') + 1)
}

function readPreSession (ctx: IssuerContext, request: FastifyRequest): string | undefined {
  const value = request.cookies[cookiePolicy(ctx).preSession]
  return value !== undefined && /^[A-Za-z0-9_-]{32}$/.test(value) ? value : undefined
}
