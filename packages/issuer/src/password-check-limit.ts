/**
 * Password checks (scrypt) at once, bounded. Each costs tens of milliseconds of a thread-pool
 * thread and ~32 MiB, so unbounded guesses would take every core from the other endpoints.
 * At most `maxActive` run, at most `maxQueued` wait (first in, first out); more are refused
 * at once with a 503 to retry: failing fast beats a queue that only grows.
 */
import { OAuthError } from './errors.ts'

/** 503 `temporarily_unavailable`: the error handler adds `Retry-After: 1`. */
export class PasswordChecksBusy extends OAuthError {
  constructor () {
    super('temporarily_unavailable', 503, 'too many password checks at once, try again shortly', false)
  }
}

export class PasswordCheckLimit {
  readonly maxActive: number
  readonly maxQueued: number
  #active = 0
  readonly #waiting: Array<() => void> = []

  constructor (maxActive: number, maxQueued: number) {
    if (!Number.isInteger(maxActive) || maxActive < 1) throw new TypeError(`maxActive must be a positive integer, got ${maxActive}`)
    if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new TypeError(`maxQueued must be a non-negative integer, got ${maxQueued}`)
    this.maxActive = maxActive
    this.maxQueued = maxQueued
  }

  /** Checks running now. */
  get active (): number {
    return this.#active
  }

  /** Checks waiting for a slot. */
  get queued (): number {
    return this.#waiting.length
  }

  /** Runs `task` in a slot, after waiting for one if needed; throws `PasswordChecksBusy` when the queue is full. */
  async run<T> (task: () => Promise<T>): Promise<T> {
    if (this.#active < this.maxActive) {
      this.#active++
    } else {
      if (this.#waiting.length >= this.maxQueued) throw new PasswordChecksBusy()
      // The slot is handed over by the task that ends: `#active` stays as it is.
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    }
    try {
      return await task()
    } finally {
      const next = this.#waiting.shift()
      if (next === undefined) this.#active--
      else next()
    }
  }
}
