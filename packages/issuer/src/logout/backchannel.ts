/**
 * OIDC Back-Channel Logout 1.0: a signed logout_token POSTed to each receiver, in parallel,
 * each with a timeout and one retry after no answer or a 5xx (the delivery is shared with the
 * gateway). A receiver that fails is logged, never blocks the logout.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { audit, loggableUri } from '@gatehouse/shared/audit'
import type { IssuerContext } from '../context.ts'
import { deliverLogoutToken } from '@gatehouse/shared/backchannel'

export interface Receiver {
  /** `aud` of the logout_token: the client id, or a resource server's audience. */
  audience: string
  uri: string
}

export interface Delivery {
  audience: string
  uri: string
  ok: boolean
  status?: number
}

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** Back-Channel Logout 2.4: iss, aud, iat, exp, jti, events, sid and sub; never a nonce. */
export async function logoutToken (ctx: IssuerContext, audience: string, sid: string, subject: string): Promise<string> {
  const now = Math.floor(ctx.clock.now() / 1000)
  const claims = { aud: audience, iat: now, exp: now + 120, jti: randomBytes(16).toString('base64url'), sub: subject, sid, events: { [EVENT]: {} } }
  return (await ctx.tokens.sign(claims, 'logout+jwt')).token
}

export async function notifyReceivers (ctx: IssuerContext, receivers: readonly Receiver[], sid: string, subject: string, log: FastifyBaseLogger): Promise<Delivery[]> {
  const options = { timeout: ctx.config.backchannelLogout.timeout * 1000, retries: 1 }
  return await Promise.all(receivers.map(async ({ audience, uri }): Promise<Delivery> => {
    const { ok, status } = await deliverLogoutToken(uri, await logoutToken(ctx, audience, sid, subject), options)
    const delivery = { audience, uri: loggableUri(uri), status, sid, sub: subject }
    if (ok) audit(log, 'backchannel_logout.delivered', delivery)
    else audit(log, 'backchannel_logout.failed', { ...delivery, reason: status === null ? 'no_answer' : 'refused' }, 'warn')
    return { audience, uri, ok, ...(status === null ? {} : { status }) }
  }))
}
