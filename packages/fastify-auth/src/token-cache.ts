/**
 * A bounded map from a token string to what was learnt about it. A Map keeps insertion order,
 * so the oldest entry is the first key: eviction is O(1) and a hit touches nothing.
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

  constructor (capacity: number) {
    this.#capacity = capacity
  }

  get (token: string): T | undefined {
    const entry = this.#entries.get(token.slice(-KEY_CHARS))
    return entry !== undefined && entry.token === token ? entry.value : undefined
  }

  /** Adds an entry, evicting the oldest when full. A capacity of 0 keeps nothing. */
  set (token: string, value: T): void {
    if (this.#capacity === 0) return
    const key = token.slice(-KEY_CHARS)
    if (this.#entries.size >= this.#capacity && !this.#entries.has(key)) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
    this.#entries.set(key, { token, value })
  }

  /** Removes the entry for `token` (and only for that token). */
  delete (token: string): void {
    const key = token.slice(-KEY_CHARS)
    if (this.#entries.get(key)?.token === token) this.#entries.delete(key)
  }

  clear (): void {
    this.#entries.clear()
  }

  get size (): number {
    return this.#entries.size
  }
}
