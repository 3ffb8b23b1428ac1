/**
 * The write script and the pub/sub message codec of the Redis revocation list. The layout they
 * implement is documented at the top of `redis.ts`.
 *
 * Scripts take `now` from the caller's clock (never Redis `TIME`) so that every writer and
 * reader agrees on what "expired" means, and so tests can move time.
 */
import type { RevocationKind } from './mirror.ts'

/**
 * KEYS[1] = jti set, KEYS[2] = sid set (same hash tag, so one Cluster slot).
 * ARGV[1] = now ms, ARGV[2] = expiry ms, ARGV[3] = jti or '', ARGV[4] = sid or ''.
 *
 * ZADD GT: a second revoke of the same id can extend its expiry, never shorten it.
 * Expired members are dropped on every write, so a set holds live entries plus at most the
 * ones that expired since the last revoke. The key TTL is raised to cover the new member, so
 * every key always has a TTL and the set disappears once everything in it has expired.
 */
export const REVOKE_SCRIPT = `
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
for i = 1, 2 do
  local id = ARGV[i + 2]
  if id ~= '' then
    local key = KEYS[i]
    redis.call('ZADD', key, 'GT', ARGV[2], id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
    if redis.call('PTTL', key) < exp - now then
      redis.call('PEXPIRE', key, exp - now)
    end
  end
end
return 0
`

/** A revocation as carried on the channel. */
export interface RevocationMessage {
  kind: RevocationKind
  id: string
  expiresAt: number
}

/** `{"t":"jti","id":"...","exp":1700000000000}`: short field names, one message per id. */
export function encodeMessage (message: RevocationMessage): string {
  return JSON.stringify({ t: message.kind, id: message.id, exp: message.expiresAt })
}

/** Parses a channel message; `null` for anything malformed (it is logged, never thrown). */
export function decodeMessage (raw: string): RevocationMessage | null {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const { t, id, exp } = value as Record<string, unknown>
  if ((t !== 'jti' && t !== 'sid') || typeof id !== 'string' || id === '') return null
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return null
  return { kind: t, id, expiresAt: exp }
}
