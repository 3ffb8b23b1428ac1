/**
 * POST {logout.path} with `Authorization: Bearer <access token>`: logs the token's session out
 * everywhere. Steps:
 * 1. verify the token (signature, issuer, exp) without the revocation check, so a repeat is a 200;
 * 2. put its jti and sid on this gateway's revocation list at once (and so in Redis);
 * 3. meanwhile, have the issuer revoke the token and end the session (refresh tokens, the
 *    shared list), and sign one Back-Channel Logout token per registered resource server;
 * 4. deliver those in parallel, then answer with a summary.
 *
 * Every step is bounded (the Redis command timeout, `logout.timeout`), so a stalled Redis or
 * issuer makes a 503 with Retry-After, never a hang: the token is refused here from step 2 on,
 * and a retried logout is a 200 once the issuer has ended the session and the revocation is
 * in Redis for the other gateways.
 */
import type { FastifyInstance } from 'fastify'
import { isAuthError, readBearerToken, type AccessClaims, type TokenVerifier } from '@gatehouse/fastify-auth'
import { audit, loggableUri } from '@gatehouse/shared/audit'
import type { RevocationList } from '@gatehouse/fastify-auth/revocation'
import { notifyAll, type Notification } from '@gatehouse/shared/backchannel'
import type { GatewayConfig } from './config.ts'
import { CorsPolicy, isPreflight } from './cors.ts'
import { GatewayError, unavailable } from './errors.ts'
import type { GatewayMetrics } from './metrics.ts'
import { endSession } from './session-end.ts'
import type { GatewayState } from './state.ts'

export interface LogoutDeps {
  config: GatewayConfig
  state: () => GatewayState
  /** The gateway's verifier (one key set); logout asks it to skip the revocation list. */
  verifier: TokenVerifier
  revocations: RevocationList
  metrics: GatewayMetrics
}

const LOGOUT_AUTH = { mode: 'required', audience: null, checkRevocation: false } as const

/** The answer. */
export interface LogoutSummary {
  revoked: true
  session_ended: boolean
  sid: string | null
  notified: Notification[]
}

/** The ids of the token a logout is for (never the token). */
function whose (claims: AccessClaims): { client_id: string, sub: string, jti: string, sid: string | undefined } {
  return { client_id: claims.client_id, sub: claims.sub, jti: claims.jti, sid: claims.sid }
}

/** Every (receiver, audience) the current routes register for back-channel logout. */
function receivers (state: GatewayState): Array<{ uri: string, audience: string }> {
  const seen = new Map<string, { uri: string, audience: string }>()
  for (const { config: route } of state.table.routes) {
    const audience = route.logoutAudience ?? route.audience ?? state.config.auth.audience
    if (route.backchannelLogoutUri === undefined || audience === undefined) continue
    seen.set(`${route.backchannelLogoutUri} ${audience}`, { uri: route.backchannelLogoutUri, audience })
  }
  return [...seen.values()]
}

/**
 * Both entries reach this instance's mirror synchronously, before the first await; the writes
 * to Redis then run (or are queued, see `pendingWrites`) alongside the issuer call. Never rejects.
 */
async function revokeHere (deps: LogoutDeps, claims: AccessClaims, log: FastifyInstance['log']): Promise<void> {
  const left = Math.max(0, claims.exp - Date.now() / 1000) + deps.config.auth.clockTolerance
  const writes = [deps.revocations.revoke({ jti: claims.jti }, left)]
  // Other tokens of the session may outlive this one: the session stays listed for sidTtl.
  if (claims.sid !== undefined) writes.push(deps.revocations.revoke({ sid: claims.sid }, Math.max(left, deps.config.revocation.sidTtl)))
  for (const result of await Promise.allSettled(writes)) {
    // The entry is in this instance's mirror already; the issuer writes the shared list too.
    if (result.status === 'rejected') log.warn({ err: result.reason }, 'could not write the revocation to Redis')
  }
}

/** The route; registered only when the gateway has `client` credentials at the issuer. */
export function logoutRoute (deps: LogoutDeps, client: { id: string, secret: string }) {
  const { config } = deps
  const endpoint = config.logout.sessionEndpoint ?? `${config.issuer.replace(/\/+$/, '')}/oauth2/session/end`
  const timeout = config.logout.timeout * 1000
  return async function (app: FastifyInstance): Promise<void> {
    // A logout carries no body; whatever is sent is ignored (Node discards it).
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

    // A browser script on an allowed origin may log its session out (logout.cors).
    // The path takes POST only, whatever `methods` says.
    const cors = config.logout.cors === undefined ? undefined : new CorsPolicy({ ...config.logout.cors, methods: ['POST'] })
    if (cors !== undefined) {
      app.options(config.logout.path, async (request, reply) => {
        if (isPreflight(request)) return cors.answerPreflight(request, reply)
        return reply.code(204).header('allow', 'POST, OPTIONS').send()
      })
    }

    app.post(config.logout.path, async (request, reply): Promise<LogoutSummary> => {
      cors?.decorate(request, reply)
      const state = deps.state()
      try {
        // Any audience, and no revocation check: a repeated logout is a 200; an expired token is a 401.
        const claims = await deps.verifier.verifyAuthorization(request.headers.authorization, LOGOUT_AUTH)
        request.auth = claims
        if (claims === null) throw new Error('unreachable: a required token is never null')
        const here = revokeHere(deps, claims, request.log)
        const registered = receivers(state)
        const ended = await endSession({
          endpoint,
          clientId: client.id,
          clientSecret: client.secret,
          token: readBearerToken(request.headers.authorization ?? '', config.auth.maxTokenLength),
          audiences: [...new Set(registered.map((r) => r.audience))],
          timeout,
          requestId: request.id
        })
        const targets = registered.flatMap(({ uri, audience }) => {
          const logoutToken = ended.logoutTokens[audience]
          return logoutToken === undefined ? [] : [{ uri, logoutToken }]
        })
        const notified = await notifyAll(targets, { timeout, retries: config.logout.retry })
        for (const n of notified) {
          const delivery = { uri: loggableUri(n.uri), status: n.status, sid: claims.sid, sub: claims.sub }
          if (n.ok) audit(request.log, 'backchannel_logout.delivered', delivery)
          else audit(request.log, 'backchannel_logout.failed', { ...delivery, reason: n.status === null ? 'no_answer' : 'refused' }, 'warn')
        }
        await here
        // Other gateways learn of a logout only through Redis, and this gateway can vouch only
        // for its own write (the issuer's may be queued just the same): until Redis has it,
        // say so, and have the caller retry.
        if ((deps.revocations.pendingWrites ?? 0) > 0) {
          throw unavailable('the session is ended and this gateway refuses the token, but Redis has not taken the revocation yet, so other gateways may not know of it; retry the logout')
        }
        deps.metrics.countLogout('ok')
        audit(request.log, 'logout.succeeded', { ...whose(claims), ip: request.ip, ended: ended.ended, notified: notified.length, failed: notified.filter((n) => !n.ok).length })
        reply.header('cache-control', 'no-store')
        return { revoked: true, session_ended: ended.ended, sid: ended.sid, notified }
      } catch (err) {
        deps.metrics.countLogout('failed')
        // A refused token has its own line (token.refused, from the error handler).
        if (!isAuthError(err)) {
          const reason = err instanceof GatewayError ? err.code : 'server_error'
          audit(request.log, 'logout.failed', { ...(request.auth == null ? {} : whose(request.auth)), ip: request.ip, reason }, 'warn')
        }
        throw err
      }
    })
  }
}
