/**
 * Spans of token checks, through the OpenTelemetry API only: the application registers an SDK
 * (Gatehouse's services do when the `OTEL_*` variables ask), or nothing is traced. Each span
 * is started only after {@link isTracing}, so without an SDK a token check builds nothing more.
 *
 * This package stands alone (any Fastify app), so it carries its own copy of the check that
 * `@gatehouse/shared/tracing` makes for the services. Attributes never carry a token or a
 * subject: the client id, the outcome, where the answer came from.
 */
import { context, propagation, ProxyTracerProvider, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { isAuthError } from './errors.ts'

export const tracer = trace.getTracer('@gatehouse/fastify-auth')

/** Span attribute names. */
export const ATTR = {
  /** `ok`, or the refusal's reason (`expired`, `revoked`, ...). */
  outcome: 'gatehouse.outcome',
  /** Where the verdict came from: `cache`, `signature` (checked now) or `introspection`. */
  source: 'gatehouse.token.source',
  clientId: 'gatehouse.client_id',
  errorType: 'error.type'
} as const

const NO_SDK = new ProxyTracerProvider().getDelegate()

/** True once the application registered an OpenTelemetry SDK (its tracer provider). */
export function isTracing (): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK
}

/**
 * Notes why `err` ended the work of `span`: a refusal is an outcome (its reason); anything else
 * (the issuer unreachable, a bug) is an ERROR with the error's class name, never its message.
 */
export function noteFailure (span: Span, err: unknown): void {
  if (isAuthError(err)) {
    span.setAttribute(ATTR.outcome, err.reason)
    if (err.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    return
  }
  span.setAttribute(ATTR.errorType, err instanceof Error ? err.name : 'error')
  span.setStatus({ code: SpanStatusCode.ERROR })
}

/** `headers` plus the active trace context (`traceparent`), so the issuer continues the trace. */
export function withTraceContext (headers: Record<string, string>): Record<string, string> {
  if (isTracing()) propagation.inject(context.active(), headers)
  return headers
}
