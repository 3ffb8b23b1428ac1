/**
 * Authorization codes in process memory (the embedded default). Same behaviour as
 * `RedisCodeStore`; the contract suite runs against both.
 */
import { systemClock, type Clock } from '../clock.ts'
import { ExpiringMap } from './memory.ts'
import { CODE_REPLAY_WINDOW_MS } from './policy.ts'
import type { AuthorizationCodeRecord, CodeIssued, CodeStore, ConsumeResult } from './types.ts'

interface StoredCode {
  code: AuthorizationCodeRecord
  usedAt?: number
  issued?: CodeIssued
}

/**
 * Codes in a Map, by hash. `save` takes no `now`: the code's `createdAt` is that moment, and a
 * code already expired then is not stored (Redis cannot hold it with a TTL of 0 either).
 */
export class MemoryCodeStore implements CodeStore {
  readonly #codes: ExpiringMap<StoredCode>

  constructor (clock: Clock = systemClock) {
    this.#codes = new ExpiringMap(clock)
  }

  async save (code: AuthorizationCodeRecord): Promise<void> {
    if (code.expiresAt <= code.createdAt) return
    this.#codes.set(code.hash, { code: structuredClone(code) }, code.expiresAt)
  }

  async consume (hash: string, now: number): Promise<ConsumeResult> {
    // No await in here: the check and the mark are one turn of the event loop.
    const stored = this.#codes.get(hash, now)
    if (stored === undefined) return { status: 'invalid' }
    if (stored.usedAt !== undefined) {
      const replayed: ConsumeResult = { status: 'replayed', code: structuredClone(stored.code) }
      if (stored.issued !== undefined) replayed.issued = structuredClone(stored.issued)
      return replayed
    }
    if (stored.code.expiresAt <= now) return { status: 'invalid' }
    stored.usedAt = now
    this.#codes.set(hash, stored, Math.max(stored.code.expiresAt, now + CODE_REPLAY_WINDOW_MS))
    return { status: 'ok', code: structuredClone(stored.code) }
  }

  async recordIssued (hash: string, issued: CodeIssued): Promise<void> {
    const stored = this.#codes.peek(hash)
    if (stored !== undefined) stored.issued = structuredClone(issued)
  }
}
