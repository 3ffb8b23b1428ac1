/**
 * The issuer's public keys (RFC 7517 JWK Set), cached in memory.
 *
 * - An unknown `kid` refetches the set, at most once per `jwksCooldown` (a flood of made-up
 *   kids costs the issuer one request per cooldown).
 * - A failed refetch never drops known keys: tokens signed with them keep passing while the
 *   issuer is down. Only a successful fetch replaces the set.
 * - Keys older than `jwksMaxAge` are refreshed in the background, so a key the issuer removed
 *   stops being trusted.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { JWK } from 'jose'
import { IssuerMismatchError, type Discovery } from './discovery.ts'
import { AuthError } from './errors.ts'
import { fetchJson, IssuerFetchError } from './http.ts'
import type { Clock, RevocationLog } from './revocation/types.ts'

export interface KeySetOptions {
  jwksUri: string | undefined
  discovery: Discovery
  cooldown: number
  maxAge: number
  timeout: number
  clock: Clock
  log: RevocationLog | undefined
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
  #hasFailed = false
  #lastError: unknown
  #pending: Promise<void> | undefined
  /** Fetches of the JWK Set started, successful or not. */
  fetches = 0

  constructor (options: KeySetOptions) {
    this.#options = options
  }

  /** The key for a JWS header's `alg` and `kid`. Throws AuthError unknown_key or issuer_unavailable. */
  async resolve (alg: string, kid: string | undefined): Promise<KeyObject> {
    let known = this.#find(alg, kid)
    if (known === undefined) {
      if (this.#mayRefetch()) {
        await this.refresh()
        known = this.#find(alg, kid)
      }
      // After a failed fetch, the key may well exist: the issuer is the problem, not the token.
      if (known === undefined) throw new AuthError(this.#hasFailed ? 'issuer_unavailable' : 'unknown_key')
    } else if (this.#options.clock.now() - this.#loadedAt > this.#options.maxAge && this.#mayRefetch()) {
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

  #find (alg: string, kid: string | undefined): KnownKey | undefined {
    for (const known of this.#keys) {
      if (kid !== undefined && known.jwk.kid !== kid) continue
      if (isCompatible(known.jwk, alg)) return known
    }
    return undefined
  }

  #mayRefetch (): boolean {
    if (this.#pending !== undefined) return true
    const since = this.#options.clock.now() - this.#attemptedAt
    if (this.#keys.length === 0) return since >= Math.min(this.#options.cooldown, FIRST_LOAD_RETRY_MS)
    return since >= this.#options.cooldown
  }

  async #fetch (): Promise<void> {
    this.#attemptedAt = this.#options.clock.now()
    this.fetches++
    try {
      const uri = this.#options.jwksUri ?? (await this.#options.discovery.get()).jwks_uri
      if (uri === undefined) throw new IssuerFetchError('the discovery document has no jwks_uri')
      const body = await fetchJson(uri, this.#options.timeout)
      const keys = Array.isArray(body.keys) ? body.keys.filter(isUsable) : []
      if (keys.length === 0) throw new IssuerFetchError(`${uri}: no usable signing key`)
      this.#keys = keys.map((jwk) => ({ jwk }))
      this.#loadedAt = this.#options.clock.now()
      this.#hasFailed = false
      this.#lastError = undefined
    } catch (err) {
      this.#hasFailed = true
      this.#lastError = err
      this.#options.log?.warn({ err }, 'gatehouse-auth: JWKS fetch failed; keeping the known keys')
    }
  }
}
