/**
 * Logger options: pino with request ids, and nothing secret. Authorization and cookie headers
 * are redacted; token-bearing query parameters are masked in every logged URL.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { redactUrl } from '@gatehouse/shared/logging'
import type { IssuerMetrics } from './metrics.ts'

// Shared with the gateway; re-exported so this app imports its logging from one place.
export { loggerOptions, redactUrl, requestIdentity } from '@gatehouse/shared/logging'

const GRANTS = new Set(['authorization_code', 'refresh_token', 'client_credentials', 'password'])

/** The token request's grant type as a label: one the issuer knows, else `other` (never caller data). */
function grantOf (body: unknown): string {
  const grant = typeof body === 'object' && body !== null ? (body as { grant_type?: unknown }).grant_type : undefined
  return typeof grant === 'string' && GRANTS.has(grant) ? grant : 'other'
}

/**
 * One log line per request (not two), with the URL redacted and the time taken; probes
 * (/healthz, /readyz) are not logged.
 */
export class RequestLog extends LogController {
  readonly #metrics: IssuerMetrics

  constructor (metrics: IssuerMetrics) {
    super({ disableRequestLogging: (request) => request.url === '/healthz' || request.url === '/readyz' })
    this.#metrics = metrics
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // Counted and timed here, probes included: one per-request callback for both.
    const route = request.routeOptions.url ?? '(none)'
    this.#metrics.countRequest(route, reply.statusCode, reply.elapsedTime / 1000, route === '/oauth2/token' ? grantOf(request.body) : '')
    if (this.isLogDisabled(request)) return
    const line: Record<string, unknown> = { method: request.method, url: redactUrl(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }
    if (request.clientId !== null) line.client_id = request.clientId
    if (error != null) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}
