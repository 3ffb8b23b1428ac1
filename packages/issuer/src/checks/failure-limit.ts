/**
 * Locks what failed too often, as Keycloak's brute-force detection does, in fixed windows:
 * only failures are counted (in `FailureCounter`); at its max a username, client or address is
 * refused, right credentials included, until its window ends. Used by sign-in (sign-in.ts) and
 * client authentication (client-auth.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../clock.ts'
import { OAuthError } from '../errors.ts'
import type { FailureCounter, FailureKind } from '../stores/types.ts'

/** One thing a failure is counted under, and how many failures lock it. */
export interface Counted {
  kind: FailureKind
  id: string
  max: number
}

export interface Lock {
  kind: FailureKind
  retryAfterSeconds: number
}

/**
 * A lock at the token, introspection, revocation or session-end endpoint: 429 with the RFC 6749
 * 5.2 body `temporarily_unavailable` (the code the token endpoint's rate limit answers too, and
 * the one RFC 6749 4.1.2.1 gives for "try again later"; `invalid_grant` or `invalid_client`
 * would tell the client its credentials are wrong) and `Retry-After` (RFC 9110 10.2.3).
 */
export class TooManyFailures extends OAuthError {
  readonly retryAfterSeconds: number

  constructor (description: string, retryAfterSeconds: number) {
    super('temporarily_unavailable', 429, description, false)
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** onError hook: puts a lock's `Retry-After` on the reply before the error handler sends it. */
export async function retryAfterOnLock (_request: FastifyRequest, reply: FastifyReply, error: Error): Promise<void> {
  if (error instanceof TooManyFailures) reply.header('retry-after', String(error.retryAfterSeconds))
}

export class FailureLimit {
  readonly #store: FailureCounter
  readonly #clock: Clock
  readonly #windowMs: number

  constructor (store: FailureCounter, clock: Clock, windowSeconds: number) {
    this.#store = store
    this.#clock = clock
    this.#windowMs = windowSeconds * 1000
  }

  /**
   * The lock that lasts longest among `counted` at their max (null when none is), and which
   * of them have failures in their window (so a success clears only what needs clearing).
   */
  async check (counted: Counted[]): Promise<{ lock: Lock | null, failing: Counted[] }> {
    const now = this.#clock.now()
    const counts = await Promise.all(counted.map(async ({ kind, id }) => await this.#store.get(kind, id, now)))
    let lock: Lock | null = null
    const failing: Counted[] = []
    for (const [i, c] of counted.entries()) {
      const count = counts[i]
      if (count === null || count === undefined) continue
      failing.push(c)
      const retryAfterSeconds = Math.max(1, Math.ceil((count.resetAt - now) / 1000))
      if (count.count >= c.max && (lock === null || retryAfterSeconds > lock.retryAfterSeconds)) lock = { kind: c.kind, retryAfterSeconds }
    }
    return { lock, failing }
  }

  /** Counts one failure under each of `counted`. */
  async fail (counted: Counted[]): Promise<void> {
    const now = this.#clock.now()
    await Promise.all(counted.map(async ({ kind, id }) => await this.#store.add(kind, id, this.#windowMs, now)))
  }

  async clear (counted: Counted[]): Promise<void> {
    await Promise.all(counted.map(async ({ kind, id }) => { await this.#store.clear(kind, id) }))
  }
}
