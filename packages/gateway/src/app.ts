/**
 * `build(config)`: the gateway as a Fastify instance. Never listens (main.ts does), never reads
 * env or files. `app.gateway.reload(config)` swaps the routes in place.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { IssuerMismatchError, TokenVerifier, type AuthOptions } from '@gatehouse/fastify-auth'
import type { Clock, RevocationList } from '@gatehouse/fastify-auth/revocation'
import { withSignalSources } from '@gatehouse/fastify-auth/ssf'
import { proxyTrust } from '@gatehouse/shared/trust-proxy'
import { traceRequests } from '@gatehouse/shared/tracing'
import { operationalServer } from '@gatehouse/shared/admin'
import { closeIdleWhileClosing } from '@gatehouse/shared/drain'
import { packageVersion } from '@gatehouse/shared/cli'
import { listenerOptions, type TlsMaterial } from '@gatehouse/shared/tls'
import { connectTimeoutOf, type GatewayConfig, type RouteConfig } from './config.ts'
import { GatewayError, replyWithError } from './errors.ts'
import { holdContinue } from './expect-continue.ts'
import { closeSessionsOnClose } from './http2-sessions.ts'
import { healthRoutes, KeyReadiness } from './health.ts'
import { loggerOptions, RequestLog, requestIdentity } from './logging.ts'
import { logoutRoute } from './logout.ts'
import { GatewayMetrics } from './metrics.ts'
import { proxyRoutes } from './proxy.ts'
import { tracer } from './tracing.ts'
import { createRevocations, firstSync, signalSources, type RevocationSetup } from './revocations.ts'
import { configWarnings } from './load-config.ts'
import type { CompiledRoute, Limiter, RouteTable } from './route-table.ts'
import { buildState, restartOnlyChanges, type GatewayState } from './state.ts'
import { UpstreamHealth } from './upstreams.ts'
import { Forwarder } from './forward.ts'
import { WebSocketProxy } from './websocket.ts'

export type { GatewayConfig, RouteConfig } from './config.ts'
export { parseGatewayConfig, loadGatewayConfig } from './load-config.ts'

export interface BuildOptions {
  /** Fastify logger; default: pino at `config.log.level`. `false` silences it. */
  logger?: FastifyServerOptions['logger']
  /** The revocation list; default: Redis when configured, else in memory. Closed by the caller. */
  revocations?: RevocationList
  /** Time source for token checks (exp, nbf, iat) and the verified-token cache. Default `Date.now`. */
  clock?: Clock
  /** The certificate and key of `listen.tls` (main.ts reads them); without them, plain http. */
  tls?: TlsMaterial
}

/** What a reload did. */
export interface ReloadResult {
  routes: number
  /** Top-level keys that changed but only take effect after a restart (listen, redis, ...). */
  restartNeeded: string[]
}

/** The gateway's handle on a built app (`app.gateway`). */
export interface GatewayHandle {
  /** The config in force (its routes change with reloads). */
  readonly config: GatewayConfig
  readonly table: RouteTable
  readonly metrics: GatewayMetrics
  readonly revocations: RevocationList
  readonly verifier: TokenVerifier
  /** The health of every route's upstreams (per gateway instance). */
  readonly health: UpstreamHealth
  /** Swaps the route table (and identity header names); requests in flight finish on the old one. */
  reload (config: GatewayConfig): ReloadResult
}

declare module 'fastify' {
  interface FastifyInstance {
    gateway: GatewayHandle
  }
  interface FastifyRequest {
    /** The route this request matched, once known (for logs and metrics). */
    gatewayRoute: CompiledRoute | null
  }
}

function authOptions (config: GatewayConfig, metrics: GatewayMetrics, log: FastifyInstance['log'], clock: Clock | undefined): AuthOptions {
  const { auth, revocation, client } = config
  return {
    issuer: config.issuer,
    algorithms: [...auth.algorithms],
    clockTolerance: auth.clockTolerance,
    maxTokenLength: auth.maxTokenLength,
    cacheSize: auth.cacheSize,
    jwksCooldown: auth.jwksCooldown * 1000,
    jwksMaxAge: auth.jwksRefreshInterval * 1000,
    maxStaleness: revocation.maxStaleness * 1000,
    failOpen: revocation.failOpen,
    onFailure: (reason) => { metrics.countAuthFailure(reason) },
    log,
    ...(clock === undefined ? {} : { clock }),
    ...(auth.audience === undefined ? {} : { audience: auth.audience }),
    ...(client === undefined ? {} : { introspection: { clientId: client.id, clientSecret: client.secret } })
  }
}

/** The rate limiter of one route, keyed by its `key` and namespaced by the route. */
function limiterFactory (app: FastifyInstance): (route: RouteConfig, id: string) => Limiter {
  return (route, id) => {
    const { max, window, key } = route.rateLimit!
    return app.rateLimit({
      max,
      timeWindow: window * 1000,
      keyGenerator: (request) => {
        const claims = request.auth
        const who = key === 'client_id' && claims != null
          ? `c:${claims.client_id}`
          : key === 'subject' && claims != null ? `s:${claims.sub}` : `ip:${request.ip}`
        return `${id}|${who}`
      },
      errorResponseBuilder: (_request, context) => new GatewayError('rate_limited', 429, `rate limit exceeded, retry in ${context.after}`)
    }) as Limiter
  }
}

/** A list the caller owns (and closes), still fed by the configured Shared Signals streams. */
function givenRevocations (config: GatewayConfig, list: RevocationList, log: FastifyInstance['log']): RevocationSetup {
  const signals = signalSources(config, list, log)
  return {
    revocations: withSignalSources(list, signals.map((s) => s.receiver)),
    signals,
    redis: undefined,
    check: async () => {},
    start: () => { for (const s of signals) s.receiver.start() },
    close: async () => { await Promise.all(signals.map(async (s) => { await s.receiver.close() })) }
  }
}

export async function build (config: GatewayConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const metrics = new GatewayMetrics(packageVersion(new URL('../package.json', import.meta.url)))
  const requestLog = new RequestLog(metrics, config.admin === undefined)
  const app = Fastify({
    // Requests are counted by the log controller, which Fastify calls only with a logger: a
    // silent one stands in for `false`.
    logger: options.logger === false ? { level: 'silent' } : options.logger ?? loggerOptions(config.log.level),
    logController: requestLog,
    // Requests Fastify refuses before routing (a malformed URL) still get our error shape.
    frameworkErrors: (error, request, reply) => { replyWithError(error, request, reply) },
    trustProxy: proxyTrust(config.trustProxy),
    // Request ids and client IPs on every request's log lines.
    ...requestIdentity(proxyTrust(config.trustProxy)),
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    // HTTP/2 only towards clients: upstreams are called over HTTP/1.1, and the connection-specific
    // fields HTTP/2 forbids are dropped from their answers (RFC 9113 8.2.2, forward-headers.ts).
    ...listenerOptions(options.tls, config.listen.http2)
  })
  if (options.tls !== undefined && config.listen.http2 === true) closeSessionsOnClose(app)
  closeIdleWhileClosing(app)
  const setup: RevocationSetup = options.revocations === undefined
    ? createRevocations(config, app.log)
    : givenRevocations(config, options.revocations, app.log)
  const { revocations } = setup
  let verifier: TokenVerifier
  try {
    verifier = new TokenVerifier({ ...authOptions(config, metrics, app.log, options.clock), revocations })
    // The issuer's own stream announces its key changes too (the Redis channel is wired by the verifier).
    for (const s of setup.signals) {
      if (s.transmitter === config.issuer) s.receiver.onKeyChange((change) => { verifier.keyChanged(change).catch(() => {}) })
    }
  } catch (err) {
    await setup.close()
    throw err
  }
  app.addHook('onClose', async () => {
    await verifier.close()
    await setup.close()
  })
  try {
    await assemble(app, config, { metrics, setup, verifier, clock: options.clock ?? { now: Date.now } })
  } catch (err) {
    // Whatever was opened (Redis, timers) closes with the app.
    await app.close().catch(() => {})
    throw err
  }
  return app
}

interface Parts {
  metrics: GatewayMetrics
  setup: RevocationSetup
  verifier: TokenVerifier
  clock: Clock
}

/** Everything after the connections: readiness, hooks, plugins, the route table, the routes. */
async function assemble (app: FastifyInstance, config: GatewayConfig, { metrics, setup, verifier, clock }: Parts): Promise<void> {
  const { revocations } = setup
  const keys = new KeyReadiness(verifier)
  await Promise.all([firstSync(setup, app.log), keys.load()])
  for (const warning of configWarnings(config)) app.log.warn(warning)
  // Reachable but naming itself differently: no retry will help, so the start fails (main.ts
  // locates the `issuer` line). Unreachable: serve 503s and keep trying.
  if (keys.failure instanceof IssuerMismatchError) throw keys.failure
  if (!keys.isLoaded) app.log.warn({ issuer: config.issuer }, 'the issuer\'s keys could not be loaded yet; tokens are refused until they are')

  app.decorateRequest('auth', null)
  app.decorateRequest('gatewayRoute', null)
  // A span per request while an OpenTelemetry SDK is registered (docs/operations.md, Tracing),
  // continuing the caller's trace only when a trusted proxy sent it.
  traceRequests(app, tracer, { trust: proxyTrust(config.trustProxy) })
  app.setErrorHandler(replyWithError)
  holdContinue(app)
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ error: 'not_found' }))
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id)
    done(null, payload)
  })
  await app.register(rateLimit, {
    global: false,
    // Redis down: serve without limits rather than refuse every request.
    skipOnError: true,
    ...(setup.redis === undefined ? {} : { redis: setup.redis as never, nameSpace: 'gatehouse:rl:gateway:' })
  })
  // The connections to the upstreams (forward.ts), closed once the last request is answered.
  const forwarder = new Forwarder(connectTimeoutOf(config) * 1000)
  app.addHook('onClose', async () => { await forwarder.close() })

  const makeLimiter = limiterFactory(app)
  // Upstream health outlives route tables: a reload keeps the state of the upstreams it keeps.
  const health = new UpstreamHealth(app.log)
  app.addHook('onClose', async () => { health.close() })
  const inForce = (s: GatewayState): void => { health.retain(s.table.routes.map((r) => ({ pool: r.pool, config: r.health }))) }
  let state: GatewayState = buildState(config, makeLimiter, health)
  inForce(state)
  app.decorate('gateway', {
    get config () { return state.config },
    get table () { return state.table },
    metrics,
    revocations,
    verifier,
    health,
    reload (next: GatewayConfig): ReloadResult {
      const restartNeeded = restartOnlyChanges(state.config, next)
      // Built before the swap: a failure here leaves the old table serving.
      const built = buildState({ ...state.config, routes: next.routes, identityHeaders: next.identityHeaders }, makeLimiter, health)
      state = built
      inForce(built)
      if (restartNeeded.length > 0) app.log.warn({ keys: restartNeeded }, 'config changes that need a restart were not applied')
      return { routes: built.table.routes.length, restartNeeded }
    }
  } satisfies GatewayHandle)

  const deps = { config, state: () => state, metrics, revocations, health }
  const websockets = new WebSocketProxy(app, {
    revocations,
    verifier,
    clock,
    clockTolerance: config.auth.clockTolerance,
    maxStaleness: config.revocation.maxStaleness * 1000,
    failOpen: config.revocation.failOpen,
    metrics
  })
  // On the public port, or on the admin listener when `admin` is set.
  await operationalServer(app, config.admin, healthRoutes({ ...deps, verifier, websockets, signals: setup.signals }, keys))
  if (config.client !== undefined) await app.register(logoutRoute({ ...deps, verifier }, config.client))
  else app.log.warn({}, `no client configured: POST ${config.logout.path} (logout) is disabled`)
  await app.register(proxyRoutes({ ...deps, verifier, websockets, forwarder }))
}
