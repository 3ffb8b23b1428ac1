/**
 * Validation by the issuer (RFC 7662), for routes with `validation: 'introspect'`. A token is
 * first checked for the shape of one the issuer could call active (introspection-precheck.ts):
 * garbage is refused here and costs the issuer nothing. Active answers are kept for
 * min(cacheTtl, exp - now), so a busy route asks once per token per few seconds; refusals are
 * kept for negativeCacheTtl in a cache of their own (negativeCacheSize entries), so a flood of
 * bad tokens neither reaches the issuer twice nor evicts the good answers.
 */
import { toAccessClaims } from './claims.ts'
import type { Discovery } from './discovery.ts'
import { AuthError, isAuthError } from './errors.ts'
import { fetchJson, requestIdHeader } from './http.ts'
import { precheckToken, type PrecheckOptions } from './introspection-precheck.ts'
import type { ResolvedIntrospection } from './options.ts'
import type { Clock, RevocationLog } from './revocation/types.ts'
import { TokenCache } from './token-cache.ts'
import type { AccessClaims, AuthFailureReason } from './types.ts'

/** A cached answer: the claims, or why the token was refused; good until `until` (epoch ms). */
interface Answer {
  until: number
  claims: AccessClaims | undefined
  reason: AuthFailureReason
}

/** RFC 6749 2.3.1: client_id and secret are form-urlencoded, then Basic-encoded (RFC 7617). */
function basicCredentials (clientId: string, clientSecret: string): string {
  const encode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2)
  return 'Basic ' + Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')
}

export interface IntrospectorDeps {
  options: ResolvedIntrospection
  issuer: string
  /** Seconds of tolerance on `exp` (the pre-check). */
  clockTolerance: number
  discovery: Discovery
  clock: Clock
  log: RevocationLog | undefined
}

export class Introspector {
  readonly #options: ResolvedIntrospection
  readonly #issuer: string
  readonly #precheck: PrecheckOptions
  readonly #discovery: Discovery
  readonly #clock: Clock
  readonly #log: RevocationLog | undefined
  readonly #authorization: string
  readonly #cache: TokenCache<Answer>
  readonly #refused: TokenCache<Answer>
  readonly #inFlight = new Map<string, Promise<Answer>>()
  /** Requests sent to the introspection endpoint. */
  requests = 0

  constructor ({ options, issuer, clockTolerance, discovery, clock, log }: IntrospectorDeps) {
    this.#options = options
    this.#issuer = issuer
    this.#precheck = { issuer, clockTolerance, opaqueTokens: options.opaqueTokens }
    this.#discovery = discovery
    this.#clock = clock
    this.#log = log
    this.#authorization = basicCredentials(options.clientId, options.clientSecret)
    this.#cache = new TokenCache(options.cacheSize)
    this.#refused = new TokenCache(options.negativeCacheSize)
  }

  /**
   * The claims of an active access token. Throws AuthError (inactive, issuer_unavailable, ...).
   * A request to the issuer carries `requestId` as X-Request-Id (concurrent checks of one token
   * share one request: the first one's id).
   */
  async introspect (token: string, requestId?: string): Promise<AccessClaims> {
    const now = this.#clock.now()
    let answer = this.#cache.get(token)
    if (answer === undefined || now >= answer.until) {
      const refused = this.#refused.get(token)
      if (refused !== undefined && now < refused.until) throw new AuthError(refused.reason)
      precheckToken(token, now, this.#precheck)
      let pending = this.#inFlight.get(token)
      if (pending === undefined) {
        pending = this.#ask(token, requestId).finally(() => this.#inFlight.delete(token))
        this.#inFlight.set(token, pending)
      }
      answer = await pending
    }
    if (answer.claims === undefined) throw new AuthError(answer.reason)
    return answer.claims
  }

  async #ask (token: string, requestId: string | undefined): Promise<Answer> {
    let body: Record<string, unknown>
    try {
      const endpoint = this.#options.endpoint ?? (await this.#discovery.get()).introspection_endpoint
      if (endpoint === undefined) throw new Error('the discovery document has no introspection_endpoint')
      this.requests++
      body = await fetchJson(endpoint, this.#options.timeout, {
        method: 'POST',
        headers: { authorization: this.#authorization, 'content-type': 'application/x-www-form-urlencoded', ...requestIdHeader(requestId) },
        // RFC 7662 2.1: the token, and a hint of its type.
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString()
      })
    } catch (err) {
      // Not cached: the next request asks again.
      this.#log?.warn({ err }, 'gatehouse-auth: token introspection failed')
      throw new AuthError('issuer_unavailable', { cause: err })
    }
    const answer = this.#read(body)
    const now = this.#clock.now()
    if (answer.claims === undefined) {
      this.#refused.set(token, { ...answer, until: now + this.#options.negativeCacheTtl * 1000 })
      return answer
    }
    const until = Math.min(now + this.#options.cacheTtl * 1000, answer.until)
    if (until > now) this.#cache.set(token, { ...answer, until })
    return answer
  }

  /** RFC 7662 2.2: `active` is the answer; the rest are the token's claims. */
  #read (body: Record<string, unknown>): Answer {
    const refused = (reason: AuthFailureReason): Answer => ({ until: 0, claims: undefined, reason })
    if (body.active !== true) return refused('inactive')
    // A refresh token is active too, but it is not an access token (RFC 7662 2.2 token_type).
    const type = body.token_type
    if (type !== undefined && (typeof type !== 'string' || !/^(bearer|access_token)$/i.test(type))) {
      return refused('bad_type')
    }
    let claims: AccessClaims
    try {
      // RFC 7662 2.2: iss is optional; the endpoint is the issuer's own.
      claims = toAccessClaims({ iss: this.#issuer, ...body }, this.#issuer)
    } catch (err) {
      if (isAuthError(err)) return refused(err.reason)
      throw err
    }
    const expiresAt = claims.exp * 1000
    if (expiresAt <= this.#clock.now()) return refused('inactive')
    return { until: expiresAt, claims, reason: 'inactive' }
  }
}
