/**
 * Logger options and the one-line-per-request log: pino with request ids, nothing secret.
 * Authorization and cookie headers are redacted; token-bearing query values are masked.
 * The same hook counts the request for metrics, so there is one per-request callback.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { redactUrl } from '@gatehouse/shared/logging'
import type { GatewayMetrics } from './metrics.ts'

// Shared with the issuer; re-exported so this app imports its logging from one place.
export { loggerOptions, redactUrl, requestIdentity } from '@gatehouse/shared/logging'

const PROBES = new Set(['/healthz', '/readyz'])

/**
 * One log line per request (not two) with the route, the client and the time taken; probes
 * are counted but not logged. Tokens never appear: only `client_id` and `sub` do. An answer
 * cut after it began gets its line too: aborted by the client (info), or cut by its upstream
 * (warn).
 */
export class RequestLog extends LogController {
  readonly #metrics: GatewayMetrics

  /** `probesHere`: the probes are served on this port (no admin listener), so not logged. */
  constructor (metrics: GatewayMetrics, probesHere = true) {
    super({ disableRequestLogging: (request: FastifyRequest) => probesHere && PROBES.has(request.url) })
    this.#metrics = metrics
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // A route's name; the gateway's own paths by their path; (none) when nothing matched.
    const own = request.routeOptions.url
    const route = request.gatewayRoute?.id ?? (own === undefined || own === '/*' ? '(none)' : own)
    this.#metrics.countRequest(route, reply.statusCode, reply.elapsedTime / 1000)
    if (this.isLogDisabled(request)) return
    const line: Record<string, unknown> = { method: request.method, url: redactUrl(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }
    if (request.gatewayRoute !== null) line.route = route
    const auth = request.auth
    if (auth != null) { line.client_id = auth.client_id; line.sub = auth.sub }
    if (error == null) request.log.info(line, 'request completed')
    // Answers cut after they began (forward.ts): the status is the upstream's, the body short.
    else if (error.name === 'ClientGone') request.log.info(Object.assign(line, { aborted: true }), 'request aborted by the client')
    else if (error.name === 'UpstreamCut') request.log.warn(Object.assign(line, { err: error.message }), 'request cut short by its upstream')
    else request.log.error(Object.assign(line, { err: error }), 'request errored')
  }
}
