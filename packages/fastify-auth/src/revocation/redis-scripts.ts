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

/**
 * KEYS[1] = epoch key. ARGV[1] = a new random id, for when the key is missing.
 * Returns { epoch, run_id, age ms }: the list's epoch (`<random id>.<Redis time ms>`, written
 * once, with no TTL, so it is gone only when Redis lost its data: a restart without
 * persistence, a FLUSHALL, a failover to a replica that never had it), the server's run_id (new
 * on every restart and failover, even when the data was kept: then only the last writes may be
 * missing) and how long ago the epoch began, by Redis' clock (no skew between instances). Run
 * on the master of the list's slot, so on Cluster all three describe the node holding the list.
 */
export const EPOCH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1] .. '.' .. now
  redis.call('SET', KEYS[1], epoch)
end
local info = redis.call('INFO', 'server')
local began = tonumber(string.match(epoch, '%.(%d+)$') or '') or 0
return { epoch, string.match(info, 'run_id:(%x+)') or '', now - began }
`

/**
 * The write-back of a mirror into a set Redis may have lost, one batch per call.
 * KEYS[1] = jti or sid set. ARGV[1] = now ms, then pairs: id, expiry ms (or '+inf').
 *
 * ZADD GT CH, as a revoke: idempotent, never shortens an entry, and counts only what Redis did
 * not hold already, so many instances writing back the same entries at once do no harm. The
 * key TTL is raised to cover the set's highest score; a set whose top member is scored +inf
 * keeps no TTL.
 * Returns how many entries were new or extended.
 */
export const WRITE_BACK_SCRIPT = `
local now = tonumber(ARGV[1])
local changed = 0
for i = 2, #ARGV - 1, 2 do
  local exp = ARGV[i + 1]
  local n = tonumber(exp)
  if exp == '+inf' or (n and n > now) then
    changed = changed + redis.call('ZADD', KEYS[1], 'GT', 'CH', exp, ARGV[i])
  end
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then
  local far = tonumber(top[2])
  if not far or far == math.huge then
    redis.call('PERSIST', KEYS[1])
  elseif far > now and redis.call('PTTL', KEYS[1]) < far - now then
    redis.call('PEXPIRE', KEYS[1], far - now)
  end
end
return changed
`

/** A revocation as carried on the channel. */
export interface RevocationMessage {
  kind: RevocationKind
  id: string
  expiresAt: number
}

/** `{"t":"resync"}`: an instance wrote entries back into a list Redis had lost; copy it again. */
export interface ResyncMessage {
  kind: 'resync'
}

export const RESYNC_MESSAGE = '{"t":"resync"}'

/** `{"t":"jti","id":"...","exp":1700000000000}`: short field names, one message per id. */
export function encodeMessage (message: RevocationMessage): string {
  return JSON.stringify({ t: message.kind, id: message.id, exp: message.expiresAt })
}

/** Parses a channel message; `null` for anything malformed (it is logged, never thrown). */
export function decodeMessage (raw: string): RevocationMessage | ResyncMessage | null {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const { t, id, exp } = value as Record<string, unknown>
  if (t === 'resync') return { kind: 'resync' }
  if ((t !== 'jti' && t !== 'sid') || typeof id !== 'string' || id === '') return null
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return null
  return { kind: t, id, expiresAt: exp }
}
