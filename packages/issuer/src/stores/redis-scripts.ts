/**
 * What the Redis stores share: script registration, transactions, TTLs and key parts.
 * The key layout itself is described at the top of `redis.ts`.
 */
import type { ChainableCommander } from 'ioredis'
import type { RedisClient } from './redis-connection.ts'

export interface ScriptDefinition {
  lua: string
  numberOfKeys: number
}

export type ScriptClient<Name extends string> = Record<Name, (...keysAndArgs: string[]) => Promise<unknown>>

/**
 * Registers `scripts` on the client once (names are global per client: prefix them
 * `gatehouse`). ioredis then sends EVALSHA, falls back to EVAL after a restart flushed the
 * script cache, and routes by the first key on Cluster.
 */
export function withScripts<Scripts extends Record<string, ScriptDefinition>> (redis: RedisClient, scripts: Scripts): ScriptClient<keyof Scripts & string> {
  const client = redis as unknown as Record<string, unknown>
  for (const [name, definition] of Object.entries(scripts)) {
    if (typeof client[name] !== 'function') redis.defineCommand(name, definition)
  }
  return client as unknown as ScriptClient<keyof Scripts & string>
}

/**
 * KEYS: one hash. ARGV: field, value pairs. Sets them only when the hash exists, so a late
 * write never recreates an expired or deleted key without its TTL; HSET keeps the TTL.
 */
export const HSET_IF_EXISTS: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`
}

/** Runs a MULTI and throws the first command error (ioredis only reports them per command). */
export async function execOrThrow (multi: ChainableCommander, what: string): Promise<void> {
  const results = await multi.exec()
  const failed = results?.find(([err]) => err !== null)
  if (results === null || failed !== undefined) throw failed?.[0] ?? new Error(`${what}: transaction aborted`)
}

/** Milliseconds from `now` to `expiresAt`; at least 1, as PX/PEXPIRE reject 0. */
export function ttl (expiresAt: number, now: number): number {
  return Math.max(1, Math.floor(expiresAt - now))
}

/**
 * A caller-supplied id (subject, client id, sid) as a key part. Letters, digits and `-._~@`
 * stay as they are; every other UTF-16 code unit becomes `%` and four hex digits. So `{` and
 * `}` (Cluster hash tags), `:` (the separator) and `%` never appear raw, distinct ids always
 * give distinct keys (lone surrogates included), and common ids stay readable in redis-cli.
 */
export function keyPart (id: string): string {
  return id.replace(/[^A-Za-z0-9\-._~@]/g, (unit) => '%' + unit.charCodeAt(0).toString(16).padStart(4, '0'))
}
