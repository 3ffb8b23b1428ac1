/**
 * The write side of the Redis revocation list, and its queue for writes Redis could not take.
 * The writer's own mirror already honours a queued entry; the queue makes sure every other
 * instance eventually does too, once Redis is back. Internal: used by `redis.ts`.
 */
import type { Cluster, Redis } from 'ioredis'
import { encodeMessage, REVOKE_SCRIPT } from './redis-scripts.ts'
import type { Clock, RevocationLog } from './types.ts'

/** One revoke() call's write: ids ('' when absent) and the absolute expiry, epoch ms. */
export interface RevocationWrite {
  jti: string
  sid: string
  expiresAt: number
}

export interface RevocationWriterOptions {
  redis: Redis | Cluster
  keys: { jti: string, sid: string }
  channel: string
  clock: Clock
  log: RevocationLog | undefined
  /** A write slower than this is queued (the original may still land: writes are idempotent). */
  timeoutMs: number
  /** Most writes queued; past that, the one expiring first is dropped (and logged). */
  limit: number
}

/** Delay before retrying a flush that failed while the connection looked usable. */
const RETRY_MS = 1000

/** A Redis error reply (WRONGTYPE, a script error): retrying the same write cannot help. */
const isReplyError = (err: unknown): boolean => err instanceof Error && err.name === 'ReplyError'

export class RevocationWriter {
  readonly #options: RevocationWriterOptions
  #queue: RevocationWrite[] = []
  #flushing: Promise<void> | undefined
  #retry: NodeJS.Timeout | undefined
  #watchesReady = false
  #closed = false

  constructor (options: RevocationWriterOptions) {
    this.#options = options
  }

  /** Writes queued because Redis could not take them yet. */
  get pending (): number {
    return this.#queue.length
  }

  /**
   * Writes now, or queues when Redis is unreachable or slow (resolving either way). Rejects
   * only on an error reply, which a retry would not fix.
   */
  async submit (write: RevocationWrite): Promise<void> {
    const status = this.#options.redis.status
    // Queued writes go first; a dropped connection would only hold the command until it is back.
    if (this.#queue.length > 0 || status === 'reconnecting' || status === 'close' || status === 'end') {
      this.#enqueue(write, new Error(`Redis connection is ${status}`))
      return
    }
    try {
      await this.#write(write)
    } catch (err) {
      if (isReplyError(err)) throw err
      this.#enqueue(write, err)
    }
  }

  /** Writes every queued entry in order, stopping at the first failure. Coalesced; never rejects. */
  async flush (): Promise<void> {
    if (this.#queue.length === 0) return
    this.#flushing ??= this.#drain().finally(() => { this.#flushing = undefined })
    await this.#flushing
  }

  /** One last flush when connected, then stops; logs what could not be written. */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    this.#options.redis.off('ready', this.#onReady)
    if (this.#queue.length > 0 && this.#options.redis.status === 'ready') await this.flush()
    clearTimeout(this.#retry)
    if (this.#queue.length > 0) {
      this.#options.log?.warn({ count: this.#queue.length }, 'closing with revocations never written to Redis')
    }
  }

  /** The script, then one message per id, within `timeoutMs`. */
  async #write (write: RevocationWrite): Promise<void> {
    const { redis, keys, channel, timeoutMs } = this.#options
    const now = Math.floor(this.#options.clock.now())
    const run = (async () => {
      await redis.eval(REVOKE_SCRIPT, 2, keys.jti, keys.sid, now, write.expiresAt, write.jti, write.sid)
      for (const kind of ['jti', 'sid'] as const) {
        if (write[kind] !== '') await redis.publish(channel, encodeMessage({ kind, id: write[kind], expiresAt: write.expiresAt }))
      }
    })()
    run.catch(() => {}) // after a timeout, its outcome no longer matters
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis write took over ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await Promise.race([run, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  #enqueue (write: RevocationWrite, cause: unknown): void {
    const { log, limit, redis } = this.#options
    if (this.#queue.length === 0) {
      log?.warn({ err: cause }, 'Redis is unreachable: revocations are queued and written when it is back')
    }
    this.#queue.push(write)
    if (this.#queue.length > limit) {
      this.#dropExpired()
      if (this.#queue.length > limit) {
        const soonest = this.#queue.reduce((a, b) => (b.expiresAt < a.expiresAt ? b : a))
        this.#queue.splice(this.#queue.indexOf(soonest), 1)
        log?.warn({ limit }, 'revocation write queue full: dropped the entry expiring first')
      }
    }
    if (!this.#watchesReady && !this.#closed) {
      this.#watchesReady = true
      redis.on('ready', this.#onReady)
    }
    if (redis.status === 'ready') this.#scheduleRetry()
  }

  /** The command connection is back: write what was queued while it was away. */
  readonly #onReady = (): void => {
    this.flush().catch(() => {})
  }

  #scheduleRetry (): void {
    if (this.#retry !== undefined || this.#closed || this.#queue.length === 0) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.flush().catch(() => {})
    }, RETRY_MS)
    this.#retry.unref()
  }

  async #drain (): Promise<void> {
    this.#dropExpired()
    while (this.#queue.length > 0) {
      const write = this.#queue[0] as RevocationWrite
      try {
        await this.#write(write)
      } catch (err) {
        if (!isReplyError(err)) {
          this.#scheduleRetry()
          return
        }
        this.#options.log?.warn({ err, jti: write.jti, sid: write.sid }, 'Redis refused a queued revocation; dropped')
      }
      // By identity: #enqueue may have pruned the queue while the write was in flight.
      const index = this.#queue.indexOf(write)
      if (index >= 0) this.#queue.splice(index, 1)
    }
  }

  #dropExpired (): void {
    const now = this.#options.clock.now()
    this.#queue = this.#queue.filter((write) => write.expiresAt > now)
  }
}
