/**
 * The write script and the pub/sub message codec of the Redis revocation list. The layout they
 * implement is documented at the top of `redis.ts`.
 *
 * Scripts take `now` from the caller's clock (never Redis `TIME`) so that every writer and
 * reader agrees on what "expired" means, and so tests can move time.
 */
import type { RevocationKind } from './mirror.ts'
import type { KeyChange } from './types.ts'

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
    local existed = redis.call('EXISTS', key)
    redis.call('ZADD', key, 'GT', ARGV[2], id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
    -- No TTL on a set that existed: it holds a member scored +inf (persisted by a write-back).
    local ttl = redis.call('PTTL', key)
    if (existed == 0 or ttl >= 0) and ttl < exp - now then
      redis.call('PEXPIRE', key, exp - now)
    end
  end
end
return 0
`

/**
 * KEYS[1] = epoch key, KEYS[2] = run key, KEYS[3] = restoring key. ARGV[1] = a new random id,
 * for when the epoch is missing.
 * Returns { epoch, run_id, age ms, restoring }: the list's epoch (`<random id>.<Redis time ms>`,
 * written once, with no TTL, so it is gone only when Redis lost its data: a restart without
 * persistence, a FLUSHALL, a failover to a replica that never had it), the server's run_id (new
 * on every restart and failover, even when the data was kept: then only the last writes may be
 * missing), how long ago the later of the two began (the run key holds `<run_id>.<ms>` of when
 * an instance first saw this run_id), by Redis' clock, never negative; and 1 while an instance
 * is writing back. Run on the master of the list's slot, so on Cluster all of it describes the
 * node holding the list.
 */
export const EPOCH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1] .. '.' .. now
  redis.call('SET', KEYS[1], epoch)
end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
local seen = redis.call('GET', KEYS[2])
if not seen or string.sub(seen, 1, #run + 1) ~= run .. '.' then
  seen = run .. '.' .. now
  redis.call('SET', KEYS[2], seen)
end
local began = math.max(tonumber(string.match(epoch, '%.(%d+)$') or '') or 0, tonumber(string.match(seen, '%.(%d+)$') or '') or 0)
return { epoch, run, math.max(0, now - began), redis.call('EXISTS', KEYS[3]) }
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
  from: string
}

/** The resync message from instance `from` (which ignores its own). */
export const resyncMessage = (from: string): string => JSON.stringify({ t: 'resync', from })

/** `{"t":"keys","change":"revoked","kid":"..."}`: the issuer's signing keys changed. */
export interface KeysMessage extends KeyChange {
  kind: 'keys'
}

const KEY_CHANGE_NAMES: ReadonlySet<string> = new Set(['published', 'activated', 'retired', 'revoked'])

export function encodeKeyChange (change: KeyChange): string {
  return JSON.stringify({ t: 'keys', change: change.change, kid: change.kid })
}

/** `{"t":"jti","id":"...","exp":1700000000000}`: short field names, one message per id. */
export function encodeMessage (message: RevocationMessage): string {
  return JSON.stringify({ t: message.kind, id: message.id, exp: message.expiresAt })
}

/** Parses a channel message; `null` for anything malformed (it is logged, never thrown). */
export function decodeMessage (raw: string): RevocationMessage | ResyncMessage | KeysMessage | null {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const { t, id, exp, change, kid } = value as Record<string, unknown>
  if (t === 'resync') return { kind: 'resync', from: typeof (value as { from?: unknown }).from === 'string' ? (value as { from: string }).from : '' }
  if (t === 'keys') {
    if (typeof change !== 'string' || !KEY_CHANGE_NAMES.has(change) || typeof kid !== 'string' || kid === '' || kid.length > 200) return null
    return { kind: 'keys', change: change as KeyChange['change'], kid }
  }
  if ((t !== 'jti' && t !== 'sid') || typeof id !== 'string' || id === '') return null
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return null
  return { kind: t, id, expiresAt: exp }
}
