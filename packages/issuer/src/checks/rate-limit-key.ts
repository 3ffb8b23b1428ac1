/**
 * Rate-limit key for the token endpoint: the AUTHENTICATED client id, else the IP. Keying on
 * a merely claimed client id would let anyone who knows an id spend that client's budget with
 * wrong secrets. The authenticated client is kept for the route, so it is checked only once.
 */
import type { FastifyRequest } from 'fastify'
import type { Client, ClientRegistry } from '../clients.ts'
import { authenticateClient } from './client-auth.ts'
import { formParams } from './form.ts'

const authenticated = new WeakMap<FastifyRequest, Client>()

/** The client this request authenticated as during rate limiting, if it did. */
export function authenticatedClient (request: FastifyRequest): Client | undefined {
  return authenticated.get(request)
}

export function rateLimitKey (registry: ClientRegistry): (request: FastifyRequest) => string {
  return (request) => {
    try {
      const client = authenticateClient(request.headers.authorization, formParams(request), registry)
      authenticated.set(request, client)
      return `client:${client.id}`
    } catch {
      return `ip:${request.ip}`
    }
  }
}
