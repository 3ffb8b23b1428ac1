/**
 * GatewayError and the app's one reply mapping. Token refusals are the auth plugin's AuthError,
 * sent as RFC 6750 challenges by its `sendAuthError`; everything else is a small JSON body
 * `{ error, error_description }`. Bad input is never a 500.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AuthError, sendAuthError } from '@gatehouse/fastify-auth'
import { audit } from '@gatehouse/shared/audit'

export type GatewayErrorCode =
  | 'invalid_request' | 'forbidden' | 'not_found' | 'method_not_allowed' | 'rate_limited' | 'bad_gateway'
  | 'gateway_timeout' | 'temporarily_unavailable' | 'server_error'

/** An error with its status and a description safe to send. Throw it anywhere. */
export class GatewayError extends Error {
  readonly code: GatewayErrorCode
  readonly status: number
  readonly description: string | undefined
  /** Sent as `Retry-After` (RFC 9110 10.2.3): when a retry may succeed. */
  readonly retryAfterSeconds: number | undefined
  /** A 5xx that gets no warn line of its own (the request's line and a state change say it). */
  isQuiet = false

  constructor (code: GatewayErrorCode, status: number, description?: string, retryAfterSeconds?: number) {
    super(description ?? code)
    this.name = 'GatewayError'
    this.code = code
    this.status = status
    this.description = description
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** `error`, marked quiet (see GatewayError.isQuiet). */
export function quiet (error: GatewayError): GatewayError {
  error.isQuiet = true
  return error
}

/** Shorthands. */
export const badRequest = (description: string): GatewayError => new GatewayError('invalid_request', 400, description)
export const badGateway = (description = 'the upstream could not be reached'): GatewayError => new GatewayError('bad_gateway', 502, description)
export const gatewayTimeout = (description = 'the upstream did not answer in time'): GatewayError => new GatewayError('gateway_timeout', 504, description)
/** A 503 with `Retry-After`: something this request needs is stalled or down for now. */
export const unavailable = (description: string, retryAfterSeconds = 1): GatewayError => new GatewayError('temporarily_unavailable', 503, description, retryAfterSeconds)

function isAuthError (err: unknown): err is AuthError {
  return err instanceof AuthError || (err instanceof Error && err.name === 'AuthError' && 'reason' in err)
}

/** Fastify's (and @fastify/rate-limit's) own errors for bad input, mapped; undefined for a 5xx. */
function fromFastifyError (error: FastifyError): GatewayError | undefined {
  const status = error.statusCode ?? 500
  if (status >= 500) return undefined
  if (status === 429) return new GatewayError('rate_limited', 429, error.message)
  if (status === 404) return new GatewayError('not_found', 404, 'no route for this path')
  if (status === 405) return new GatewayError('method_not_allowed', 405, 'method not allowed')
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new GatewayError('invalid_request', 413, 'request body too large')
  return new GatewayError('invalid_request', 400, 'malformed request')
}

/** The one error handler (`app.setErrorHandler`), also used for framework errors. */
export function replyWithError (error: Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isAuthError(error)) {
    // Whose token it was is known when only this request's checks refused it (AuthError.claims).
    const claims = error.claims
    audit(request.log, 'token.refused', {
      reason: error.reason,
      status: error.status,
      route: request.gatewayRoute?.id ?? request.routeOptions.url,
      ip: request.ip,
      ...(claims === undefined ? {} : { client_id: claims.client_id, sub: claims.sub, jti: claims.jti, sid: claims.sid })
    })
    return sendAuthError(reply, error)
  }
  const mapped = error instanceof GatewayError ? error : fromFastifyError(error as FastifyError)
  if (mapped === undefined) {
    // Anything else is our bug: a detail-free 500; the log keeps the cause.
    request.log.error({ err: error }, 'unhandled error')
    return reply.code(500).header('cache-control', 'no-store').send({ error: 'server_error' })
  }
  if (mapped.status >= 500 && !mapped.isQuiet) request.log.warn({ code: mapped.code }, mapped.message)
  reply.code(mapped.status).header('cache-control', 'no-store')
  if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds))
  return reply.send(mapped.description === undefined ? { error: mapped.code } : { error: mapped.code, error_description: mapped.description })
}
