/**
 * The in-process copy of the revocation list, shared by the memory list and the Redis mirror.
 * Internal: not exported from the package.
 */
import type { Clock, RevocationEntry } from './types.ts'

export type RevocationKind = 'jti' | 'sid'

export const systemClock: Clock = { now: () => Date.now() }

/** One id to write, with its kind. */
export interface RevocationTarget {
  kind: RevocationKind
  id: string
}

/**
 * Checks `revoke()` arguments and returns what to write, or `[]` when `ttlSeconds <= 0`
 * (the token is already expired: nothing is left to revoke).
 */
export function revocationTargets (entry: RevocationEntry, ttlSeconds: number): RevocationTarget[] {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds)) {
    throw new RangeError('ttlSeconds must be a finite number')
  }
  const targets: RevocationTarget[] = []
  if (typeof entry.jti === 'string' && entry.jti !== '') targets.push({ kind: 'jti', id: entry.jti })
  if (typeof entry.sid === 'string' && entry.sid !== '') targets.push({ kind: 'sid', id: entry.sid })
  if (targets.length === 0) throw new TypeError('a revocation needs a jti or a sid')
  return ttlSeconds > 0 ? targets : []
}

/** Two maps of id -> expiry. A Map entry per id and no per-entry object keeps 1M entries near 85 MB. */
export class RevocationMirror {
  readonly #clock: Clock
  // Expiries are kept as ms offsets from a construction-time instant: offsets below 2^30 ms
  // (12 days) are V8 small integers, while absolute epoch ms would each be a 16-byte heap number.
  readonly #base: number
  readonly #maps: Record<RevocationKind, Map<string, number>> = { jti: new Map(), sid: new Map() }
  #sweeper: NodeJS.Timeout | undefined

  constructor (clock: Clock) {
    this.#clock = clock
    this.#base = Math.floor(clock.now())
  }

  /** Records `id` as revoked until `expiresAt` (epoch ms). Never shortens an existing entry. */
  add (kind: RevocationKind, id: string, expiresAt: number): void {
    const offset = expiresAt - this.#base
    if (!(offset > this.#clock.now() - this.#base)) return // already expired (or NaN)
    const map = this.#maps[kind]
    const current = map.get(id)
    if (current === undefined || current < offset) map.set(id, offset)
  }

  /** True when the jti or the sid has a live entry. Expired entries never count, swept or not. */
  isRevoked (claims: { jti?: string | undefined, sid?: string | undefined }): boolean {
    const now = this.#clock.now() - this.#base
    if (claims.jti !== undefined && (this.#maps.jti.get(claims.jti) ?? -Infinity) > now) return true
    if (claims.sid !== undefined && (this.#maps.sid.get(claims.sid) ?? -Infinity) > now) return true
    return false
  }

  /** Every live entry of one kind with its expiry (epoch ms; Infinity for good): for a write-back. */
  * entries (kind: RevocationKind): IterableIterator<[string, number]> {
    const now = this.#clock.now() - this.#base
    for (const [id, offset] of this.#maps[kind]) if (offset > now) yield [id, offset + this.#base]
  }

  /** Live entries. Sweeps first, so it costs a pass over the maps: not for the request path. */
  get size (): number {
    this.sweep()
    return this.#maps.jti.size + this.#maps.sid.size
  }

  /** Drops expired entries. Deleting while iterating a Map is safe in JavaScript. */
  sweep (): void {
    const now = this.#clock.now() - this.#base
    for (const map of Object.values(this.#maps)) {
      for (const [id, offset] of map) if (offset <= now) map.delete(id)
    }
  }

  /** Sweeps every `intervalMs` on an unref'd timer, so it never keeps the process alive. */
  startSweeping (intervalMs: number): void {
    if (this.#sweeper !== undefined) return
    this.#sweeper = setInterval(() => this.sweep(), intervalMs)
    this.#sweeper.unref()
  }

  stopSweeping (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }
}
