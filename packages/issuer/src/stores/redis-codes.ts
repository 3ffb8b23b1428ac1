/**
 * Authorization codes in Redis, one hash per code: `<keyPrefix>code:{<hash>}`. The key
 * layout is described at the top of redis.ts.
 */
import type { RedisClient } from './redis-connection.ts'
import { CODE_REPLAY_WINDOW_MS } from './policy.ts'
import { execOrThrow, HSET_IF_EXISTS, keyPart, ttl, withScripts, type ScriptClient } from './redis-scripts.ts'
import type { AuthorizationCodeRecord, CodeIssued, CodeStore, ConsumeResult } from './types.ts'

// KEYS: the code. ARGV: now, the replay window (ms).
// A used code answers 'replayed' until `replayUntil`, even after it expired; an unused one
// is 'invalid' from its `expiresAt` on. The first use sets the TTL to `replayUntil`.
const CONSUME = `
local now = tonumber(ARGV[1])
local stored = redis.call('HMGET', KEYS[1], 'data', 'usedAt', 'replayUntil', 'issued')
local data = stored[1]
if not data then return {'invalid'} end
if stored[2] then
  if tonumber(stored[3]) <= now then return {'invalid'} end
  if stored[4] then return {'replayed', data, stored[4]} end
  return {'replayed', data}
end
local expiresAt = cjson.decode(data).expiresAt
if expiresAt <= now then return {'invalid'} end
local replayUntil = math.max(expiresAt, now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'usedAt', ARGV[1], 'replayUntil', string.format('%d', replayUntil))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, replayUntil - now)))
return {'ok', data}
`

const SCRIPTS = {
  gatehouseCodeConsume: { lua: CONSUME, numberOfKeys: 1 },
  gatehouseHsetIfExists: HSET_IF_EXISTS
}

/**
 * `save` takes no `now`: the code's `createdAt` is that moment, so its TTL is
 * `expiresAt - createdAt`, and a code already expired then is not stored at all.
 */
export class RedisCodeStore implements CodeStore {
  readonly #redis: RedisClient
  readonly #scripts: ScriptClient<keyof typeof SCRIPTS>
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix = 'gatehouse:') {
    this.#redis = redis
    this.#scripts = withScripts(redis, SCRIPTS)
    this.#prefix = keyPrefix
  }

  async save (code: AuthorizationCodeRecord): Promise<void> {
    if (code.expiresAt <= code.createdAt) return
    const key = this.#key(code.hash)
    // DEL first: saving replaces, like the memory store; one transaction, one key.
    await execOrThrow(this.#redis.multi()
      .del(key)
      .hset(key, 'data', JSON.stringify(code))
      .pexpire(key, ttl(code.expiresAt, code.createdAt)), 'save code')
  }

  async consume (hash: string, now: number): Promise<ConsumeResult> {
    const [status, data, issued] = await this.#scripts.gatehouseCodeConsume(
      this.#key(hash), String(now), String(CODE_REPLAY_WINDOW_MS)) as [string, string?, string?]
    if (status === 'ok') return { status, code: JSON.parse(data!) as AuthorizationCodeRecord }
    if (status === 'replayed') {
      const replayed: ConsumeResult = { status, code: JSON.parse(data!) as AuthorizationCodeRecord }
      if (issued !== undefined) replayed.issued = JSON.parse(issued) as CodeIssued
      return replayed
    }
    return { status: 'invalid' }
  }

  async recordIssued (hash: string, issued: CodeIssued): Promise<void> {
    // Only into a code still there, keeping its TTL; a late call never recreates it.
    await this.#scripts.gatehouseHsetIfExists(this.#key(hash), 'issued', JSON.stringify(issued))
  }

  #key (hash: string): string {
    return `${this.#prefix}code:{${keyPart(hash)}}`
  }
}
