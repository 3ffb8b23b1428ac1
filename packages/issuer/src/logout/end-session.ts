/**
 * Ending a session, the one path shared by RP-initiated logout and by a gateway revoking an
 * access token: remove the session, revoke its refresh token families (and their access
 * tokens), put its `sid` on the revocation list, tell the back-channel receivers.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { IssuerContext } from '../context.ts'
import { revokeFamily } from '../revocation.ts'
import { notifyReceivers, type Delivery, type Receiver } from './backchannel.ts'

export interface EndedSession {
  /** False when the session had already ended (logout is idempotent). */
  ended: boolean
  subject?: string
  notified: Delivery[]
}

/** The longest any access token can live: the sid entry must outlast every token of the session. */
function longestAccessTokenTtl (ctx: IssuerContext): number {
  return Math.max(ctx.config.tokens.accessTokenTtl, ...ctx.config.clients.map((c) => c.accessTokenTtl ?? 0))
}

export async function endSession (ctx: IssuerContext, sid: string, log: FastifyBaseLogger): Promise<EndedSession> {
  // Written first and always: gateways must reject the session's tokens even if the rest fails.
  await ctx.stores.revocations.revoke({ sid }, longestAccessTokenTtl(ctx))
  const ended = await ctx.stores.sessions.end(sid)
  if (ended === null) return { ended: false, notified: [] }
  ctx.metrics.sessionsEnded.inc()
  for (const familyId of ended.families) await revokeFamily(ctx, familyId)
  const receivers: Receiver[] = []
  for (const clientId of ended.clients) {
    const uri = ctx.clients.get(clientId)?.backchannelLogoutUri
    if (uri !== undefined) receivers.push({ audience: clientId, uri })
  }
  receivers.push(...ctx.config.backchannelLogout.resourceServers)
  const notified = await notifyReceivers(ctx, receivers, sid, ended.session.subject, log)
  log.info({ sid_revoked: true, families: ended.families.length, notified: notified.length }, 'session ended')
  return { ended: true, subject: ended.session.subject, notified }
}
