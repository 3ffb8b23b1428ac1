/**
 * A bounded map from a token string to what was learnt about it, oldest out first. The order
 * of insertion is kept in a ring of keys beside the Map, so eviction is O(1) and a hit touches
 * nothing. (Not the Map's own order: V8 leaves a deleted entry as a hole until it rehashes, so
 * `keys().next()` walks over every entry evicted since, thousands per eviction once full: 5 µs
 * of each new token's check in the gateway's benchmark.)
 *
 * The Map key is the token's last {@link KEY_CHARS} characters (the end of its signature,
 * unpredictable), and every hit compares the whole token, so an entry answers for exactly one
 * token string. Hashing a fresh 800-character string costs about 1 µs; its tail, a tenth of that.
 */
const KEY_CHARS = 32

interface Entry<T> {
  token: string
  value: T
}

export class TokenCache<T> {
  readonly #entries = new Map<string, Entry<T>>()
  readonly #capacity: number
  /**
   * The keys in the order they came; `#next` is the slot reused next, the oldest. The Map's
   * keys are always among the ring's (so it never holds more than the capacity): reusing a
   * slot evicts whatever key is in it. A key deleted early leaves its slot stale until then.
   */
  readonly #ring: Array<string | undefined>
  #next = 0

  constructor (capacity: number) {
    this.#capacity = capacity
    this.#ring = new Array<string | undefined>(capacity)
  }

  get (token: string): T | undefined {
    const entry = this.#entries.get(token.slice(-KEY_CHARS))
    return entry !== undefined && entry.token === token ? entry.value : undefined
  }

  /** Adds an entry, evicting the oldest when full. A capacity of 0 keeps nothing. */
  set (token: string, value: T): void {
    if (this.#capacity === 0) return
    const key = token.slice(-KEY_CHARS)
    const entry = this.#entries.get(key)
    if (entry !== undefined) {
      // Same tail (the same token again, or one sharing its last characters): replaced in place.
      entry.token = token
      entry.value = value
      return
    }
    const oldest = this.#ring[this.#next]
    if (oldest !== undefined) this.#entries.delete(oldest)
    this.#ring[this.#next] = key
    this.#next = (this.#next + 1) % this.#capacity
    this.#entries.set(key, { token, value })
  }

  /** Removes the entry for `token` (and only for that token). */
  delete (token: string): void {
    const key = token.slice(-KEY_CHARS)
    if (this.#entries.get(key)?.token === token) this.#entries.delete(key)
  }

  clear (): void {
    this.#entries.clear()
    this.#ring.fill(undefined)
    this.#next = 0
  }

  get size (): number {
    return this.#entries.size
  }
}
