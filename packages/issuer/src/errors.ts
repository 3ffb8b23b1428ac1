/**
 * OAuthError and its one reply mapping. Throw it anywhere; the app's single error handler turns
 * it into the RFC 6749 5.2 JSON body, or a Bearer challenge.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

export type OAuthErrorCode =
  | 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client'
  | 'unsupported_grant_type' | 'invalid_scope' | 'invalid_target' | 'unsupported_token_type'
  | 'invalid_token' | 'insufficient_scope' | 'access_denied' | 'unsupported_response_type'
  | 'server_error' | 'temporarily_unavailable' | 'login_required' | 'consent_required'
  | 'interaction_required'

export class OAuthError extends Error {
  readonly code: OAuthErrorCode
  readonly status: number
  readonly description: string | undefined
  readonly redirectable: boolean

  constructor (code: OAuthErrorCode, status: number, description?: string, redirectable = true) {
    super(description ?? code)
    this.name = 'OAuthError'
    this.code = code
    this.status = status
    this.description = description
    this.redirectable = redirectable
  }
}

/** Shorthands for the common ones. */
export const invalidRequest = (description: string): OAuthError => new OAuthError('invalid_request', 400, description)
export const invalidClient = (description = 'client authentication failed'): OAuthError => new OAuthError('invalid_client', 401, description, false)
export const invalidGrant = (description: string): OAuthError => new OAuthError('invalid_grant', 400, description)
export const invalidScope = (description: string): OAuthError => new OAuthError('invalid_scope', 400, description)
export const unauthorizedClient = (description: string): OAuthError => new OAuthError('unauthorized_client', 400, description)

/** Fastify's own errors for bad input, mapped to RFC 6749 `invalid_request` (never a 500). */
function fromFastifyError (error: FastifyError): OAuthError | undefined {
  const status = error.statusCode ?? 500
  if (status >= 500) return undefined
  if (status === 429) return new OAuthError('temporarily_unavailable', 429, error.message, false)
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new OAuthError('invalid_request', 413, 'request body too large', false)
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new OAuthError('invalid_request', 400, 'unsupported content type', false)
  return new OAuthError('invalid_request', status === 404 || status === 405 ? status : 400, status === 404 ? 'not found' : 'malformed request', false)
}

const STORE_UNAVAILABLE = new OAuthError('temporarily_unavailable', 503, 'the store is unreachable or not answering, try again shortly', false)

/**
 * ioredis' errors when Redis cannot be reached, or does not answer within
 * `redis.commandTimeoutMs` ("Command timed out"): a 503 to retry, not our bug (a 500).
 */
function isStoreUnavailable (error: Error): boolean {
  return error.name === 'MaxRetriesPerRequestError' ||
    /^(Connection is closed|Stream isn't writeable|connect ECONNREFUSED|Reached the max retries|Command timed out)/.test(error.message)
}

/** The one error handler (set with `app.setErrorHandler`). */
export function replyWithError (error: FastifyError | OAuthError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const oauth = error instanceof OAuthError ? error : isStoreUnavailable(error) ? STORE_UNAVAILABLE : fromFastifyError(error)
  if (oauth === undefined) {
    // Anything else is our bug: a detail-free 500; the log keeps the cause.
    request.log.error({ err: error }, 'unhandled error')
    return reply.code(500).header('cache-control', 'no-store').send({ error: 'server_error' })
  }
  if (oauth.status >= 500) request.log.warn({ code: oauth.code }, oauth.message)
  else request.log.info({ code: oauth.code, description: oauth.description }, 'oauth error')
  reply.code(oauth.status).header('cache-control', 'no-store').header('pragma', 'no-cache')
  if (oauth.status === 503) reply.header('retry-after', '1')
  if (oauth.code === 'invalid_client') {
    // RFC 6749 5.2 and RFC 7235 3.1: a 401 carries a challenge.
    reply.header('www-authenticate', 'Basic realm="gatehouse", charset="UTF-8"')
  } else if (oauth.code === 'invalid_token' || oauth.code === 'insufficient_scope') {
    // RFC 6750 3
    reply.header('www-authenticate', `Bearer error="${oauth.code}"${oauth.description === undefined ? '' : `, error_description="${oauth.description.replace(/["\\]/g, '')}"`}`)
  }
  const body: Record<string, string> = { error: oauth.code }
  if (oauth.description !== undefined) body.error_description = oauth.description
  return reply.send(body)
}
