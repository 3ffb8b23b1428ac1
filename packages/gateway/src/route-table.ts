/**
 * The route table: compiled from the config's `routes` at boot and on every reload, then
 * swapped whole. A request looks its route up once and keeps that object to the end, so a
 * reload never changes the rules under a request in flight.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RouteAuth } from '@gatehouse/fastify-auth'
import { connectTimeoutOf, healthOf, type GatewayConfig, type HealthConfig, type RouteConfig } from './config.ts'
import { CorsPolicy } from './cors.ts'
import type { Upstream, UpstreamHealth, UpstreamPool } from './upstreams.ts'

export type { Upstream } from './upstreams.ts'

/** A preHandler-style limiter, as `app.rateLimit()` returns. */
export type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/** A route ready to serve. */
export interface CompiledRoute {
  /** `name`, or the prefix: the label in metrics and logs. */
  readonly id: string
  readonly config: RouteConfig
  readonly prefix: string
  readonly upstreams: readonly Upstream[]
  /** Milliseconds. */
  readonly timeout: number
  readonly limiter: Limiter | undefined
  /** The gateway's CORS policy, `upstream` when the upstream does CORS, undefined for none. */
  readonly cors: CorsPolicy | 'upstream' | undefined
  /** The auth requirement for a method (scopes resolved per method), or null for `auth: none`. */
  authFor (method: string): RouteAuth | null
  /** `health` with its defaults. */
  readonly health: HealthConfig
  /** Its upstreams with their health: `pick()` the next one in rotation. */
  readonly pool: UpstreamPool
  /**
   * Extra attempts for a request that may have reached its upstream: `retries` for the
   * route's `retryMethods` when the request has no body, else 0.
   */
  retriesFor (method: string, hasBody: boolean): number
  /** The path the upstream sees, its base path included. */
  upstreamPath (upstream: Upstream, path: string): string
}

export interface RouteTable {
  readonly routes: readonly CompiledRoute[]
  /** Longest prefix on segment boundaries; `undefined` when no route matches. */
  match (path: string): CompiledRoute | undefined
}

/** Builds the limiter of a route that has a `rateLimit`. */
export type LimiterFactory = (route: RouteConfig, id: string) => Limiter

function parseUpstream (url: string): Upstream {
  const parsed = new URL(url)
  return { origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, '') }
}

function compileRoute (config: GatewayConfig, route: RouteConfig, makeLimiter: LimiterFactory, upstreamHealth: UpstreamHealth): CompiledRoute {
  const id = route.name ?? route.prefix
  const upstreams = route.upstreams.map(parseUpstream)
  const auths = new Map<string, RouteAuth>()
  const authFor = (method: string): RouteAuth | null => {
    if (route.auth === 'none') return null
    let auth = auths.get(method)
    if (auth === undefined) {
      const scopes = route.scopes?.[method] ?? route.scopes?.['*'] ?? []
      const audience = route.audience ?? config.auth.audience
      auth = Object.freeze({
        mode: route.auth,
        validation: route.validation,
        ...(scopes.length > 0 ? { scopes: [...scopes] } : {}),
        ...(audience === undefined ? {} : { audience })
      })
      // Methods are few, but a caller may invent any: only known ones are kept.
      if (auths.size < 32) auths.set(method, auth)
    }
    return auth
  }
  const strip = route.stripPrefix || route.rewritePrefix !== undefined
  const replacement = route.rewritePrefix === '/' ? '' : route.rewritePrefix ?? ''
  const cut = route.prefix === '/' ? 0 : route.prefix.length
  const retryMethods = new Set(route.retryMethods ?? ['GET', 'HEAD', 'OPTIONS'])
  const retries = route.retries ?? 1
  const health = healthOf(route)
  const timeout = route.timeout * 1000
  return {
    id,
    config: route,
    prefix: route.prefix,
    upstreams,
    timeout,
    limiter: route.rateLimit === undefined ? undefined : makeLimiter(route, id),
    cors: route.cors === undefined ? undefined : route.cors.handledBy === 'upstream' ? 'upstream' : new CorsPolicy(route.cors),
    authFor,
    health,
    pool: upstreamHealth.pool({ route: id, upstreams, config: health, probeTimeout: connectTimeoutOf(config) * 1000 + timeout }),
    retriesFor (method, hasBody) {
      return hasBody || !retryMethods.has(method) ? 0 : retries
    },
    upstreamPath (upstream, path) {
      const rest = strip ? replacement + path.slice(cut) : path
      return upstream.basePath + (rest === '' ? '/' : rest)
    }
  }
}

/**
 * Compiles every route of `config`; the table is immutable once built. Its pools take the
 * health of the upstreams known to `health` (call `health.retain` once the table is in force).
 */
export function buildRouteTable (config: GatewayConfig, makeLimiter: LimiterFactory, health: UpstreamHealth): RouteTable {
  const byPrefix = new Map<string, CompiledRoute>()
  const routes = config.routes.map((r) => compileRoute(config, r, makeLimiter, health))
  for (const route of routes) byPrefix.set(route.prefix, route)
  return {
    routes,
    match (path) {
      // One map lookup per segment, from the longest candidate down: `/a/b/c`, `/a/b`, `/a`, `/`.
      let end = path.length
      while (end > 0) {
        const found = byPrefix.get(path.slice(0, end))
        if (found !== undefined) return found
        end = path.lastIndexOf('/', end - 1)
      }
      return byPrefix.get('/')
    }
  }
}
