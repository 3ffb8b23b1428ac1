/** Rate-limit key for the token endpoint: the client id when one is claimed, else the IP. */
import type { FastifyRequest } from 'fastify'

export function clientIdOf (request: FastifyRequest): string {
  const header = request.headers.authorization
  if (header !== undefined && header.length < 2048 && /^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon > 0) return `client:${decoded.slice(0, colon)}`
  }
  const body = request.body as Record<string, unknown> | undefined
  const id = body !== null && typeof body === 'object' ? body.client_id : undefined
  if (typeof id === 'string' && id.length <= 200) return `client:${id}`
  return `ip:${request.ip}`
}
