/**
 * Failure counts in process memory (the embedded default). Same behaviour as
 * `RedisFailureCounter`; the contract suite runs against both.
 */
import { systemClock, type Clock } from '../clock.ts'
import { ExpiringMap } from './memory.ts'
import type { FailureCount, FailureCounter, FailureKind } from './types.ts'

/** Counts in an `ExpiringMap`, each entry ending with its window. */
export class MemoryFailureCounter implements FailureCounter {
  readonly #counts: ExpiringMap<FailureCount>

  constructor (clock: Clock = systemClock) {
    this.#counts = new ExpiringMap(clock)
  }

  async add (kind: FailureKind, id: string, windowMs: number, now: number): Promise<FailureCount> {
    // No await between the read and the write: one turn of the event loop, so atomic.
    const current = this.#counts.get(key(kind, id), now)
    const next = current === undefined
      ? { count: 1, resetAt: now + windowMs }
      : { count: current.count + 1, resetAt: current.resetAt }
    this.#counts.set(key(kind, id), next, next.resetAt)
    return { ...next }
  }

  async get (kind: FailureKind, id: string, now: number): Promise<FailureCount | null> {
    const current = this.#counts.get(key(kind, id), now)
    return current === undefined ? null : { ...current }
  }

  async clear (kind: FailureKind, id: string): Promise<void> {
    this.#counts.take(key(kind, id))
  }
}

/** A kind never contains a space, so no id can make one kind's key look like another's. */
function key (kind: FailureKind, id: string): string {
  return `${kind} ${id}`
}
