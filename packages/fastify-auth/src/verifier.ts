/**
 * TokenVerifier: one access token in, its claims out, or an AuthError saying why not.
 *
 * Per request, in order: length, cache (or local validation / introspection), then the checks
 * that hold for this request only and so run on every request, cache hit or not: audience,
 * revocation list, its staleness, scopes.
 */
import type { Span } from '@opentelemetry/api'
import { bearerTokenStart, isB64Token } from './bearer.ts'
import { Discovery } from './discovery.ts'
import { AuthError, isAuthError } from './errors.ts'
import { Introspector } from './introspection.ts'
import { LocalValidator } from './jwt-local.ts'
import { KeySet } from './key-set.ts'
import { AuthOptionsError, parseAuthOptions, type ResolvedAuthOptions } from './options.ts'
import { TokenCache } from './token-cache.ts'
import { ATTR, isTracing, noteFailure, tracer } from './tracing.ts'
import type { AccessClaims, AuthOptions, RouteAuth } from './types.ts'
import type { KeyChange } from './revocation/types.ts'

/** Counters for tests and metrics; plain numbers, read at will. */
export interface VerifierStats {
  /** Requests answered from the verified-token cache (no signature check). */
  cacheHits: number
  /** Tokens whose signature was checked. */
  signatureChecks: number
  /** JWK Set fetches started. */
  jwksFetches: number
  /** Requests sent to the introspection endpoint. */
  introspections: number
}

/** RFC 7519 4.1.3 / RFC 9068 4: one of the token's audiences must be one we answer to. */
function hasAudience (aud: string[], expected: string | string[]): boolean {
  if (typeof expected === 'string') return aud.includes(expected)
  for (const one of expected) if (aud.includes(one)) return true
  return false
}

/**
 * Verifies Gatehouse access tokens (RFC 9068 JWTs) locally against the issuer's JWKS, or by
 * introspection (RFC 7662) for routes that ask for it. Options are checked by the constructor,
 * which throws an AuthOptionsError naming the bad option.
 */
export class TokenVerifier {
  readonly #options: ResolvedAuthOptions
  readonly #keys: KeySet
  readonly #local: LocalValidator
  readonly #introspector: Introspector | undefined
  readonly #cache: TokenCache<AccessClaims>
  #cacheHits = 0

  constructor (options: AuthOptions) {
    const opts = this.#options = parseAuthOptions(options)
    const discovery = new Discovery(opts.discoveryUrl, opts.issuer, opts.jwksTimeout, opts.clock)
    this.#keys = new KeySet({
      jwksUri: opts.jwksUri,
      discovery,
      cooldown: opts.jwksCooldown,
      maxAge: opts.jwksMaxAge,
      timeout: opts.jwksTimeout,
      clock: opts.clock,
      log: opts.log,
      // A token verified with a key that is gone (revoked) must not pass from the cache.
      onDrop: () => { this.#cache.clear() }
    })
    this.#local = new LocalValidator(opts, this.#keys)
    this.#introspector = opts.introspection === undefined
      ? undefined
      : new Introspector({ options: opts.introspection, issuer: opts.issuer, clockTolerance: opts.clockTolerance, discovery, clock: opts.clock, log: opts.log })
    this.#cache = new TokenCache(opts.cacheSize)
    // Key changes the issuer announces on the list's channel (Redis) reach the key set at once.
    opts.revocations.onKeyChange?.((change) => { this.keyChanged(change).catch(() => {}) })
  }

  /**
   * The claims of a valid access token that meets `route`'s requirements. Rejects with an
   * AuthError, after calling `onFailure(reason)` once. A cache hit costs a Map lookup and
   * the per-request checks: no signature, no regex, no object but the returned promise.
   * While an OpenTelemetry SDK is registered, each call is a `verify token` span.
   *
   * `requestId` is the id of the request the check is for (Fastify's `request.id`): a call it
   * makes to the issuer (introspection) carries it as `X-Request-Id`, so the issuer's log lines
   * can be joined to the caller's.
   */
  verify (token: string, route?: RouteAuth, requestId?: string): Promise<AccessClaims> {
    return isTracing() ? this.#traced(token, route, requestId) : this.#verify(token, route, requestId, undefined)
  }

  /** {@link verify} in a span: where the verdict came from (cache, signature, introspection) and which. */
  #traced (token: string, route: RouteAuth | undefined, requestId: string | undefined): Promise<AccessClaims> {
    return tracer.startActiveSpan('verify token', (span) => this.#verify(token, route, requestId, span).then((claims) => {
      span.setAttribute(ATTR.outcome, 'ok')
      span.setAttribute(ATTR.clientId, claims.client_id)
      span.end()
      return claims
    }, (err: unknown) => {
      noteFailure(span, err)
      span.end()
      throw err
    }))
  }

  #verify (token: string, route: RouteAuth | undefined, requestId: string | undefined, span: Span | undefined): Promise<AccessClaims> {
    try {
      if (typeof token !== 'string' || token === '') throw new AuthError('malformed')
      if (token.length > this.#options.maxTokenLength) throw new AuthError('too_long')
      if (route?.validation === 'introspect') {
        if (!isB64Token(token)) throw new AuthError('malformed')
        span?.setAttribute(ATTR.source, 'introspection')
        return this.#introspect(token, route, requestId)
      }
      const cached = this.#cache.get(token)
      if (cached !== undefined) {
        // Never past exp, even by the clock tolerance: a fresh validation decides that.
        if (this.#options.clock.now() < cached.exp * 1000) {
          this.#cacheHits++
          span?.setAttribute(ATTR.source, 'cache')
          this.#checkRequest(cached, route)
          return Promise.resolve(cached)
        }
        this.#cache.delete(token)
      }
      // A miss goes to local validation, whose check of the three base64url segments is
      // stricter than RFC 6750 2.1's b64token (and refuses with the same 'malformed').
    } catch (err) {
      return Promise.reject(this.#refuse(err))
    }
    span?.setAttribute(ATTR.source, 'signature')
    return this.#validate(token, route)
  }

  /**
   * Like {@link verify}, from an `Authorization` header value (RFC 6750 2.1). No header: null
   * when `route.mode` is 'optional', else an AuthError 'missing'.
   */
  verifyAuthorization (authorization: string | undefined, route?: RouteAuth, requestId?: string): Promise<AccessClaims | null> {
    let start: number
    try {
      if (authorization === undefined || authorization === '') {
        if (route?.mode === 'optional') return Promise.resolve(null)
        throw new AuthError('missing')
      }
      // RFC 6750 2.1: "Bearer" 1*SP b64token. verify() checks the b64token on a cache miss.
      start = bearerTokenStart(authorization)
      if (start < 0) throw new AuthError('malformed')
    } catch (err) {
      return Promise.reject(this.#refuse(err))
    }
    return this.verify(authorization.slice(start), route, requestId)
  }

  /**
   * The issuer announced a change of its signing keys (Redis, Shared Signals): a revoked kid is
   * refused from now on, and the JWKS is fetched again at once. Never rejects.
   */
  keyChanged (change: KeyChange): Promise<void> {
    return this.#keys.announce(change)
  }

  /**
   * True when the key `kid` was revoked since (announced by the issuer: an emergency rollover).
   * For whoever holds on to claims past the request (the gateway's open WebSockets).
   */
  isKeyRevoked (kid: string): boolean {
    return this.#keys.isDenied(kid)
  }

  /** Fetches the discovery document and the JWKS now; rejects if no key can be loaded. */
  async ready (): Promise<void> {
    await this.#keys.load()
  }

  /** Closes the in-memory revocation list this verifier created (a given list is the caller's). */
  async close (): Promise<void> {
    this.#cache.clear()
    if (this.#options.ownsRevocations) await this.#options.revocations.close()
  }

  /** The `realm` of this verifier's challenges (RFC 6750 3). */
  get realm (): string {
    return this.#options.realm
  }

  /** True when routes may use `validation: 'introspect'`. */
  get hasIntrospection (): boolean {
    return this.#introspector !== undefined
  }

  get stats (): VerifierStats {
    return {
      cacheHits: this.#cacheHits,
      signatureChecks: this.#local.signatureChecks,
      jwksFetches: this.#keys.fetches,
      introspections: this.#introspector?.requests ?? 0
    }
  }

  #validate (token: string, route: RouteAuth | undefined): Promise<AccessClaims> {
    try {
      const claims = this.#local.validate(token)
      if (!(claims instanceof Promise)) return Promise.resolve(this.#accept(token, claims, route))
      return claims.then((c) => this.#accept(token, c, route)).catch((err: unknown) => { throw this.#refuse(err) })
    } catch (err) {
      return Promise.reject(this.#refuse(err))
    }
  }

  /** A token whose signature and claims are valid: cached, then checked for this request. */
  #accept (token: string, claims: AccessClaims, route: RouteAuth | undefined): AccessClaims {
    if (this.#options.clock.now() < claims.exp * 1000) this.#cache.set(token, claims)
    this.#checkRequest(claims, route)
    return claims
  }

  async #introspect (token: string, route: RouteAuth, requestId: string | undefined): Promise<AccessClaims> {
    try {
      if (this.#introspector === undefined) {
        throw new AuthOptionsError('route.validation', "is 'introspect' but options.introspection is not set")
      }
      const claims = await this.#introspector.introspect(token, requestId)
      this.#checkRequest(claims, route)
      return claims
    } catch (err) {
      throw this.#refuse(err)
    }
  }

  /** What may differ from one request to the next for the same token. Throws AuthError. */
  #checkRequest (claims: AccessClaims, route: RouteAuth | undefined): void {
    const audience = route?.audience === undefined ? this.#options.audience : route.audience
    if (audience != null && !hasAudience(claims.aud, audience)) throw new AuthError('bad_audience', { claims })
    if (route?.checkRevocation !== false) {
      const revocations = this.#options.revocations
      // The claims object itself carries jti and sid: no lookup object is built per request.
      if (revocations.isRevoked(claims)) throw new AuthError('revoked', { claims })
      if (!this.#options.failOpen && revocations.staleness > this.#options.maxStaleness) {
        throw new AuthError('revocations_stale', { claims })
      }
    }
    const scopes = route?.scopes
    if (scopes === undefined) return
    for (const scope of scopes) {
      // RFC 6750 3.1: insufficient_scope names the scope the resource needs.
      if (!claims.scope.includes(scope)) throw new AuthError('insufficient_scope', { scope: scopes.join(' '), claims })
    }
  }

  /** Reports a refusal once (metrics) and hands the error back; other errors pass untouched. */
  #refuse (err: unknown): unknown {
    if (isAuthError(err) && this.#options.onFailure !== undefined) {
      try {
        this.#options.onFailure(err.reason)
      } catch (cause) {
        this.#options.log?.warn({ err: cause }, 'gatehouse-auth: onFailure threw')
      }
    }
    return err
  }
}
