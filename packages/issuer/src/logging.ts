/**
 * Logger options: pino with request ids, and nothing secret. Authorization and cookie headers
 * are redacted; token-bearing query parameters are masked in every logged URL.
 */
import { randomUUID } from 'node:crypto'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type RawRequestDefaultExpression } from 'fastify'

const SECRET_PARAMS = /([?&](?:code|token|access_token|refresh_token|id_token|id_token_hint|logout_token|client_secret|password|code_verifier|assertion)=)[^&#]*/gi

/** The URL with every secret-bearing query value replaced by `***`. */
export function redactUrl (url: string): string {
  if (!url.includes('?')) return url
  return url.replace(SECRET_PARAMS, '$1***')
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Reuse a sane incoming X-Request-Id (so a gateway's id follows the request), else a new one. */
export function requestId (request: RawRequestDefaultExpression): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '***' },
    serializers: {
      req: (req: { id: string, method: string, url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) })
    }
  }
}

/**
 * One log line per request (not two), with the URL redacted and the time taken; probes
 * (/healthz, /readyz) are not logged.
 */
export class RequestLog extends LogController {
  constructor () {
    super({ disableRequestLogging: (request) => request.url === '/healthz' || request.url === '/readyz' })
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    const line: Record<string, unknown> = { method: request.method, url: redactUrl(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }
    if (request.clientId !== null) line.client_id = request.clientId
    if (error != null) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}
