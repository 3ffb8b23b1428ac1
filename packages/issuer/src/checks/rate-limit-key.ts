/**
 * Rate-limit key for the token endpoint: the AUTHENTICATED client id (`request.client`, set by
 * `clientAuthentication`, which runs first), else the IP. Keying on a merely claimed client id
 * would let anyone who knows an id spend that client's budget with wrong secrets.
 */
import type { FastifyRequest } from 'fastify'

export function rateLimitKey (request: FastifyRequest): string {
  return request.client === null ? `ip:${request.ip}` : `client:${request.client.id}`
}
