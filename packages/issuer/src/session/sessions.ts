/**
 * The issuer's SSO session: a record in the store, pointed at by a signed, httpOnly,
 * SameSite=Lax cookie (Secure when the issuer is https). The password grant gets a
 * cookie-less session too, so its tokens carry a `sid` and logout can revoke them.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IssuerContext } from '../context.ts'
import type { SessionRecord } from '../stores/types.ts'

export function isSecure (ctx: IssuerContext): boolean {
  return ctx.config.issuer.startsWith('https:')
}

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
  const raw = request.cookies[ctx.config.session.cookieName]
  if (raw === undefined) return null
  const unsigned = request.unsignCookie(raw)
  if (!unsigned.valid || unsigned.value === null) return null
  return await ctx.stores.sessions.get(unsigned.value, ctx.clock.now())
}

/** Starts a browser session; a fresh sid on every login (no session fixation). */
export async function startBrowserSession (ctx: IssuerContext, reply: FastifyReply, subject: string): Promise<SessionRecord> {
  const session = await createSession(ctx, subject)
  reply.setCookie(ctx.config.session.cookieName, session.sid, {
    signed: true,
    httpOnly: true,
    sameSite: 'lax',
    secure: isSecure(ctx),
    path: '/',
    maxAge: ctx.config.session.ttl
  })
  return session
}

export function clearSessionCookie (ctx: IssuerContext, reply: FastifyReply): void {
  reply.clearCookie(ctx.config.session.cookieName, { path: '/', httpOnly: true, sameSite: 'lax', secure: isSecure(ctx) })
}
