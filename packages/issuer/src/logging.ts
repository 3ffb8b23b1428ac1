/**
 * Logger options: pino with request ids, and nothing secret. Authorization and cookie headers
 * are redacted; token-bearing query parameters are masked in every logged URL.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { redactUrl } from '@gatehouse/shared/logging'

// Shared with the gateway; re-exported so this app imports its logging from one place.
export { loggerOptions, redactUrl, requestId } from '@gatehouse/shared/logging'

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
