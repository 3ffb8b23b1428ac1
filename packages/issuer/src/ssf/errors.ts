/**
 * Errors of the Shared Signals endpoints: `{"err": ..., "description": ...}` (the RFC 8935 /
 * RFC 8936 shape, docs/shared-signals.md). Authentication errors and an unreachable store keep
 * the issuer's own replies (RFC 6750 challenge, 503 with Retry-After).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { OAuthError, replyWithError } from '../errors.ts'

export class SsfError extends Error {
  readonly status: number
  readonly err: string
  readonly description: string | undefined

  constructor (status: number, err: string, description?: string) {
    super(description ?? err)
    this.name = 'SsfError'
    this.status = status
    this.err = err
    this.description = description
  }
}

export const invalidSsfRequest = (description: string): SsfError => new SsfError(400, 'invalid_request', description)
export const streamNotFound = (): SsfError => new SsfError(404, 'not_found', 'no such stream')

/** The error handler of the Shared Signals group. */
export function replyWithSsfError (error: FastifyError | OAuthError | SsfError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof SsfError) return send(request, reply, error)
  if (error instanceof OAuthError) return replyWithError(error, request, reply)
  const status = error.statusCode ?? 500
  // Fastify's own refusals of bad input (malformed JSON, a body too large): never a 500.
  if (status >= 400 && status < 500 && status !== 429) {
    const description = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'request body too large' : 'malformed JSON body'
    return send(request, reply, new SsfError(status === 413 ? 413 : 400, 'invalid_request', description))
  }
  return replyWithError(error, request, reply)
}

function send (request: FastifyRequest, reply: FastifyReply, error: SsfError): FastifyReply {
  request.log.info({ err_code: error.err, description: error.description }, 'shared signals error')
  const body: Record<string, string> = { err: error.err }
  if (error.description !== undefined) body.description = error.description
  return reply.code(error.status).header('cache-control', 'no-store').send(body)
}
