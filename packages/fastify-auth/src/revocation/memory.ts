import { RevocationMirror, revocationTargets, systemClock } from './mirror.ts'
import type { Clock, RevocationEntry, RevocationList, RevocationLog } from './types.ts'

/** Options for {@link MemoryRevocationList}. */
export interface MemoryRevocationListOptions {
  /** Time source, epoch ms. Default `Date.now`. */
  clock?: Clock
  /** How often expired entries are dropped. Default 60 000 ms. */
  sweepMs?: number
  /** When given, warns once at construction that the list is per-process. */
  log?: RevocationLog
}

/**
 * The embedded default: one process, no Redis. Revocations written here are seen only by this
 * process, so it fits the single-instance demo, not a fleet of gateways.
 */
export class MemoryRevocationList implements RevocationList {
  readonly #clock: Clock
  readonly #mirror: RevocationMirror

  constructor (options: MemoryRevocationListOptions = {}) {
    this.#clock = options.clock ?? systemClock
    this.#mirror = new RevocationMirror(this.#clock)
    this.#mirror.startSweeping(options.sweepMs ?? 60_000)
    options.log?.warn({}, 'revocation list is in memory: revocations are not shared with other processes')
  }

  async revoke (entry: RevocationEntry, ttlSeconds: number): Promise<void> {
    const expiresAt = Math.ceil(this.#clock.now() + ttlSeconds * 1000)
    for (const { kind, id } of revocationTargets(entry, ttlSeconds)) this.#mirror.add(kind, id, expiresAt)
  }

  isRevoked (claims: { jti?: string, sid?: string }): boolean {
    return this.#mirror.isRevoked(claims)
  }

  /** Always 0: this list is its own source. */
  get staleness (): number {
    return 0
  }

  get size (): number {
    return this.#mirror.size
  }

  async ready (): Promise<void> {}

  /** Stops the sweep timer. */
  async close (): Promise<void> {
    this.#mirror.stopSweeping()
  }
}
