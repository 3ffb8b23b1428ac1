/**
 * In-process stores: the embedded default's refresh tokens, and `ExpiringMap`, which
 * `memory-codes.ts`, `memory-sessions.ts` and `memory-failures.ts` build on.
 * State lives in Maps and dies with the process; the lead's assembly warns about that once
 * at boot (docs/architecture.md, The stores). Records are cloned on the way in and out, so a
 * caller that mutates what it got back cannot change what is stored (Redis gives the same
 * guarantee).
 */
import { systemClock, type Clock } from '../clock.ts'
import type { IssuedAccessToken, RefreshFamily, RefreshTokenRecord, RefreshTokenStore, RotateResult } from './types.ts'

interface StoredToken {
  record: RefreshTokenRecord
  /** Set on rotation; the token is kept until it expires so a second use is seen as reuse. */
  usedAt?: number
}

interface StoredFamily {
  family: RefreshFamily
  isRevoked: boolean
  tokens: Map<string, StoredToken>
  /** jti -> expiresAt */
  accessTokens: Map<string, number>
}

/** How often, at most, a store walks all its entries to drop expired state. */
const SWEEP_INTERVAL_MS = 60_000

/**
 * A Map whose entries end at a time of their own. An ended entry is invisible at once to
 * `get` (which compares with the caller's `now`) and dropped lazily: when read, and by a sweep
 * of the whole Map at most once a minute on `set`, using `clock`.
 */
export class ExpiringMap<V> {
  readonly #entries = new Map<string, { value: V, until: number }>()
  readonly #clock: Clock
  #lastSweep = -Infinity

  constructor (clock: Clock) {
    this.#clock = clock
  }

  /** The value while `now` is before its end. */
  get (key: string, now: number): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until <= now) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  /** The value even when it has ended but not been dropped yet, like a key Redis has not evicted. */
  peek (key: string): V | undefined {
    return this.#entries.get(key)?.value
  }

  /** Stores (or replaces) `value` until `until`. */
  set (key: string, value: V, until: number): void {
    const now = this.#clock.now()
    if (now - this.#lastSweep >= SWEEP_INTERVAL_MS) {
      this.#lastSweep = now
      for (const [k, entry] of this.#entries) {
        if (entry.until <= now) this.#entries.delete(k)
      }
    }
    this.#entries.set(key, { value, until })
  }

  /** Removes the entry and returns its value, ended or not. */
  take (key: string): V | undefined {
    const entry = this.#entries.get(key)
    this.#entries.delete(key)
    return entry?.value
  }
}

/**
 * Refresh token families in Maps. Expired tokens and families are invisible at once (every
 * read compares with the caller's `now`) and swept lazily: the family being touched on every
 * call, the whole Map at most once a minute on `create`, using `clock`.
 */
export class MemoryRefreshTokenStore implements RefreshTokenStore {
  readonly #families = new Map<string, StoredFamily>()
  readonly #clock: Clock
  #lastSweep = -Infinity

  constructor (clock: Clock = systemClock) {
    this.#clock = clock
  }

  async create (family: RefreshFamily, first: RefreshTokenRecord, accessToken: IssuedAccessToken): Promise<void> {
    assertSameFamily(family.id, first)
    this.#sweepAll(this.#clock.now())
    this.#families.set(family.id, {
      family: structuredClone(family),
      isRevoked: false,
      tokens: new Map([[first.hash, { record: { ...first } }]]),
      accessTokens: new Map([[accessToken.jti, accessToken.expiresAt]])
    })
  }

  async rotate (familyId: string, presentedHash: string, next: RefreshTokenRecord, accessToken: IssuedAccessToken, now: number): Promise<RotateResult> {
    assertSameFamily(familyId, next)
    const stored = this.#live(familyId, now)
    if (stored === undefined || stored.isRevoked) return { status: 'invalid' }
    const presented = stored.tokens.get(presentedHash)
    if (presented === undefined) return { status: 'invalid' }
    if (presented.usedAt !== undefined) {
      // RFC 9700 4.14.2: a used refresh token came back, so one of its two holders is an
      // attacker. Revoke the whole family and every access token issued from it.
      stored.isRevoked = true
      return { status: 'reused', family: structuredClone(stored.family), accessTokens: unexpired(stored, now) }
    }
    presented.usedAt = now
    stored.tokens.set(next.hash, { record: { ...next } })
    stored.accessTokens.set(accessToken.jti, accessToken.expiresAt)
    return { status: 'rotated', family: structuredClone(stored.family) }
  }

  async find (familyId: string, hash: string, now: number): Promise<{ family: RefreshFamily, token: RefreshTokenRecord } | null> {
    const stored = this.#live(familyId, now)
    if (stored === undefined || stored.isRevoked) return null
    const token = stored.tokens.get(hash)
    if (token === undefined || token.usedAt !== undefined) return null
    return { family: structuredClone(stored.family), token: { ...token.record } }
  }

  async revokeFamily (familyId: string, now: number): Promise<{ family: RefreshFamily, accessTokens: IssuedAccessToken[] } | null> {
    const stored = this.#live(familyId, now)
    if (stored === undefined) return null
    stored.isRevoked = true
    return { family: structuredClone(stored.family), accessTokens: unexpired(stored, now) }
  }

  /** The family when it has not expired, with its expired tokens and access tokens dropped. */
  #live (familyId: string, now: number): StoredFamily | undefined {
    const stored = this.#families.get(familyId)
    if (stored === undefined) return undefined
    if (!sweep(stored, now)) {
      this.#families.delete(familyId)
      return undefined
    }
    return stored
  }

  #sweepAll (now: number): void {
    if (now - this.#lastSweep < SWEEP_INTERVAL_MS) return
    this.#lastSweep = now
    for (const [id, stored] of this.#families) {
      if (!sweep(stored, now)) this.#families.delete(id)
    }
  }
}

/** Drops expired entries of one family. False when the family itself has expired. */
function sweep (stored: StoredFamily, now: number): boolean {
  if (stored.family.expiresAt <= now) return false
  for (const [hash, token] of stored.tokens) {
    if (token.record.expiresAt <= now) stored.tokens.delete(hash)
  }
  for (const [jti, expiresAt] of stored.accessTokens) {
    if (expiresAt <= now) stored.accessTokens.delete(jti)
  }
  return true
}

function unexpired (stored: StoredFamily, now: number): IssuedAccessToken[] {
  return [...stored.accessTokens]
    .filter(([, expiresAt]) => expiresAt > now)
    .map(([jti, expiresAt]) => ({ jti, expiresAt }))
}

/** A token filed under another family would be unreachable; that is a caller bug. */
function assertSameFamily (familyId: string, token: RefreshTokenRecord): void {
  if (familyId === '' || token.familyId !== familyId) {
    throw new TypeError(`refresh token belongs to family "${token.familyId}", not "${familyId}"`)
  }
}
