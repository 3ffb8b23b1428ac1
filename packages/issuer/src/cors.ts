/**
 * CORS (Fetch standard, with @fastify/cors) on the endpoints a browser script calls: token,
 * revocation, userinfo, discovery and the JWKS. The allowed origins are the clients'
 * `webOrigins` (default: the origins of their redirect URIs, Keycloak's `+`).
 *
 * - A preflight is answered (204) only for one of those paths, from an allowed origin, asking
 *   for an allowed method and allowed headers; anything else gets no CORS header at all (404,
 *   as for any OPTIONS here). A malformed or `null` Origin is simply not an allowed one.
 * - A preflight names no client, so it is answered for the union of every client's origins;
 *   the response itself keeps `Access-Control-Allow-Origin` only when the client the request
 *   authenticated as (token, revocation) or the token belongs to (userinfo) lists the origin.
 *   A script on one client's origin cannot read another client's responses.
 * - The authorization and logout endpoints are navigations (and the SSF, introspection and
 *   session-end endpoints are server to server): no CORS there.
 * - No credentials: these endpoints take no cookies.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import cors, { type FastifyCorsOptions } from '@fastify/cors'
import type { ClientRegistry } from './clients.ts'

/** The paths that answer CORS: what a browser-based client (a SPA) calls by `fetch`. */
const CORS_PATHS = new Set([
  '/oauth2/token',
  '/oauth2/revoke',
  '/oauth2/userinfo',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/.well-known/jwks.json'
])
const METHODS = ['GET', 'POST']
/** Request headers a script may send beyond the CORS-safelisted ones. */
const ALLOWED_HEADERS = ['authorization', 'content-type']
/** Response headers a script may read beyond the safelisted ones (RFC 6750 errors, 429s). */
const EXPOSED_HEADERS = ['www-authenticate', 'retry-after', 'x-request-id']
/** Seconds a browser may cache a preflight answer. */
const MAX_AGE = 600

const NONE = { origin: false } as const

function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** True when every header the preflight announces is one we allow. */
function headersAllowed (requested: string | undefined): boolean {
  if (requested === undefined || requested.trim() === '') return true
  return requested.split(',').every((name) => ALLOWED_HEADERS.includes(name.trim().toLowerCase()))
}

export async function registerCors (app: FastifyInstance, clients: ClientRegistry): Promise<void> {
  const anyClient = new Set<string>()
  for (const client of clients.all()) for (const origin of client.webOrigins) anyClient.add(origin)

  const optionsFor = (request: FastifyRequest): FastifyCorsOptions => {
    const origin = request.headers.origin
    if (origin === undefined || !anyClient.has(origin) || !CORS_PATHS.has(pathOf(request.url))) return NONE
    if (request.method === 'OPTIONS') {
      const method = request.headers['access-control-request-method']
      if (method === undefined || !METHODS.includes(method)) return NONE
      if (!headersAllowed(request.headers['access-control-request-headers'])) return NONE
    }
    return { origin, methods: METHODS, allowedHeaders: ALLOWED_HEADERS, exposedHeaders: EXPOSED_HEADERS, maxAge: MAX_AGE, credentials: false }
  }
  await app.register(cors, { hideOptionsRoute: true, delegator: (request, callback) => { callback(null, optionsFor(request)) } })

  // Once the client is known, its own origins decide.
  app.addHook('onSend', (request, reply, payload, done) => {
    const origin = request.headers.origin
    if (origin !== undefined && request.clientId !== null && reply.hasHeader('access-control-allow-origin')) {
      const client = clients.get(request.clientId)
      if (client === undefined || !client.webOrigins.has(origin)) {
        reply.removeHeader('access-control-allow-origin')
        reply.removeHeader('access-control-expose-headers')
      }
    }
    done(null, payload)
  })
}
