/**
 * The proxy: ONE catch-all route in front of a swappable route table, forwarding with
 * @fastify/reply-from (the engine under @fastify/http-proxy, same maintainers).
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
import type { IncomingHttpHeaders } from 'node:http'
import type { AccessClaims, RouteAuth, TokenVerifier } from '@gatehouse/fastify-auth'
import { borrowBody } from './borrowed-body.ts'
import { isPreflight, withoutUpstreamCors } from './cors.ts'
import { isUpgrade, upgradeAuthorization, type WebSocketProxy } from './websocket.ts'
import { badGateway, badRequest, GatewayError, gatewayTimeout, unavailable } from './errors.ts'
import { sendContinue } from './expect-continue.ts'
import { rewriteResponseHeaders } from './forward-headers.ts'
import type { GatewayMetrics } from './metrics.ts'
import { normalisePath } from './normalise-path.ts'
import type { GatewayState } from './state.ts'
import { failureKind, type UpstreamState } from './upstreams.ts'
import { endUpstreamSpan, noteAuth, noteRoute, startUpstreamSpan, withTraceContext } from './tracing.ts'

export interface ProxyDeps {
  /** The table in force now; read once per request. */
  state: () => GatewayState
  verifier: TokenVerifier
  metrics: GatewayMetrics
  websockets: WebSocketProxy
}

const NOT_FOUND = new GatewayError('not_found', 404, 'no route for this path')
const CORS_REFUSED = new GatewayError('forbidden', 403, 'this origin may not open WebSockets on this route')

/**
 * reply-from retries a GET answered 503 up to ten times by default, on the same upstream; the
 * caller should see the upstream's 503 instead. Retries are ours (failover, `retries`).
 */
const noRetry = (): null => null

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
  // reply-from marks timeouts 504 (headers or connect timeout); anything else is a 502.
  const status = (error as { statusCode?: number }).statusCode
  reply.request.log.warn({ err: (error.cause as Error | undefined)?.message ?? error.message, route: reply.request.gatewayRoute?.id }, 'upstream failed')
  reply.send(status === 504 ? gatewayTimeout() : badGateway())
}

// Request-independent, so made once rather than per request.
const rewriteResponse = (headers: Record<string, unknown>): IncomingHttpHeaders => rewriteResponseHeaders(headers as IncomingHttpHeaders)

/**
 * On a route whose CORS the gateway answers: the upstream's own Access-Control-* headers go
 * (a cache must not keep its `*` for every origin), and its Vary keeps the gateway's `Origin`.
 */
const corsResponse = (headers: Record<string, unknown>): IncomingHttpHeaders => {
  const out = withoutUpstreamCors(rewriteResponse(headers))
  out.vary = out.vary === undefined ? 'Origin' : `${out.vary}, Origin`
  return out
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
      let rewriteHeaders = rewriteResponse
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
        rewriteHeaders = corsResponse
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
      sendContinue(request, reply)

      const pool = route.pool
      const first = pool.pick()
      if (first === undefined) throw pool.unavailable()
      const forwardAuthorization = auth !== null && state.config.identityHeaders.forwardAuthorization
      if (upgrade) {
        return await deps.websockets.proxy(request, reply, {
          upstream: first.upstream,
          path: route.upstreamPath(first.upstream, target.path) + target.query,
          headers: withTraceContext(span, state.rewriteHeaders(request, request.headers as IncomingHttpHeaders, claims, forwardAuthorization)),
          claims,
          route: route.id,
          maxMessageSize: route.config.websocket?.maxMessageSize ?? 0,
          timeout: route.timeout
        })
      }
      const failureStatuses = route.health.passive.statuses
      // Attempts after one that may have reached its upstream (idempotent, bodyless requests only).
      let retries = route.retriesFor(request.method, hasBody(request))
      // Upstreams this request failed on: not tried again (allocated on the first failure only).
      let tried: Set<UpstreamState> | undefined
      // With more than one upstream, a body is lent to each attempt, so that one whose
      // connection failed leaves it whole for the next (borrowed-body.ts).
      const body = pool.states.length > 1 && request.body instanceof Readable ? request.raw : undefined
      const send = (upstream: UpstreamState): FastifyReply => {
        if (body !== undefined) request.body = borrowBody(body)
        const started = performance.now()
        const upstreamSpan = span === null ? null : startUpstreamSpan(request.method, route.id, upstream.upstream)
        return reply.from(upstream.upstream.origin + route.upstreamPath(upstream.upstream, target.path), {
          timeout: route.timeout,
          retryDelay: noRetry,
          rewriteRequestHeaders: (_req, headers) => withTraceContext(upstreamSpan, state.rewriteHeaders(request, headers as IncomingHttpHeaders, claims, forwardAuthorization)),
          rewriteHeaders,
          onResponse: (_req, rep, res) => {
            deps.metrics.observeUpstream(route.id, (performance.now() - started) / 1000)
            if (upstreamSpan !== null) endUpstreamSpan(upstreamSpan, rep.statusCode)
            if (failureStatuses.includes(res.statusCode)) upstream.failed('status')
            else upstream.succeeded()
            rep.send(res.stream)
          },
          onError: (_rep, { error }) => {
            if (upstreamSpan !== null) endUpstreamSpan(upstreamSpan, error)
            const kind = failureKind(error)
            upstream.failed(kind)
            // A client that left needs no second attempt.
            if (!reply.sent && !reply.raw.destroyed && request.raw.socket?.destroyed !== true) {
              // Nothing was sent: any request may go elsewhere. Else only a retryable one.
              const again = kind === 'connect' || retries-- > 0
              if (again) {
                (tried ??= new Set()).add(upstream)
                // A retry after a reset (a pooled connection the upstream had just closed) may
                // go back to the same upstream when no other takes it; after a timeout, never.
                const next = pool.pick(tried) ?? (kind === 'reset' && upstream.accepts(Date.now(), true) ? upstream : undefined)
                if (next !== undefined) {
                  deps.metrics.countUpstreamRetry(route.id, kind === 'connect' ? 'not_sent' : 'idempotent')
                  send(next)
                  return
                }
                // Every upstream refused the connection: none is there.
                if (kind === 'connect') {
                  reply.send(pool.states.every((s) => tried?.has(s) === true || !s.isUp) ? unavailable('no upstream of this route could be reached', 1) : badGateway())
                  return
                }
              }
            }
            upstreamError(reply, error)
          }
        })
      }
      return send(first)
    })
  }
}
