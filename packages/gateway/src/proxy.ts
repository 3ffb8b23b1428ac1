/**
 * The proxy: ONE catch-all route in front of a swappable route table, forwarding through the
 * gateway's own hop on undici (forward.ts).
 *
 * Why not one @fastify/http-proxy registration per route: Fastify cannot remove a route once
 * registered, so a reload could only add. With one catch-all, a reload swaps the whole table
 * in one assignment; a request looks its route up once, at its start, and finishes on the
 * table it started with.
 *
 * Per request, in order: normalise the path (before anything looks at it), find the route,
 * check the token (scopes per method), apply the rate limit, send a `100 Continue` if the client
 * waits for one, forward with the identity headers. While tracing, the request's span gets the
 * route and the token check's outcome, and the upstream call is a child span whose context the
 * upstream receives as `traceparent` (tracing.ts).
 */
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { AccessClaims, RouteAuth, TokenVerifier } from '@gatehouse/fastify-auth'
import { borrowBody, type BorrowedBody } from './borrowed-body.ts'
import { CorsPolicy, isPreflight, withoutUpstreamCors } from './cors.ts'
import { isUpgrade, upgradeAuthorization, type WebSocketProxy } from './websocket.ts'
import { badGateway, badRequest, GatewayError, gatewayTimeout } from './errors.ts'
import { sendContinue } from './expect-continue.ts'
import type { ExchangeListener, Forwarder } from './forward.ts'
import type { GatewayMetrics } from './metrics.ts'
import { normalisePath } from './normalise-path.ts'
import type { CompiledRoute } from './route-table.ts'
import type { GatewayState } from './state.ts'
import { failureKind, timedOut, upgradeFailureKind, type UpstreamState } from './upstreams.ts'
import { endUpstreamSpan, noteAuth, noteRoute, startUpstreamSpan, withTraceContext } from './tracing.ts'

export interface ProxyDeps {
  /** The table in force now; read once per request. */
  state: () => GatewayState
  verifier: TokenVerifier
  metrics: GatewayMetrics
  websockets: WebSocketProxy
  /** The connections to the upstreams. */
  forwarder: Forwarder
}

const NOT_FOUND = new GatewayError('not_found', 404, 'no route for this path')
const CORS_REFUSED = new GatewayError('forbidden', 403, 'this origin may not open WebSockets on this route')

/**
 * Whether a request carries a body (then it cannot be sent again once it was streamed). Over
 * HTTP/2 a body needs no length field: the stream says whether data follows the headers.
 */
function hasBody (request: FastifyRequest): boolean {
  const raw = request.raw as FastifyRequest['raw'] & { stream?: { endAfterHeaders?: boolean } }
  if (raw.httpVersionMajor === 2) return raw.stream?.endAfterHeaders !== true
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function upstreamError (reply: FastifyReply, error: Error): void {
  reply.request.log.warn({ err: (error.cause as Error | undefined)?.message ?? error.message, route: reply.request.gatewayRoute?.id }, 'upstream failed')
  reply.send(timedOut(error) ? gatewayTimeout() : badGateway())
}

/** An answer the gateway cannot pass on (Fastify's range): treated as a broken exchange. */
const INVALID_STATUS = Object.assign(new Error('the upstream answered with a status out of range'), { code: 'GATEHOUSE_INVALID_STATUS' })

interface UpgradeTarget {
  deps: ProxyDeps
  route: CompiledRoute
  first: UpstreamState
  /** The request's path (normalised) and query. */
  path: string
  query: string
  headers: Record<string, unknown>
  claims: AccessClaims | null
}

/**
 * A WebSocket upgrade, moved to the next upstream when one fails before accepting it: the
 * handshake is a bodyless GET, and `ws` opens a new connection for each try, so nothing of the
 * client's is lost. An upstream that answers (101, or an HTTP refusal) counts as up.
 */
async function upgradeWithFailover (request: FastifyRequest, reply: FastifyReply, { deps, route, first, path, query, headers, claims }: UpgradeTarget): Promise<void> {
  const tried = new Set<UpstreamState>()
  for (let upstream: UpstreamState | undefined = first; ;) {
    try {
      await deps.websockets.proxy(request, reply, {
        upstream: upstream.upstream,
        path: route.upstreamPath(upstream.upstream, path) + query,
        headers,
        claims,
        route: route.id,
        maxMessageSize: route.config.websocket?.maxMessageSize ?? 0,
        timeout: route.timeout
      })
      upstream.succeeded()
      return
    } catch (err) {
      const cause = (err as Error).cause
      // No cause: refused before any connection (bad handshake, client gone), or answered.
      if (cause === undefined) {
        if ((err as { upstreamAnswered?: boolean }).upstreamAnswered === true) upstream.succeeded()
        throw err
      }
      const kind = upgradeFailureKind(cause)
      upstream.failed(kind)
      tried.add(upstream)
      upstream = route.pool.pick(tried)
      // None left: a 503 when none took the connection; else this upstream's 502 or 504.
      if (upstream === undefined) throw kind === 'connect' && route.pool.states.every((s) => tried.has(s) || !s.isUp) ? route.pool.unreachable() : err
      deps.metrics.countUpstreamRetry(route.id, kind === 'connect' ? 'not_sent' : 'idempotent')
    }
  }
}

/** The catch-all plugin; register it with no prefix. */
export function proxyRoutes (deps: ProxyDeps) {
  return async function (app: FastifyInstance): Promise<void> {
    // Bodies go to the upstream as streams, unparsed and unbuffered.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

    // The 100 Continue waits for the token and the rate limit (expect-continue.ts).
    app.all('/*', { config: { continuesAfterChecks: true } }, async function proxy (request, reply) {
      const state = deps.state()
      const target = normalisePath(request.raw.url ?? '')
      if ('error' in target) throw badRequest(target.error)
      const route = state.table.match(target.path)
      if (route === undefined) throw NOT_FOUND
      request.gatewayRoute = route
      const span = request.traceSpan
      if (span !== null) noteRoute(span, request.method, route.id)
      const upgrade = isUpgrade(request)
      if (upgrade && route.config.websocket === undefined) throw badRequest('this route takes no WebSocket connections')
      // CORS first: a preflight carries no token (cors.ts).
      const { cors } = route
      let auth: RouteAuth | null
      if (cors === undefined) {
        auth = route.authFor(request.method)
      } else if (cors === 'upstream') {
        const preflight = isPreflight(request)
        // Unauthenticated, so nothing but a preflight: a browser's never has a body.
        if (preflight && (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined)) throw badRequest('a CORS preflight has no body')
        auth = preflight ? null : route.authFor(request.method)
      } else {
        if (isPreflight(request)) return cors.answerPreflight(request, reply)
        // A browser's WebSocket sends its page's origin: one not allowed here is refused.
        if (upgrade && request.headers.origin !== undefined && !cors.allows(request.headers.origin)) throw CORS_REFUSED
        auth = route.authFor(request.method)
        // With or without an Origin: the answer depends on it (Vary), and the policy is the route's.
        cors.decorate(request, reply)
      }
      let claims: AccessClaims | null = null
      if (auth !== null) {
        const checking = performance.now()
        const check = deps.verifier.verifyAuthorization(upgrade ? upgradeAuthorization(request) : request.headers.authorization, auth, request.id)
        try {
          claims = request.auth = await (span === null ? check : noteAuth(span, check))
        } finally {
          deps.metrics.observeTokenCheck(route.id, (performance.now() - checking) / 1000)
        }
      }
      if (route.limiter !== undefined) await route.limiter(request, reply)

      // Before the 100 Continue: with no upstream to take it, the body need not come.
      const pool = route.pool
      const first = pool.pick()
      if (first === undefined) throw pool.unavailable()
      sendContinue(request, reply)
      const forwardAuthorization = auth !== null && state.config.identityHeaders.forwardAuthorization
      if (upgrade) return await upgradeWithFailover(request, reply, { deps, route, first, path: target.path, query: target.query, headers: withTraceContext(span, state.rewriteHeaders(request, request.headers as IncomingHttpHeaders, claims, forwardAuthorization)), claims })
      const failureStatuses = route.health.passive.statuses
      // Attempts after one that may have reached its upstream (idempotent, bodyless requests only).
      let retries = route.retriesFor(request.method, hasBody(request))
      // Upstreams this request failed on: not tried again (allocated on the first failure only).
      let tried: Set<UpstreamState> | undefined
      // A body is lent to each attempt (borrowed-body.ts): one whose connection failed leaves
      // it whole for the next, and the loan tells a client that left from an upstream that failed.
      const http2 = request.raw.httpVersionMajor === 2
      // Over HTTP/2 a body may come with neither Content-Length nor Content-Type, and then
      // Fastify leaves it unread (no parser chosen): it goes on all the same.
      const body = request.body instanceof Readable || (http2 && hasBody(request)) ? request.raw : undefined
      // Fields the gateway set before forwarding (its CORS policy, the rate limit's) go out with
      // the upstream's answer, the upstream's own winning a clash as they always did.
      const ownFields = cors instanceof CorsPolicy || route.limiter !== undefined
      // Settles when the answer has begun (undefined: Fastify leaves the response to us), or
      // with the reply once the gateway answered itself (an error).
      return await new Promise<FastifyReply | undefined>((resolve) => {
        const send = (upstream: UpstreamState): void => {
          const loan: BorrowedBody | undefined = body === undefined ? undefined : borrowBody(body)
          const started = performance.now()
          let upstreamSpan = span === null ? null : startUpstreamSpan(request.method, route.id, upstream.upstream)
          const endSpan = (outcome: number | Error): void => {
            if (upstreamSpan !== null) endUpstreamSpan(upstreamSpan, outcome)
            upstreamSpan = null
          }
          const listener: ExchangeListener = {
            answer: (status, headers) => {
              if (status > 599) return INVALID_STATUS
              if (cors instanceof CorsPolicy) {
                // The gateway's CORS policy is the route's; the upstream's Vary keeps its Origin.
                withoutUpstreamCors(headers)
                headers.vary = headers.vary === undefined ? 'Origin' : `${String(headers.vary)}, Origin`
              }
              // Object.assign, not a spread (which V8 allocates in the old generation: request-logger.ts).
              const out: OutgoingHttpHeaders = ownFields ? Object.assign({}, reply.getHeaders() as OutgoingHttpHeaders, headers) : headers
              // An HTTP/1.1 connection whose request body was not read to its end cannot carry another request.
              if (!http2 && !request.raw.complete) out.connection = 'close'
              out['x-request-id'] = request.id
              return out
            },
            started: (status) => {
              deps.metrics.observeUpstream(route.id, (performance.now() - started) / 1000)
              endSpan(status)
              if (failureStatuses.includes(status)) upstream.failed('status')
              else upstream.succeeded()
              resolve(undefined)
            },
            failed: (error, clientGone) => {
              endSpan(error)
              // A client that left (mid-upload, or while waiting) failed the request, not the
              // upstream: nothing is charged to it, and nothing is tried again.
              if (clientGone || loan?.sourceFailed === true || reply.sent || reply.raw.destroyed || request.raw.socket?.destroyed === true) {
                if (!reply.sent) reply.send(badRequest('the client went away'))
                resolve(reply)
                return
              }
              const kind = failureKind(error)
              upstream.failed(kind)
              // Nothing was sent (and no byte of the body read): any request may go elsewhere.
              // Else only a bodyless request of the route's retryMethods.
              const notSent = kind === 'connect' && (loan === undefined || loan.bytesRead === 0)
              if (notSent || retries-- > 0) {
                (tried ??= new Set()).add(upstream)
                // A retry after a reset (a pooled connection the upstream had just closed) may
                // go back to the same upstream when no other takes it; after a timeout, never.
                const next = pool.pick(tried) ?? (kind === 'reset' && upstream.accepts(Date.now(), true) ? upstream : undefined)
                if (next !== undefined) {
                  deps.metrics.countUpstreamRetry(route.id, notSent ? 'not_sent' : 'idempotent')
                  send(next)
                  return
                }
              }
              // The gateway answers itself. A request body not read to its end would be taken for
              // the next request on this HTTP/1.1 connection: it closes after the answer.
              if (!http2 && !request.raw.complete) reply.header('connection', 'close')
              // No upstream took the connection: 503, Retry-After from their health.
              if (notSent && pool.states.every((s) => tried?.has(s) === true || !s.isUp)) reply.send(pool.unreachable())
              else upstreamError(reply, error)
              resolve(reply)
            }
          }
          const headers = withTraceContext(upstreamSpan, state.rewriteHeaders(request, request.headers as IncomingHttpHeaders, claims, forwardAuthorization))
          deps.forwarder.forward({
            origin: upstream.upstream.origin,
            path: route.upstreamPath(upstream.upstream, target.path) + target.query,
            method: request.method,
            headers,
            body: loan?.stream,
            timeout: route.timeout,
            http2
          }, reply.raw, listener)
        }
        send(first)
      })
    })
  }
}
