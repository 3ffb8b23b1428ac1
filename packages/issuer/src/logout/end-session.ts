/**
 * Ending a session, the one path shared by RP-initiated logout and by a gateway revoking an
 * access token: put its `sid` on the revocation list and out as a Shared Signals event, remove
 * the session, revoke its refresh token families (and their access tokens), tell the
 * back-channel receivers.
 */
import type { FastifyBaseLogger } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { IssuerContext } from '../context.ts'
import { revokeFamily } from '../revocation.ts'
import type { RevocationCause } from '../ssf/events.ts'
import { longestAccessTokenTtl } from '../ssf/retention.ts'
import { notifyReceivers, type Delivery, type Receiver } from './backchannel.ts'

/** How a session came to end, and through whom: its `session.ended` audit line. */
export interface SessionEnding {
  how: 'rp_logout' | 'gateway_logout' | 'gateway_revocation' | 'replaced_by_sign_in'
  /** The client that asked (the RP, the gateway, the client of the new sign-in), when known. */
  client_id?: string
  ip: string
}

export interface EndedSession {
  /** False when the session had already ended (logout is idempotent). */
  ended: boolean
  subject?: string
  notified: Delivery[]
}

/**
 * Ends session `sid` for `cause`. `subject` is the session's user when the caller knows it
 * (it goes into the event, so receivers can log whose session it was).
 */
export async function endSession (ctx: IssuerContext, sid: string, log: FastifyBaseLogger, cause: RevocationCause, subject: string | undefined, ending: SessionEnding): Promise<EndedSession> {
  // Written first and always, even for a session the store no longer knows: gateways must
  // reject the session's tokens even if the rest fails. The event goes out before the session
  // is removed, so a log that cannot take it fails the request while a retry still redoes all.
  await ctx.stores.revocations.revoke({ sid }, longestAccessTokenTtl(ctx.config))
  await ctx.signals.sessionRevoked(cause, sid, subject)
  const ended = await ctx.stores.sessions.end(sid)
  if (ended === null) return { ended: false, notified: [] }
  ctx.metrics.sessionsEnded.inc()
  for (const familyId of ended.families) await revokeFamily(ctx, familyId, cause)
  const receivers: Receiver[] = []
  for (const clientId of ended.clients) {
    const uri = ctx.clients.get(clientId)?.backchannelLogoutUri
    if (uri !== undefined) receivers.push({ audience: clientId, uri })
  }
  receivers.push(...ctx.config.backchannelLogout.resourceServers)
  const notified = await notifyReceivers(ctx, receivers, sid, ended.session.subject, log)
  audit(log, 'session.ended', { ...ending, sid, sub: ended.session.subject, revoked: ended.families.length, notified: notified.length, failed: notified.filter((n) => !n.ok).length })
  return { ended: true, subject: ended.session.subject, notified }
}
