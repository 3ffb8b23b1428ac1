/**
 * Logger options and the one-line-per-request log: pino with request ids, nothing secret.
 * Authorization and cookie headers are redacted; token-bearing query values are masked.
 * The same hook counts the request for metrics, so there is one per-request callback.
 */
import { randomUUID } from 'node:crypto'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type RawRequestDefaultExpression } from 'fastify'
import type { GatewayMetrics } from './metrics.ts'

const SECRET_PARAMS = /([?&](?:code|token|access_token|refresh_token|id_token|id_token_hint|logout_token|client_secret|password|assertion)=)[^&#]*/gi

/** The URL with every secret-bearing query value replaced by `***`. */
export function redactUrl (url: string): string {
  if (!url.includes('?')) return url
  return url.replace(SECRET_PARAMS, '$1***')
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Reuses a sane incoming X-Request-Id, so one id follows the request through, else a new one. */
export function requestId (request: RawRequestDefaultExpression): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

/** pino options: level, redaction, and a request serializer that keeps only safe fields. */
export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '***' },
    serializers: {
      req: (req: { id: string, method: string, url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) })
    }
  }
}

const PROBES = new Set(['/healthz', '/readyz'])

/**
 * One log line per request (not two) with the route, the client and the time taken; probes
 * are counted but not logged. Tokens never appear: only `client_id` and `sub` do.
 */
export class RequestLog extends LogController {
  readonly #metrics: GatewayMetrics

  constructor (metrics: GatewayMetrics) {
    super({ disableRequestLogging: (request: FastifyRequest) => PROBES.has(request.url) })
    this.#metrics = metrics
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const route = request.gatewayRoute?.id ?? '(none)'
    this.#metrics.countRequest(route, reply.statusCode)
    if (this.isLogDisabled(request)) return
    const line: Record<string, unknown> = { method: request.method, url: redactUrl(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }
    if (request.gatewayRoute !== null) line.route = route
    const auth = request.auth
    if (auth != null) { line.client_id = auth.client_id; line.sub = auth.sub }
    if (error != null) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}
