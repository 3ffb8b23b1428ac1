/**
 * CORS at the gateway, per route (`cors`) and on the logout path (`logout.cors`): the Fetch
 * standard's CORS protocol, compiled with the route table so a reload swaps it with the routes.
 *
 * The issuer uses @fastify/cors. The gateway does not, deliberately: its routes live in a table
 * behind one catch-all route that a reload swaps whole, and @fastify/cors declares its own
 * `OPTIONS *` route (which collides with the catch-all) and runs an options delegator with two
 * object merges and a `Vary` header on every request. Here a request without an `Origin`
 * header (every server-to-server call) costs one property read, and the policy is data.
 *
 * - A preflight (OPTIONS with Origin and Access-Control-Request-Method) on a route whose CORS
 *   the gateway answers is answered here, before authentication (it carries no token), and
 *   never reaches the upstream: 204 with the allowed methods, headers and max age when the
 *   origin, the method and every requested header are allowed; otherwise 403 with no CORS
 *   header at all, so the browser blocks the request.
 * - Every answer on such a route has `Vary: Origin`, and the upstream's own Access-Control-*
 *   headers are dropped, Origin or not (a shared cache must not keep them for every origin).
 * - An actual request from an allowed origin gets Access-Control-Allow-Origin (and the exposed
 *   headers, and credentials when configured) on whatever answers it: the upstream, or the
 *   gateway's own 401/403/429/5xx, so a script can read why it was refused.
 * - `handledBy: upstream`: the upstream does CORS itself; preflights (bodiless, as browsers send
 *   them) go to it without a token check, and its headers pass unchanged.
 * - A route without `cors` does no CORS: an OPTIONS request is an ordinary request.
 * A malformed Origin (anything but an allowed origin, byte for byte) is simply not allowed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CorsConfig } from './config.ts'

/** The CORS policy of one route (or of the logout path), ready to answer. */
export class CorsPolicy {
  readonly #anyOrigin: boolean
  readonly #origins: ReadonlySet<string>
  readonly #methods: ReadonlySet<string>
  readonly #headers: ReadonlySet<string>
  /** Headers of every successful preflight, the origin excepted. */
  readonly #preflightHeaders: Readonly<Record<string, string>>
  /** Headers of every actual response from an allowed origin, the origin excepted. */
  readonly #responseHeaders: Readonly<Record<string, string>>

  constructor (config: CorsConfig) {
    this.#anyOrigin = config.origins.includes('*')
    this.#origins = new Set(config.origins)
    this.#methods = new Set(config.methods)
    this.#headers = new Set(config.headers.map((h) => h.toLowerCase()))
    const credentials: Record<string, string> = config.credentials ? { 'access-control-allow-credentials': 'true' } : {}
    this.#preflightHeaders = {
      'access-control-allow-methods': config.methods.join(', '),
      ...(config.headers.length === 0 ? {} : { 'access-control-allow-headers': config.headers.join(', ') }),
      'access-control-max-age': String(config.maxAge),
      ...credentials
    }
    this.#responseHeaders = {
      ...(config.exposedHeaders.length === 0 ? {} : { 'access-control-expose-headers': config.exposedHeaders.join(', ') }),
      ...credentials
    }
  }

  /** What to write as Access-Control-Allow-Origin for `origin`, or undefined when it is not allowed. */
  #allow (origin: string): string | undefined {
    if (this.#origins.has(origin)) return origin
    // `*` with credentials is refused at load time; the literal `*` then suits every origin.
    return this.#anyOrigin ? '*' : undefined
  }

  /** True when `origin` may use this route (a WebSocket upgrade from a browser is checked so). */
  allows (origin: string): boolean {
    return this.#allow(origin) !== undefined
  }

  /** Answers a preflight (see `isPreflight`); never lets it through. */
  answerPreflight (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    appendVary(reply, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
    const origin = request.headers.origin as string
    const allowed = this.#allow(origin)
    const method = request.headers['access-control-request-method'] as string
    const refusal = allowed === undefined
      ? 'the origin is not allowed on this route'
      : !this.#methods.has(method)
          ? `method ${method.slice(0, 32)} is not allowed on this route`
          : this.#refusedHeader(request.headers['access-control-request-headers'])
    if (refusal !== undefined) {
      request.log.info({ origin: origin.slice(0, 200), route: request.gatewayRoute?.id }, `CORS preflight refused: ${refusal}`)
      return reply.code(403).header('cache-control', 'no-store').send({ error: 'cors_refused', error_description: refusal })
    }
    return reply.code(204).headers(this.#preflightHeaders).header('access-control-allow-origin', allowed).send()
  }

  /** A reason when a requested header is not allowed, else undefined. */
  #refusedHeader (requested: string | string[] | undefined): string | undefined {
    if (requested === undefined) return undefined
    for (const raw of String(requested).split(',')) {
      const name = raw.trim().toLowerCase()
      if (name !== '' && !this.#headers.has(name)) return `header ${name.slice(0, 64)} is not allowed on this route`
    }
    return undefined
  }

  /**
   * Adds `Vary: Origin`, and the response headers for the request's origin (none when it sent
   * none or is not allowed). Call before anything can fail, so errors carry them too.
   */
  decorate (request: FastifyRequest, reply: FastifyReply): void {
    // Every answer on the route depends on the Origin, sent or not (Fetch standard, CORS and caches).
    appendVary(reply, 'Origin')
    const origin = request.headers.origin
    if (origin === undefined) return
    const allowed = this.#allow(origin)
    if (allowed === undefined) return
    reply.headers(this.#responseHeaders).header('access-control-allow-origin', allowed)
  }
}

/** True for a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. */
export function isPreflight (request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined
}

function appendVary (reply: FastifyReply, value: string): void {
  const current = reply.getHeader('vary')
  reply.header('vary', current === undefined ? value : `${String(current)}, ${value}`)
}

/** The upstream's response headers without its Access-Control-* (the gateway's policy is the one). */
export function withoutUpstreamCors<T extends Record<string, unknown>> (headers: T): T {
  for (const name of Object.keys(headers)) {
    if (name.startsWith('access-control-')) delete headers[name]
  }
  return headers
}
