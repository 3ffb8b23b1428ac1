/**
 * The Lua scripts of the Redis Shared Signals store (redis-signals.ts, where the key layout is
 * described). Every script takes the caller's `now`; all the keys it touches share `{ssf}`.
 */
/** Extends a key's TTL to `ms` unless it is longer already; nothing for a missing key. */
const EXTEND = `
local function extend (key, ms)
  local left = redis.call('PTTL', key)
  if left == -1 or (left >= 0 and left < ms) then redis.call('PEXPIRE', key, string.format('%d', ms)) end
end
`

// KEYS: head, events, jti. ARGV: ttlMs, a new epoch, then jti, JSON pairs (JSON without `seq`).
const APPEND = EXTEND + `
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'seq', 0)
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0
for i = 3, #ARGV, 2 do
  -- An event whose jti is in the log already (a key change every instance saw) goes in once.
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then
    seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], seq, '{"seq":' .. seq .. ',' .. string.sub(ARGV[i + 1], 2))
    redis.call('HSET', KEYS[3], ARGV[i], seq)
  end
end
local ms = tonumber(ARGV[1])
extend(KEYS[1], ms)
extend(KEYS[2], ms)
extend(KEYS[3], ms)
return seq
`

// KEYS: head, stream, acked, client's streams, every stream. ARGV: now, max, id, data, expiresAt.
const CREATE = EXTEND + `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[2]) then return 0 end
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
local ms = tonumber(ARGV[5]) - now
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[2], 'data', ARGV[4], 'expiresAt', ARGV[5], 'cursor', 0, 'epoch', epoch)
redis.call('PEXPIRE', KEYS[2], string.format('%d', ms))
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[3])
extend(KEYS[4], ms)
extend(KEYS[5], ms)
extend(KEYS[1], ms)
return 1
`

// Shared by SAVE and POLL: a new expiry for a live stream (KEYS 2..6 as in SAVE).
const SET_EXPIRY = `
local function setExpiry (id, expiresAt, now)
  local ms = tonumber(expiresAt) - now
  redis.call('HSET', KEYS[2], 'expiresAt', expiresAt)
  redis.call('PEXPIRE', KEYS[2], string.format('%d', ms))
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], string.format('%d', ms)) end
  redis.call('ZADD', KEYS[4], expiresAt, id)
  redis.call('ZADD', KEYS[5], expiresAt, id)
  extend(KEYS[4], ms)
  extend(KEYS[5], ms)
  extend(KEYS[1], ms)
end
`

// KEYS: head, stream, acked, client's streams, every stream. ARGV: now, id, data, expiresAt,
// skipPending (1 or 0).
const SAVE = EXTEND + SET_EXPIRY + `
local now = tonumber(ARGV[1])
local expiresAt = redis.call('HGET', KEYS[2], 'expiresAt')
if not expiresAt or tonumber(expiresAt) <= now then return 0 end
redis.call('HSET', KEYS[2], 'data', ARGV[3])
if ARGV[5] == '1' then
  local head = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
  redis.call('HSET', KEYS[2], 'cursor', head[1] or 0, 'epoch', head[2] or '')
  redis.call('DEL', KEYS[3])
end
setExpiry(ARGV[2], ARGV[4], now)
return 1
`

// KEYS: stream, acked, client's streams, every stream, lease. ARGV: id, now ('' for any).
const DELETE = `
if ARGV[2] ~= '' then
  local expiresAt = redis.call('HGET', KEYS[1], 'expiresAt')
  if expiresAt and tonumber(expiresAt) > tonumber(ARGV[2]) then return 0 end
end
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return existed
`

// KEYS: head, stream, acked, client's streams, every stream, events, jti. ARGV: now, id,
// since, max, activeUntil ('' when none), then the acknowledged jtis.
// Returns false for no live stream, else {more (0/1), event JSON...}.
const POLL = EXTEND + SET_EXPIRY + `
local now = tonumber(ARGV[1])
local id = ARGV[2]
local stream = redis.call('HMGET', KEYS[2], 'data', 'expiresAt', 'cursor', 'epoch')
if not stream[1] or not stream[2] or tonumber(stream[2]) <= now then return false end
local cursor = tonumber(stream[3]) or 0
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
if epoch ~= (stream[4] or '') then
  cursor = 0
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
for i = 6, #ARGV do
  local seq = redis.call('HGET', KEYS[7], ARGV[i])
  if seq and tonumber(seq) > cursor then redis.call('ZADD', KEYS[3], seq, seq) end
end
local record = cjson.decode(stream[1])
local delivered = {}
for _, t in ipairs(record.eventsDelivered) do delivered[t] = true end
local since = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local out = {0}
local isCompacting = true
local last = cursor
local scanned = 0
-- A paused or disabled stream gets nothing (a paused one keeps its events for later).
local isDone = record.status ~= 'enabled'
while not isDone and scanned < 10000 do
  local rows = redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. last, '+inf', 'LIMIT', 0, 256)
  if #rows == 0 then break end
  for _, row in ipairs(rows) do
    local event = cjson.decode(row)
    last = event.seq
    scanned = scanned + 1
    local isAcked = redis.call('ZSCORE', KEYS[3], event.seq)
    local target = event.streamId
    local isFor = event.at >= since and ((target == nil and delivered[event.type] == true) or target == id)
    if isAcked or not isFor then
      if isCompacting then
        cursor = event.seq
        if isAcked then redis.call('ZREM', KEYS[3], event.seq) end
      end
    else
      isCompacting = false
      if #out - 1 >= max then
        out[1] = 1
        isDone = true
        break
      end
      out[#out + 1] = row
    end
  end
end
if scanned >= 10000 and not isDone then out[1] = 1 end
redis.call('HSET', KEYS[2], 'cursor', cursor)
if ARGV[5] ~= '' then setExpiry(id, ARGV[5], now) end
return out
`

// KEYS: the lease. ARGV: owner, ttlMs.
const LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

// KEYS: the lease. ARGV: owner.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`

// KEYS: events, jti. ARGV: before. Drops events from the oldest up to the first one to keep.
const PRUNE = `
local before = tonumber(ARGV[1])
local dropped = 0
while dropped < 10000 do
  local rows = redis.call('ZRANGE', KEYS[1], 0, 255)
  if #rows == 0 then break end
  local isDone = false
  for _, row in ipairs(rows) do
    local event = cjson.decode(row)
    if event.at >= before then
      isDone = true
      break
    end
    redis.call('ZREM', KEYS[1], row)
    redis.call('HDEL', KEYS[2], event.jti)
    dropped = dropped + 1
  end
  if isDone then break end
end
return dropped
`

export const SIGNAL_SCRIPTS = {
  gatehouseSignalsAppend: { lua: APPEND, numberOfKeys: 3 },
  gatehouseSignalsCreate: { lua: CREATE, numberOfKeys: 5 },
  gatehouseSignalsSave: { lua: SAVE, numberOfKeys: 5 },
  gatehouseSignalsDelete: { lua: DELETE, numberOfKeys: 5 },
  gatehouseSignalsPoll: { lua: POLL, numberOfKeys: 7 },
  gatehouseSignalsLease: { lua: LEASE, numberOfKeys: 1 },
  gatehouseSignalsRelease: { lua: RELEASE, numberOfKeys: 1 },
  gatehouseSignalsPrune: { lua: PRUNE, numberOfKeys: 2 }
}
