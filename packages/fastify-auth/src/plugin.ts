/**
 * The Fastify plugin: `app.register(gatehouseAuth, options)`, then
 * `{ preHandler: app.requireAuth({ scopes: ['api:read'] }) }` on each protected route.
 */
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { isAuthError } from './errors.ts'
import { parseRouteAuth } from './options.ts'
import { sendAuthError } from './reply.ts'
import type { AccessClaims, AuthOptions, RouteAuth } from './types.ts'
import { TokenVerifier } from './verifier.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's validated access token; null before `requireAuth` ran or with no token on an optional route. */
    auth: AccessClaims | null
  }
  interface FastifyInstance {
    /** The verifier behind `requireAuth`, for callers with their own hooks. */
    gatehouseAuth: TokenVerifier
    /** A preHandler that refuses the request unless its Bearer token meets `route`. */
    requireAuth: (route?: RouteAuth) => preHandlerAsyncHookHandler
  }
}

/**
 * A preHandler enforcing `route` with `verifier`: sets `request.auth`, or answers 401/403/503
 * through {@link sendAuthError}. `route` is checked now (at boot), not per request.
 */
export function authPreHandler (verifier: TokenVerifier, route?: RouteAuth): preHandlerAsyncHookHandler {
  parseRouteAuth(route, verifier.hasIntrospection)
  return async function requireAuth (request, reply) {
    try {
      request.auth = await verifier.verifyAuthorization(request.headers.authorization, route, request.id)
    } catch (err) {
      if (!isAuthError(err)) throw err
      request.auth = null
      return sendAuthError(reply, err, verifier.realm)
    }
  }
}

async function gatehouseAuth (app: FastifyInstance, options: AuthOptions): Promise<void> {
  const verifier = new TokenVerifier({ ...options, log: options.log ?? app.log })
  app.decorateRequest('auth', null)
  app.decorate('gatehouseAuth', verifier)
  app.decorate('requireAuth', (route?: RouteAuth) => authPreHandler(verifier, route))
  app.addHook('onClose', async () => await verifier.close())
}

/** The plugin; options are {@link AuthOptions}, checked at register time. */
export default fp(gatehouseAuth, { name: '@gatehouse/fastify-auth', fastify: '5.x' })
