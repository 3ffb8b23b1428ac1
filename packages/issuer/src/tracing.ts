/**
 * The issuer's spans beyond each request's own (`traceRequests` in @gatehouse/shared/tracing):
 * one per grant at the token endpoint and one per signature, while an OpenTelemetry SDK is
 * registered (docs/operations.md, Tracing). Never a subject, a username or a token: the client
 * id, the grant type, the OAuth error code, the key id.
 */
import { trace, type Span } from '@opentelemetry/api'
import type { FastifyRequest } from 'fastify'
import { ATTR, inSpan, inSpanSync, isTracing } from '@gatehouse/shared/tracing'

export const tracer = trace.getTracer('@gatehouse/issuer')

/** What the issuer adds to a request's span as it ends: the client, once authenticated. */
export function describeRequest (span: Span, request: FastifyRequest): void {
  if (request.clientId !== null) span.setAttribute(ATTR.clientId, request.clientId)
}

/**
 * Runs a grant in a `grant <type>` span: `gatehouse.outcome` is `ok` or the OAuth error code
 * (`error.type`), which marks the span failed only for a server-side error.
 */
export async function traceGrant<T> (grantType: string, clientId: string, run: () => Promise<T>): Promise<T> {
  if (!isTracing()) return await run()
  return await inSpan(tracer, `grant ${grantType}`, { [ATTR.grantType]: grantType, [ATTR.clientId]: clientId }, async (span) => {
    try {
      const result = await run()
      span.setAttribute(ATTR.outcome, 'ok')
      return result
    } catch (err) {
      const code = (err as { code?: unknown }).code
      span.setAttribute(ATTR.outcome, typeof code === 'string' ? code : 'error')
      throw err
    }
  })
}

/**
 * Runs a signature in a `sign <typ>` span (`at+jwt`, `JWT`, `logout+jwt`, ...) naming the key.
 * Call it only when {@link isTracing}: signing is on the token path.
 */
export function traceSigning<T> (typ: string, alg: string, kid: string, sign: () => T): T {
  return inSpanSync(tracer, `sign ${typ}`, { 'gatehouse.jws.typ': typ, 'gatehouse.jws.alg': alg, 'gatehouse.jws.kid': kid }, sign)
}
