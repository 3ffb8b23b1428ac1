/**
 * The issuer's public keys (RFC 7517 JWK Set), cached in memory.
 *
 * - An unknown `kid` refetches the set, at most once per `jwksCooldown` (a flood of made-up
 *   kids costs the issuer one request per cooldown). Only fetches an unknown kid caused count
 *   toward it: a background refresh or an announced change never holds back the first token
 *   signed with a new key.
 * - A failed refetch never drops known keys: tokens signed with them keep passing while the
 *   issuer is down. Only a successful fetch replaces the set.
 * - Keys older than `jwksMaxAge` are refreshed in the background, so a key the issuer removed
 *   stops being trusted.
 * - A key change the issuer announces (Redis, Shared Signals: {@link KeySet.announce}) refetches
 *   at once, outside the cooldown, until the set shows it. A revoked kid is dropped before
 *   that fetch and never trusted again, whatever a later fetch (or a failed one) says.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { Span } from '@opentelemetry/api'
import type { JWK } from 'jose'
import { IssuerMismatchError, type Discovery } from './discovery.ts'
import { AuthError } from './errors.ts'
import { fetchJson, IssuerFetchError } from './http.ts'
import type { Clock, KeyChange, RevocationLog } from './revocation/types.ts'
import { isTracing, noteFailure, tracer } from './tracing.ts'

export interface KeySetOptions {
  jwksUri: string | undefined
  discovery: Discovery
  cooldown: number
  maxAge: number
  timeout: number
  clock: Clock
  log: RevocationLog | undefined
  /** Called when a key leaves the set (revoked, or gone from a fetched JWKS): drop what it verified. */
  onDrop?: () => void
}

interface KnownKey {
  jwk: JWK
  /** Imported on first use; null when node:crypto refused the JWK. */
  key?: KeyObject | null
}

/** RFC 7518 3.3: RSA keys of at least 2048 bits. */
const MIN_RSA_BITS = 2048

function importKey (jwk: JWK): KeyObject | null {
  try {
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return null
    }
    return key
  } catch {
    return null
  }
}

/** While no key was ever loaded, retry a failed fetch after this long even inside the cooldown. */
const FIRST_LOAD_RETRY_MS = 1000
/** After an announcement the fetched set does not show yet (another issuer instance answered): retry after these. */
const ANNOUNCED_RETRY_MS = [100, 250, 500, 1000, 2000, 4000]
/** Revoked kids remembered (kids are random: this only bounds memory against a chatty channel). */
const MAX_DENIED = 10_000
/** Announced changes followed at once (a chatty or forged channel cannot grow it without bound). */
const MAX_EXPECTED = 100

const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }

/** RFC 7518 6 / RFC 8037 2: which key type (and curve) can carry `alg`. */
function isCompatible (jwk: JWK, alg: string): boolean {
  if (jwk.alg !== undefined) return jwk.alg === alg
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA'
  if (alg.startsWith('ES')) return jwk.kty === 'EC' && jwk.crv === EC_CURVES[alg]
  if (alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
  return alg === 'EdDSA' && jwk.kty === 'OKP'
}

/** A public signing key we may use: never a shared secret (`oct`), never private material. */
function isUsable (value: unknown): value is JWK {
  if (typeof value !== 'object' || value === null) return false
  const jwk = value as JWK
  if (typeof jwk.kty !== 'string' || jwk.kty === 'oct' || jwk.d !== undefined) return false
  // RFC 7517 4.2, 4.3: a key marked for another use is not ours to verify with.
  if (jwk.use !== undefined && jwk.use !== 'sig') return false
  return jwk.key_ops === undefined || jwk.key_ops.includes('verify')
}

export class KeySet {
  readonly #options: KeySetOptions
  #keys: KnownKey[] = []
  #loadedAt = -Infinity
  #attemptedAt = -Infinity
  /** When an unknown kid last caused a fetch: the cooldown counts from this only. */
  #unknownKidAt = -Infinity
  /** Revoked kids: never trusted again. */
  readonly #denied = new Set<string>()
  /** Announced changes the fetched set does not show yet. */
  readonly #expected = new Map<string, KeyChange['change']>()
  #announcing: Promise<void> | undefined
  #isRenewed = false
  /** Waiting for the next fetch to end. */
  #afterFetch: Array<() => void> = []
  #hasFailed = false
  #lastError: unknown
  #pending: Promise<void> | undefined
  /** Fetches of the JWK Set started, successful or not. */
  fetches = 0

  constructor (options: KeySetOptions) {
    this.#options = options
  }

  /**
   * The key for `alg` and `kid` when it is here and usable now, else undefined (then
   * {@link resolve} decides: wait for an announced key, fetch, or refuse). No promise: the
   * path of nearly every token.
   */
  known (alg: string, kid: string | undefined): KeyObject | undefined {
    if (kid !== undefined && this.#denied.has(kid)) return undefined
    const known = this.#find(alg, kid)
    if (known === undefined) return undefined
    if (known.key === undefined) known.key = importKey(known.jwk)
    if (known.key === null) return undefined
    if (this.#isRefreshDue()) this.refresh().catch(() => {}) // never rejects; the known key serves meanwhile
    return known.key
  }

  /** The key for a JWS header's `alg` and `kid`. Throws AuthError unknown_key or issuer_unavailable. */
  async resolve (alg: string, kid: string | undefined): Promise<KeyObject> {
    // Revoked: refused, whatever the issuer's JWKS says or whether it answers.
    if (kid !== undefined && this.#denied.has(kid)) throw new AuthError('unknown_key')
    let known = this.#find(alg, kid)
    // Announced and on its way: wait for it (fetch by fetch) rather than refuse its first tokens.
    if (kid !== undefined) {
      while (known === undefined && this.#expected.has(kid) && this.#announcing !== undefined) {
        await Promise.race([this.#announcing, new Promise<void>((resolve) => { this.#afterFetch.push(resolve) })])
        known = this.#find(alg, kid)
      }
    }
    if (known === undefined) {
      if (this.#mayRefetch()) {
        this.#unknownKidAt = this.#options.clock.now()
        await this.refresh()
        known = this.#find(alg, kid)
      }
      // After a failed fetch, the key may well exist: the issuer is the problem, not the token.
      if (known === undefined) throw new AuthError(this.#hasFailed ? 'issuer_unavailable' : 'unknown_key')
    } else if (this.#isRefreshDue()) {
      this.refresh().catch(() => {}) // never rejects; the known key serves meanwhile
    }
    if (known.key === undefined) known.key = importKey(known.jwk)
    if (known.key === null) throw new AuthError('unknown_key')
    return known.key
  }

  /** Fetches the set now (joining a fetch in flight). Never rejects: failures are logged and kept. */
  async refresh (): Promise<void> {
    this.#pending ??= this.#fetch().finally(() => { this.#pending = undefined })
    await this.#pending
  }

  /**
   * Loads the keys; rejects when none could be loaded: with the IssuerMismatchError itself when
   * the issuer names itself differently (a config mistake), else with the failure as `cause`.
   */
  async load (): Promise<void> {
    await this.refresh()
    if (this.#keys.length > 0) return
    if (this.#lastError instanceof IssuerMismatchError) throw this.#lastError
    throw new Error('gatehouse-auth: the issuer\'s JWKS could not be loaded', { cause: this.#lastError })
  }

  get size (): number {
    return this.#keys.length
  }

  /**
   * A key change the issuer announced over a trusted channel. A revoked kid is dropped at once
   * (and `onDrop` called); then the set is fetched again, outside the unknown-kid cooldown,
   * until it shows every announced change (retrying for ~8 s: several issuer instances may not
   * all have reloaded yet). Never rejects; a failed fetch keeps the known keys, less the revoked.
   */
  announce (change: KeyChange): Promise<void> {
    if (change.change === 'revoked') this.#deny(change.kid)
    // A change not yet followed restarts the retries (a loop near its end must not drop it).
    if (!this.#expected.has(change.kid)) this.#isRenewed = true
    if (this.#expected.size >= MAX_EXPECTED) this.#expected.delete(this.#expected.keys().next().value as string)
    this.#expected.set(change.kid, change.change)
    this.#announcing ??= this.#followAnnouncements().finally(() => { this.#announcing = undefined })
    return this.#announcing
  }

  /** True when `kid` was revoked (an emergency rollover): never trusted again. */
  isDenied (kid: string): boolean {
    return this.#denied.has(kid)
  }

  #deny (kid: string): void {
    if (this.#denied.size >= MAX_DENIED) this.#denied.delete(this.#denied.values().next().value as string)
    this.#denied.add(kid)
    const before = this.#keys.length
    this.#keys = this.#keys.filter((k) => k.jwk.kid !== kid)
    if (this.#keys.length < before) this.#options.onDrop?.()
  }

  /** True when the current set shows the change (a published or activated kid is in it; a retired or revoked one is not). */
  #shows (kid: string, change: KeyChange['change']): boolean {
    const present = this.#keys.some((k) => k.jwk.kid === kid)
    return change === 'published' || change === 'activated' ? present : !present
  }

  async #followAnnouncements (): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      // A fetch already in flight may have started before the change: wait it out, then fetch anew.
      if (this.#pending !== undefined) await this.#pending
      await this.refresh()
      for (const [kid, change] of this.#expected) if (this.#shows(kid, change)) this.#expected.delete(kid)
      if (this.#expected.size === 0) return
      if (this.#isRenewed) {
        this.#isRenewed = false
        attempt = 0
      }
      const wait = ANNOUNCED_RETRY_MS[attempt]
      if (wait === undefined) {
        this.#options.log?.warn({ kids: [...this.#expected.keys()] }, 'gatehouse-auth: announced key changes not seen in the JWKS; relying on the regular refresh')
        this.#expected.clear()
        return
      }
      await new Promise((resolve) => setTimeout(resolve, wait).unref())
    }
  }

  #find (alg: string, kid: string | undefined): KnownKey | undefined {
    for (const known of this.#keys) {
      if (kid !== undefined && known.jwk.kid !== kid) continue
      if (isCompatible(known.jwk, alg)) return known
    }
    return undefined
  }

  /**
   * Keys older than maxAge: refresh in the background, at most once per cooldown after any
   * attempt (so an issuer that fails fast is not asked on every request).
   */
  #isRefreshDue (): boolean {
    const now = this.#options.clock.now()
    return now - this.#loadedAt > this.#options.maxAge && this.#pending === undefined &&
      (now - this.#attemptedAt >= this.#options.cooldown || now - this.#attemptedAt >= this.#options.maxAge)
  }

  #mayRefetch (): boolean {
    if (this.#pending !== undefined) return true
    const since = this.#options.clock.now() - this.#attemptedAt
    if (this.#keys.length === 0) return since >= Math.min(this.#options.cooldown, FIRST_LOAD_RETRY_MS)
    return this.#options.clock.now() - this.#unknownKidAt >= this.#options.cooldown
  }

  async #fetch (): Promise<void> {
    try {
      if (!isTracing()) await this.#fetchOnce(undefined)
      else await tracer.startActiveSpan('fetch JWKS', async (span) => { await this.#fetchOnce(span).finally(() => { span.end() }) })
    } finally {
      const waiting = this.#afterFetch
      this.#afterFetch = []
      for (const resolve of waiting) resolve()
    }
  }

  async #fetchOnce (span: Span | undefined): Promise<void> {
    this.#attemptedAt = this.#options.clock.now()
    this.fetches++
    try {
      const uri = this.#options.jwksUri ?? (await this.#options.discovery.get()).jwks_uri
      if (uri === undefined) throw new IssuerFetchError('the discovery document has no jwks_uri')
      span?.setAttribute('url.full', withoutSecrets(uri))
      const body = await fetchJson(uri, this.#options.timeout)
      const keys = Array.isArray(body.keys) ? body.keys.filter((jwk) => isUsable(jwk) && !this.#denied.has(String(jwk.kid))) : []
      if (keys.length === 0) throw new IssuerFetchError(`${uri}: no usable signing key`)
      span?.setAttribute('gatehouse.jwks.keys', keys.length)
      const kept = new Set(keys.map((jwk) => jwk.kid))
      const dropped = this.#keys.some((k) => !kept.has(k.jwk.kid))
      // Keys already imported stay imported.
      const known = new Map(this.#keys.map((k) => [JSON.stringify(k.jwk), k]))
      this.#keys = keys.map((jwk) => known.get(JSON.stringify(jwk)) ?? { jwk })
      if (dropped) this.#options.onDrop?.()
      this.#loadedAt = this.#options.clock.now()
      this.#hasFailed = false
      this.#lastError = undefined
    } catch (err) {
      this.#hasFailed = true
      this.#lastError = err
      if (span !== undefined) noteFailure(span, err)
      this.#options.log?.warn({ err }, 'gatehouse-auth: JWKS fetch failed; keeping the known keys')
    }
  }
}

/** A URL as a span may carry it: no userinfo, no query, no fragment (they may hold secrets). */
function withoutSecrets (uri: string): string {
  try {
    const url = new URL(uri)
    return `${url.origin}${url.pathname}`
  } catch {
    return '(unparsable)'
  }
}
