/**
 * The gateway's spans beyond the request's own (`traceRequests` in @gatehouse/shared/tracing):
 * the route and the token check's outcome on the request span, and a CLIENT span for the
 * upstream call whose context reaches the upstream as W3C `traceparent`. Called only with a
 * request span, that is while an SDK is registered (docs/operations.md, Tracing).
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { isAuthError, type AccessClaims } from '@gatehouse/fastify-auth'
import { ATTR, failSpan } from '@gatehouse/shared/tracing'
import type { Upstream } from './route-table.ts'

export const tracer = trace.getTracer('@gatehouse/gateway')

/** Names the request's span after its route (`GET api`); its outcome is `none` until a token is checked. */
export function noteRoute (span: Span, method: string, route: string): void {
  span.updateName(`${method} ${route}`)
  span.setAttribute(ATTR.route, route)
  span.setAttribute(ATTR.outcome, 'none')
}

/**
 * The token check's outcome on the request's span, `gatehouse.outcome`: `ok` (with the client
 * id), `anonymous` (optional auth, no token), or the refusal's reason.
 */
export async function noteAuth (span: Span, check: Promise<AccessClaims | null>): Promise<AccessClaims | null> {
  try {
    const claims = await check
    if (claims === null) {
      span.setAttribute(ATTR.outcome, 'anonymous')
    } else {
      span.setAttribute(ATTR.outcome, 'ok')
      span.setAttribute(ATTR.clientId, claims.client_id)
    }
    return claims
  } catch (err) {
    span.setAttribute(ATTR.outcome, isAuthError(err) ? err.reason : 'error')
    throw err
  }
}

/** The upstream call's span (`upstream GET`), a child of the active request span. */
export function startUpstreamSpan (method: string, route: string, upstream: Upstream): Span {
  const { hostname, port, protocol } = new URL(upstream.origin)
  return tracer.startSpan(`upstream ${method}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'http.request.method': method,
      'server.address': hostname,
      'server.port': port === '' ? (protocol === 'https:' ? 443 : 80) : Number(port),
      [ATTR.route]: route
    }
  })
}

/**
 * `headers` with `span`'s W3C trace context (`traceparent`, `tracestate`, `baggage`) in place of
 * the caller's. The caller's fields are dropped first: those the request's span did not take
 * (from anyone but a trusted proxy, traceRequests) must not reach the upstream either.
 */
export function withTraceContext<H extends Record<string, unknown>> (span: Span | null, headers: H): H {
  if (span === null) return headers
  for (const field of propagation.fields()) Reflect.deleteProperty(headers, field)
  propagation.inject(trace.setSpan(context.active(), span), headers)
  return headers
}

/**
 * Ends the upstream span with the upstream's status (a 4xx or 5xx is an ERROR on a client span,
 * as the HTTP conventions have it), or with the error that stopped the call.
 */
export function endUpstreamSpan (span: Span, outcome: number | Error): void {
  if (typeof outcome !== 'number') {
    failSpan(span, outcome)
  } else {
    span.setAttribute('http.response.status_code', outcome)
    if (outcome >= 400) {
      span.setAttribute(ATTR.errorType, String(outcome))
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
  }
  span.end()
}
