/**
 * The issuer's SSO session: a record in the store, pointed at by a signed, httpOnly,
 * SameSite=Lax cookie (named and scoped by `cookies.ts`). The password grant gets a
 * cookie-less session too, so its tokens carry a `sid` and logout can revoke them.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IssuerContext } from '../context.ts'
import { endSession } from '../logout/end-session.ts'
import { revocationCause } from '../ssf/events.ts'
import type { SessionRecord } from '../stores/types.ts'
import { cookiePolicy } from './cookies.ts'

/** A new session for `subject`, authenticated now. */
export async function createSession (ctx: IssuerContext, subject: string): Promise<SessionRecord> {
  const now = ctx.clock.now()
  const session: SessionRecord = {
    sid: randomBytes(24).toString('base64url'),
    subject,
    authTime: Math.floor(now / 1000),
    createdAt: now,
    expiresAt: now + ctx.config.session.ttl * 1000
  }
  await ctx.stores.sessions.create(session)
  return session
}

/** The browser's live session, or null (no cookie, bad signature, ended or expired). */
export async function currentSession (ctx: IssuerContext, request: FastifyRequest): Promise<SessionRecord | null> {
  const raw = request.cookies[cookiePolicy(ctx).session]
  if (raw === undefined) return null
  const unsigned = request.unsignCookie(raw)
  if (!unsigned.valid || unsigned.value === null) return null
  return await ctx.stores.sessions.get(unsigned.value, ctx.clock.now())
}

/**
 * Starts a browser session with a fresh sid (no session fixation). A sign-in replaces the
 * browser's previous session: that one is ended as a logout would end it, so a shared
 * browser never keeps the previous user's tokens alive. `clientId`: the client signed in to.
 */
export async function startBrowserSession (ctx: IssuerContext, reply: FastifyReply, subject: string, previous: SessionRecord | null, request: FastifyRequest, clientId: string): Promise<SessionRecord> {
  if (previous !== null) {
    await endSession(ctx, previous.sid, request.log, revocationCause('sessionReplaced'), previous.subject, { how: 'replaced_by_sign_in', client_id: clientId, ip: request.ip })
  }
  const session = await createSession(ctx, subject)
  const cookies = cookiePolicy(ctx)
  reply.setCookie(cookies.session, session.sid, { ...cookies.attributes, signed: true, sameSite: 'lax', maxAge: ctx.config.session.ttl })
  return session
}

export function clearSessionCookie (ctx: IssuerContext, reply: FastifyReply): void {
  const cookies = cookiePolicy(ctx)
  reply.clearCookie(cookies.session, { ...cookies.attributes, sameSite: 'lax' })
}
