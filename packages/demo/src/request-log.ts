/** The demo services' request logging: one short line per request, readable in the launcher's output. */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

export interface RequestLogOptions {
  /**
   * Log the path without its query: the client app's callback carries an authorization code and
   * the issuer's `state`, which have no place in a log.
   */
  hideQuery?: boolean
}

/** One line per completed request (the /healthz probe excepted). */
export class RequestLog extends LogController {
  readonly #hideQuery: boolean

  constructor (options: RequestLogOptions = {}) {
    super({ disableRequestLogging: (request) => request.url === '/healthz' })
    this.#hideQuery = options.hideQuery === true
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    const url = this.#hideQuery ? request.url.split('?', 1)[0] : request.url
    const line = { method: request.method, url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }
    if (error != null) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}
