/**
 * Failure counts in Redis, one hash per counted thing:
 * `<keyPrefix>fail:<kind>:{<id>}` -> `count`, `resetAt`. The key layout is described at the
 * top of redis.ts.
 */
import type { RedisClient } from './redis-connection.ts'
import { keyPart, withScripts, type ScriptClient } from './redis-scripts.ts'
import type { FailureCount, FailureCounter, FailureKind } from './types.ts'

// KEYS: the counter. ARGV: now, windowMs.
// The window is the caller's clock (`resetAt` compared with `now`), as everywhere in the
// stores; the TTL only lets Redis drop the key once the window is over.
const ADD = `
local now = tonumber(ARGV[1])
local resetAt = tonumber(redis.call('HGET', KEYS[1], 'resetAt'))
local count
if resetAt == nil or resetAt <= now then
  resetAt = now + tonumber(ARGV[2])
  count = 1
  redis.call('HSET', KEYS[1], 'count', '1', 'resetAt', string.format('%d', resetAt))
else
  count = redis.call('HINCRBY', KEYS[1], 'count', 1)
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, resetAt - now)))
return {count, string.format('%d', resetAt)}
`

const SCRIPTS = {
  gatehouseFailureAdd: { lua: ADD, numberOfKeys: 1 }
}

export class RedisFailureCounter implements FailureCounter {
  readonly #redis: RedisClient
  readonly #scripts: ScriptClient<keyof typeof SCRIPTS>
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix = 'gatehouse:') {
    this.#redis = redis
    this.#scripts = withScripts(redis, SCRIPTS)
    this.#prefix = keyPrefix
  }

  async add (kind: FailureKind, id: string, windowMs: number, now: number): Promise<FailureCount> {
    const [count, resetAt] = await this.#scripts.gatehouseFailureAdd(this.#key(kind, id), String(now), String(Math.max(1, Math.floor(windowMs)))) as [number, string]
    return { count, resetAt: Number(resetAt) }
  }

  async get (kind: FailureKind, id: string, now: number): Promise<FailureCount | null> {
    const [count, resetAt] = await this.#redis.hmget(this.#key(kind, id), 'count', 'resetAt')
    if (count == null || resetAt == null || Number(resetAt) <= now) return null
    return { count: Number(count), resetAt: Number(resetAt) }
  }

  async clear (kind: FailureKind, id: string): Promise<void> {
    await this.#redis.del(this.#key(kind, id))
  }

  /** The id is the hash tag: each operation touches one key, so any Cluster slot will do. */
  #key (kind: FailureKind, id: string): string {
    return `${this.#prefix}fail:${kind}:{${keyPart(id)}}`
  }
}
