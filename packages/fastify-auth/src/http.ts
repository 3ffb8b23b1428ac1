/** The one way this package talks to the issuer: fetch with a deadline, JSON back. */
import { withTraceContext } from './tracing.ts'

/** An issuer answer we could not use: unreachable, timed out, not 200, not JSON. */
export class IssuerFetchError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'IssuerFetchError'
  }
}

/** What may be sent as an X-Request-Id (the ids Gatehouse's services make and keep). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * `X-Request-Id: <id>` for a call made on behalf of a request, so the issuer's log lines carry
 * the caller's id (it keeps one only from a proxy it trusts); nothing for no id, or for one
 * an application made that is no sane header value.
 */
export function requestIdHeader (requestId: string | undefined): Record<string, string> {
  return requestId !== undefined && REQUEST_ID.test(requestId) ? { 'x-request-id': requestId } : {}
}

/** Largest body read from the issuer; a JWKS or discovery document is a few kB. */
const MAX_BODY = 1024 * 1024

/** Fetches `url` and parses a JSON object, or throws IssuerFetchError. Carries the trace context while tracing. */
export async function fetchJson (url: string, timeout: number, init: RequestInit = {}): Promise<Record<string, unknown>> {
  let response: Response
  try {
    response = await fetch(url, {
      ...init,
      headers: withTraceContext({ accept: 'application/json', ...init.headers as Record<string, string> }),
      redirect: 'error',
      signal: AbortSignal.timeout(timeout)
    })
  } catch (cause) {
    throw new IssuerFetchError(`${url}: ${(cause as Error).message}`, { cause })
  }
  let text: string
  try {
    text = await response.text()
  } catch (cause) {
    throw new IssuerFetchError(`${url}: reading the body failed`, { cause })
  }
  if (response.status !== 200) throw new IssuerFetchError(`${url}: HTTP ${response.status}`)
  if (text.length > MAX_BODY) throw new IssuerFetchError(`${url}: body larger than ${MAX_BODY} bytes`)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (cause) {
    throw new IssuerFetchError(`${url}: body is not JSON`, { cause })
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new IssuerFetchError(`${url}: body is not a JSON object`)
  }
  return body as Record<string, unknown>
}
