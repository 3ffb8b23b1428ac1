/**
 * The SETs of one stream between delivery and answer: each is verified and applied in order,
 * then waits to be acknowledged (or reported in `setErrs`, RFC 8936 2.4.4) by the next poll.
 * Only what the list has taken is acknowledged; a SET that cannot be handled yet is left
 * unanswered, so the transmitter delivers it again.
 */
import type { KeySet } from '../key-set.ts'
import { applyEvent, clip, type ApplyContext } from './apply.ts'
import type { SignalLog } from './options.ts'
import type { SetVerifier } from './set-verifier.ts'
import type { SetError } from './wire.ts'

/** The counters this module moves (the receiver's stats). */
export interface DeliveryCounters {
  applied: number
  ignored: number
  refused: number
}

/** What the next poll carries. */
export interface Answers {
  ack: string[]
  setErrs: Map<string, SetError>
}

const describe = (err: unknown): string => err instanceof Error ? err.message : String(err)

export class Deliveries {
  readonly #verifier: SetVerifier
  readonly #counters: DeliveryCounters
  readonly #log: SignalLog
  readonly #ack = new Set<string>()
  readonly #errs = new Map<string, SetError>()
  /** jti -> the key set's fetch count when its unknown kid was first seen. */
  readonly #unknownKid = new Map<string, number>()

  constructor (verifier: SetVerifier, counters: DeliveryCounters, log: SignalLog) {
    this.#verifier = verifier
    this.#counters = counters
    this.#log = log
  }

  /** The answers owed so far (a copy: they stay owed until {@link answered}). */
  pending (): Answers {
    return { ack: [...this.#ack], setErrs: new Map(this.#errs) }
  }

  /** The poll that carried `answers` was answered: they are done. */
  answered (answers: Answers): void {
    for (const jti of answers.ack) this.#ack.delete(jti)
    for (const jti of answers.setErrs.keys()) this.#errs.delete(jti)
  }

  /** The stream is gone: nothing is owed to the next one. */
  clear (): void {
    this.#ack.clear()
    this.#errs.clear()
    this.#unknownKid.clear()
  }

  /**
   * Verifies and applies each SET in order, stopping early when `signal` aborts. Returns how
   * many must wait for a later delivery (keys unavailable, an unknown kid inside the JWKS
   * cooldown, the list refusing the entry).
   */
  async handle (sets: Array<[string, unknown]>, audience: string | string[], keys: KeySet, context: ApplyContext, signal: AbortSignal): Promise<number> {
    let deferred = 0
    for (const [jti, compact] of sets) {
      if (signal.aborted) return deferred
      // Handled already; the answer goes with the next poll.
      if (this.#ack.has(jti) || this.#errs.has(jti)) continue
      const verdict = await this.#verifier.verify(compact, jti, audience, keys)
      if (verdict.kind === 'refused') {
        this.#refuse(jti, verdict.error, context.transmitter)
      } else if (verdict.kind === 'defer') {
        const firstSeen = this.#unknownKid.get(jti)
        // An unknown kid is final once the JWKS was fetched after the SET was first seen.
        if (verdict.reason === 'unknown_key' && (verdict.fetched || (firstSeen !== undefined && keys.fetches > firstSeen))) {
          this.#refuse(jti, { err: 'invalid_key', description: 'the SET is signed with an unknown key' }, context.transmitter)
        } else {
          if (verdict.reason === 'unknown_key' && firstSeen === undefined) this.#unknownKid.set(jti, keys.fetches)
          deferred++
        }
      } else if (!await this.#apply(jti, verdict.value, context)) {
        deferred++
      }
    }
    if (this.#unknownKid.size > 1000) this.#unknownKid.clear()
    return deferred
  }

  /** Applies one verified event; false when the list refused it (to be delivered again). */
  async #apply (jti: string, event: Parameters<typeof applyEvent>[0], context: ApplyContext): Promise<boolean> {
    try {
      const outcome = await applyEvent(event, context)
      if (typeof outcome === 'object') {
        this.#refuse(jti, outcome.refused, context.transmitter)
      } else {
        this.#counters[outcome]++
        this.#ack.add(jti)
      }
      return true
    } catch (err) {
      this.#log.warn({ transmitter: context.transmitter, jti: clip(jti), err: describe(err) }, 'shared signals: the revocation list refused the entry; the SET will be applied again')
      return false
    }
  }

  /** Reported in the next poll's setErrs, which also acknowledges it. Logged here, once, without the SET. */
  #refuse (jti: string, error: SetError, transmitter: string): void {
    this.#unknownKid.delete(jti)
    this.#errs.set(jti, error)
    this.#counters.refused++
    this.#log.warn({ transmitter, jti: clip(jti), err: error.err, description: error.description }, 'shared signals: SET refused')
  }
}
