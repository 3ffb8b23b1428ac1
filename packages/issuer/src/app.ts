/**
 * `build(config)`: the issuer as a Fastify instance. Never listens (main.ts does), never reads
 * env or files beyond what the stores need.
 */
import { randomBytes } from 'node:crypto'
import { closeIdleWhileClosing } from '@gatehouse/shared/drain'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import cookie from '@fastify/cookie'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import { proxyTrust } from '@gatehouse/shared/trust-proxy'
import { traceRequests } from '@gatehouse/shared/tracing'
import { operationalServer } from '@gatehouse/shared/admin'
import { packageVersion } from '@gatehouse/shared/cli'
import { listenerOptions, type TlsMaterial } from '@gatehouse/shared/tls'
import { systemClock, type Clock } from './clock.ts'
import { compileDirectory } from './clients.ts'
import { IssuerMetrics } from './metrics.ts'
import type { IssuerConfig } from './config.ts'
import type { IssuerContext } from './context.ts'
import { ScopePolicy } from './checks/scope.ts'
import { replyWithError } from './errors.ts'
import { keyManagerFor, keyWarnings } from './keys/key-manager.ts'
import { loggerOptions, RequestLog, requestIdentity } from './logging.ts'
import { TokenService } from './tokens/token-service.ts'
import type { IssuerStores } from './stores/types.ts'
import { createStores } from './stores/index.ts'
import { acceptFormsOnly } from './routes/form-parser.ts'
import { tokenRoute } from './routes/token.ts'
import { revokeRoute } from './routes/revoke.ts'
import { sessionEndRoute } from './routes/session-end.ts'
import { introspectRoute } from './routes/introspect.ts'
import { authoriseRoutes } from './routes/authorise.ts'
import { userinfoRoutes } from './routes/userinfo.ts'
import { logoutRoutes } from './routes/logout.ts'
import { discoveryRoutes } from './routes/discovery.ts'
import { healthRoutes } from './routes/health.ts'
import { ssfRoutes } from './routes/ssf.ts'
import { SharedSignals } from './ssf/transmitter.ts'
import { rateLimitKey } from './checks/rate-limit-key.ts'
import { clientAuthentication } from './checks/client-auth.ts'
import { retryAfterOnLock } from './checks/failure-limit.ts'
import { isSecure } from './session/cookies.ts'
import { registerCors } from './cors.ts'
import { describeRequest, tracer } from './tracing.ts'

export interface BuildOptions {
  /** Stores to use; by default created from the config (memory, or Redis when configured). */
  stores?: IssuerStores
  clock?: Clock
  /** Fastify logger; default: pino at `config.log.level`. `false` silences it. */
  logger?: FastifyServerOptions['logger']
  /** Directory that relative paths in the config are resolved against. */
  baseDir?: string
  /** The certificate and key of `listen.tls` (main.ts reads them); without them, plain http. */
  tls?: TlsMaterial
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated client, once known: logged on the request's one log line. */
    clientId: string | null
  }
  interface FastifyInstance {
    /** The issuer's context (keys, stores, clients), for tests and the CLI. */
    issuer: IssuerContext
  }
}

export async function build (config: IssuerConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const clock = options.clock ?? systemClock
  const metrics = new IssuerMetrics(packageVersion(new URL('../package.json', import.meta.url)))
  const requestLog = new RequestLog(metrics)
  const app = Fastify({
    // Requests are counted by the log controller, which Fastify calls only with a logger: a
    // silent one stands in for `false`.
    logger: options.logger === false ? { level: 'silent' } : options.logger ?? loggerOptions(config.log.level),
    logController: requestLog,
    // Requests Fastify refuses before routing (a malformed URL) still get our error shape,
    // a request id and their log line.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id).header('x-content-type-options', 'nosniff')
      reply.raw.once('finish', () => { requestLog.requestCompleted(null, request, reply) })
      replyWithError(error, request, reply)
    },
    trustProxy: proxyTrust(config.trustProxy),
    // Request ids and client IPs on every request's log lines.
    ...requestIdentity(proxyTrust(config.trustProxy)),
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    ...listenerOptions(options.tls)
  })
  // Keep-alive connections whose request finishes during the close end then, not 72 s later.
  closeIdleWhileClosing(app)
  const ownsStores = options.stores === undefined
  const stores = options.stores ?? await createStores(config, { clock, log: app.log, baseDir: options.baseDir ?? process.cwd() })
  const keys = keyManagerFor(config, stores.keys, clock)
  const directory = compileDirectory(config)
  const tokens = new TokenService(config.issuer, keys, clock)
  const signals = new SharedSignals({ config, clock, store: stores.signals, tokens, log: app.log })
  const ctx: IssuerContext = {
    config,
    clock,
    ...directory,
    scopes: new ScopePolicy(config),
    keys,
    tokens,
    stores,
    metrics,
    signals
  }
  app.decorate('issuer', ctx)
  app.decorateRequest('clientId', null)
  app.decorateRequest('client', null)
  // A span per request while an OpenTelemetry SDK is registered (docs/operations.md, Tracing),
  // continuing the caller's trace only when a trusted proxy (or gateway) sent it.
  traceRequests(app, tracer, { trust: proxyTrust(config.trustProxy), describe: describeRequest })

  try {
    await stores.revocations.ready()
    await keys.start()
    await signals.start()
  } catch (err) {
    keys.stop()
    await signals.close()
    if (ownsStores) await stores.close()
    throw err
  }
  const stopWatchingKeys = announceKeyChanges(ctx, app.log)
  for (const warning of keyWarnings(config)) app.log.warn(warning)
  // Held polls answer before the server waits for in-flight requests to end.
  app.addHook('preClose', (done) => {
    signals.releasePolls()
    done()
  })
  app.addHook('onClose', async () => {
    stopWatchingKeys()
    await signals.close()
    keys.stop()
    if (ownsStores) await stores.close()
  })

  app.setErrorHandler(replyWithError)
  app.addHook('onError', retryAfterOnLock)
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ error: 'not_found' }))
  // A callback hook, not an async one: this runs on every response.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
    done(null, payload)
  })

  await app.register(rateLimit, {
    global: false,
    ...(stores.redis === undefined ? {} : { redis: stores.redis as never, nameSpace: 'gatehouse:rl:' })
  })
  const tokenLimit = {
    max: config.rateLimit.tokenPerClient,
    timeWindow: config.rateLimit.window * 1000,
    // After body parsing, so a client_secret_post client is keyed by its client_id too.
    hook: 'preHandler',
    keyGenerator: rateLimitKey,
    // Limits are not advertised on every success; a 429 still carries Retry-After.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    errorResponseBuilder: (_request: unknown, context: { after: string }) => ({ statusCode: 429, code: 'RATE_LIMITED', message: `rate limit exceeded, retry in ${context.after}` })
  }

  const cookieSecret = config.session.cookieSecret ?? await stores.keys.sharedSecret('cookie', () => randomBytes(32).toString('base64url'))
  await registerCors(app, directory.clients)
  // On the public port, or on the admin listener when `admin` is set.
  await operationalServer(app, config.admin, healthRoutes(ctx))
  await app.register(discoveryRoutes(ctx))
  if (config.sharedSignals.enabled) await app.register(ssfRoutes(ctx))
  await app.register(async (api) => {
    acceptFormsOnly(api)
    await api.register(userinfoRoutes(ctx))
    // Every endpoint that authenticates clients, throttled per client_id and IP. The hook runs
    // before route-level preHandlers, so the token rate limit keys on `request.client`.
    await api.register(async (clients) => {
      clients.addHook('preHandler', clientAuthentication(ctx))
      await clients.register(tokenRoute(ctx, tokenLimit))
      await clients.register(revokeRoute(ctx))
      await clients.register(sessionEndRoute(ctx))
      await clients.register(introspectRoute(ctx))
    })
  })
  // The pages people see get helmet's headers (the pages set a stricter CSP of their own);
  // the JSON endpoints keep to nosniff and no-store, which is all a JSON API needs.
  await app.register(async (browser) => {
    acceptFormsOnly(browser)
    // Cookies matter only to the pages (session, CSRF); the JSON endpoints never parse them.
    await browser.register(cookie, { secret: cookieSecret })
    await browser.register(helmet, {
      contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'self'"] } },
      hsts: isSecure(config)
    })
    await browser.register(authoriseRoutes(ctx))
    await browser.register(logoutRoutes(ctx))
  })
  for (const client of directory.clients.all()) {
    if (client.grants.has('implicit')) app.log.warn({ client_id: client.id }, 'client uses the implicit grant, which OAuth 2.1 drops (RFC 9700 2.1.2): prefer authorization_code with PKCE')
  }
  return app
}

/**
 * Key changes reach the gateways at once (docs/operations.md, Key rotation): every change a
 * re-read of the key store finds is announced on the Redis channel the revocation mirrors listen
 * to and as a Shared Signals event. A re-read happens on a change announced by another instance
 * or the `keys` CLI (Redis), on a change of the keys file (embedded), and every
 * `keys.refreshInterval` regardless. Returns the stop function.
 */
function announceKeyChanges (ctx: IssuerContext, log: FastifyBaseLogger): () => void {
  const { keys, stores, signals } = ctx
  keys.onChange((changes) => {
    log.info({ changes }, 'signing keys changed; announcing')
    for (const change of changes) {
      stores.revocations.announceKeyChange?.(change).catch((err: unknown) => { log.warn({ err, change }, 'could not announce a key change on Redis; gateways learn it at their next key refresh') })
    }
    signals.keysChanged(changes).catch((err: unknown) => { log.warn({ err }, 'could not announce a key change over Shared Signals; gateways learn it at their next key refresh') })
  })
  const reload = (): void => { keys.reload().catch((err: unknown) => { log.warn({ err }, 'could not re-read the signing keys') }) }
  stores.revocations.onKeyChange?.(reload)
  return stores.keys.watch?.(reload) ?? (() => {})
}
