/**
 * Redis stores, shared by every issuer instance.
 *
 * Key layout, shown with the default prefix `gatehouse:` (the `keyPrefix` argument replaces it).
 * Braces are Redis Cluster hash tags: every key one operation touches shares one, so lives in
 * one slot, and the same commands and scripts run unchanged on a single server, Sentinel or
 * Cluster.
 *
 * - `gatehouse:{keys}:signing`: hash, kid -> JSON `SigningKeyRecord`. No TTL: pruned by `remove`.
 * - `gatehouse:{keys}:secret:<name>`: string, a shared secret (`sharedSecret`). No TTL: it must
 *   stay the same for as long as anything it signed is around, and it never grows.
 * - `gatehouse:rt:{<familyId>}:family`: hash. `data` -> JSON `RefreshFamily`; `revoked` -> `1`
 *   once revoked; `at:<jti>` -> expiresAt of each access token issued from the family.
 *   TTL: the family's `expiresAt`; revoking keeps it.
 * - `gatehouse:rt:{<familyId>}:t:<hash>`: string, JSON `RefreshTokenRecord` plus `usedAt` once
 *   rotated. TTL: the earlier of the token's and the family's `expiresAt`. A used token is kept,
 *   marked, until then, so presenting it again is recognised as reuse, not as unknown.
 * - `gatehouse:code:{<hash>}` (redis-codes.ts): hash. `data` -> JSON `AuthorizationCodeRecord`;
 *   once consumed `usedAt` and `replayUntil`; `issued` -> JSON `CodeIssued`. TTL: the code's
 *   `expiresAt`, then on first use `replayUntil` (at least `CODE_REPLAY_WINDOW_MS` later).
 * - `gatehouse:session:{<sid>}` (redis-sessions.ts): hash. `data` -> JSON `SessionRecord`;
 *   `client:<clientId>` and `family:<familyId>` -> `1`. TTL: the session's `expiresAt`.
 * - `gatehouse:consent:{<subject>}:<clientId>` (redis-sessions.ts): hash, scope -> expiresAt,
 *   `ttlMs` after the last grant that included it. TTL: the latest of those. All the consents
 *   of one subject share a slot.
 * - `gatehouse:fail:<kind>:{<id>}` (redis-failures.ts): hash. `count` -> failures in the window,
 *   `resetAt` -> its end. `kind` is `username`, `login-ip`, `client` or `client-ip`. TTL: the
 *   window's end.
 *
 * Records are stored as JSON written by Node and handed back as is: scripts decode them to
 * read a field but never re-encode them (Lua's cjson would turn `[]` into `{}`).
 * Caller-supplied ids (sid, subject, client id) go through `keyPart` (redis-scripts.ts), which
 * escapes `{`, `}`, `:` and anything unusual, so no id can move a hash tag or forge another key.
 *
 * Time is always the caller's `now` (the injected clock), never Redis `TIME`: TTLs are computed
 * as `expiresAt - now`, and every script also compares `expiresAt` with `now`, so a key that
 * Redis has not evicted yet is still invisible once expired.
 *
 * Do not also set ioredis' own `keyPrefix` option on the client: the prefix would be applied
 * twice.
 */
import type { RedisClient } from './redis-connection.ts'
import { checkSecretName, newSecret } from './policy.ts'
import { execOrThrow, ttl, withScripts, type ScriptClient } from './redis-scripts.ts'
import type {
  IssuedAccessToken, KeyStore, RefreshFamily, RefreshTokenRecord, RefreshTokenStore,
  RotateResult, SigningKeyRecord
} from './types.ts'

const ADD_IF_EMPTY = `
if redis.call('HLEN', KEYS[1]) ~= 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

/**
 * Shared by the family scripts: drops the family's expired `at:` fields and appends the live
 * ones to `result` as jti, expiresAt pairs.
 */
const LIVE_ACCESS_TOKENS = `
local function liveAccessTokens (now, result)
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local field, expiresAt = fields[i], tonumber(fields[i + 1])
    if string.sub(field, 1, 3) == 'at:' then
      if expiresAt > now then
        result[#result + 1] = string.sub(field, 4)
        result[#result + 1] = fields[i + 1]
      else
        redis.call('HDEL', KEYS[1], field)
      end
    end
  end
  return result
end
`

// KEYS: family, presented token, next token.
// ARGV: now, next token JSON, next token expiresAt, access token field, its expiresAt.
const ROTATE = LIVE_ACCESS_TOKENS + `
local now = tonumber(ARGV[1])
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return {'invalid'} end
local family = cjson.decode(data)
if family.expiresAt <= now or redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return {'invalid'} end
local raw = redis.call('GET', KEYS[2])
if not raw then return {'invalid'} end
local token = cjson.decode(raw)
if token.expiresAt <= now then return {'invalid'} end
if token.usedAt then
  -- RFC 9700 4.14.2: a used refresh token came back, so one of its holders is an attacker.
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return liveAccessTokens(now, {'reused', data})
end
token.usedAt = now
redis.call('SET', KEYS[2], cjson.encode(token), 'KEEPTTL')
local ttl = math.floor(math.min(tonumber(ARGV[3]), family.expiresAt) - now)
if ttl > 0 then redis.call('SET', KEYS[3], ARGV[2], 'PX', ttl) end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
liveAccessTokens(now, {})
return {'rotated', data}
`

// KEYS: family. ARGV: now. Keeps the TTL: the family key dies when the family would have.
const REVOKE_FAMILY = LIVE_ACCESS_TOKENS + `
local now = tonumber(ARGV[1])
local data = redis.call('HGET', KEYS[1], 'data')
if not data or cjson.decode(data).expiresAt <= now then return false end
redis.call('HSET', KEYS[1], 'revoked', '1')
return liveAccessTokens(now, {data})
`

const SCRIPTS = {
  gatehouseKeysAddIfEmpty: { lua: ADD_IF_EMPTY, numberOfKeys: 1 },
  gatehouseRefreshRotate: { lua: ROTATE, numberOfKeys: 3 },
  gatehouseRefreshRevokeFamily: { lua: REVOKE_FAMILY, numberOfKeys: 1 }
}

type Scripts = ScriptClient<keyof typeof SCRIPTS>

/**
 * Signing keys in one hash, `<keyPrefix>{keys}:signing`: kid -> JSON record; shared secrets
 * beside it, `<keyPrefix>{keys}:secret:<name>`.
 * The Gatehouse keys without a TTL: a signing key must outlive every token it signed, which no
 * fixed TTL knows, so retired keys are pruned explicitly through `remove`; a shared secret is
 * one short value per name, kept for good.
 */
export class RedisKeyStore implements KeyStore {
  readonly #redis: RedisClient
  readonly #scripts: Scripts
  readonly #key: string
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix = 'gatehouse:') {
    this.#redis = redis
    this.#scripts = withScripts(redis, SCRIPTS)
    this.#key = `${keyPrefix}{keys}:signing`
    this.#prefix = keyPrefix
  }

  async list (): Promise<SigningKeyRecord[]> {
    const values = await this.#redis.hvals(this.#key)
    return values.map((value) => JSON.parse(value) as SigningKeyRecord)
  }

  async add (record: SigningKeyRecord): Promise<void> {
    await this.#redis.hset(this.#key, record.kid, JSON.stringify(record))
  }

  async addIfEmpty (record: SigningKeyRecord): Promise<boolean> {
    // One script, so instances starting together cannot both see an empty hash.
    return await this.#scripts.gatehouseKeysAddIfEmpty(this.#key, record.kid, JSON.stringify(record)) === 1
  }

  async remove (kids: string[]): Promise<void> {
    if (kids.length > 0) await this.#redis.hdel(this.#key, ...kids)
  }

  async sharedSecret (name: string, create: () => string): Promise<string> {
    checkSecretName(name)
    const key = `${this.#prefix}{keys}:secret:${name}`
    const existing = await this.#redis.get(key)
    if (existing !== null) return existing
    // NX: of instances starting together, the first SET wins and every one reads its value.
    await this.#redis.set(key, newSecret(create), 'NX')
    const value = await this.#redis.get(key)
    if (value === null) throw new Error(`${key} vanished right after it was set`)
    return value
  }
}

/** Refresh token families; the key layout is described at the top of this file. */
export class RedisRefreshTokenStore implements RefreshTokenStore {
  readonly #redis: RedisClient
  readonly #scripts: Scripts
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix = 'gatehouse:') {
    this.#redis = redis
    this.#scripts = withScripts(redis, SCRIPTS)
    this.#prefix = keyPrefix
  }

  async create (family: RefreshFamily, first: RefreshTokenRecord, accessToken: IssuedAccessToken): Promise<void> {
    assertSameFamily(family.id, first)
    // create() is given no `now`; the first token's issue time is that moment.
    const now = first.issuedAt
    await execOrThrow(this.#redis.multi()
      .hset(this.#familyKey(family.id), 'data', JSON.stringify(family), `at:${accessToken.jti}`, String(accessToken.expiresAt))
      .pexpire(this.#familyKey(family.id), ttl(family.expiresAt, now))
      .set(this.#tokenKey(family.id, first.hash), JSON.stringify(first), 'PX', ttl(Math.min(first.expiresAt, family.expiresAt), now)), 'refresh family')
  }

  async rotate (familyId: string, presentedHash: string, next: RefreshTokenRecord, accessToken: IssuedAccessToken, now: number): Promise<RotateResult> {
    assertSameFamily(familyId, next)
    const reply = await this.#scripts.gatehouseRefreshRotate(
      this.#familyKey(familyId), this.#tokenKey(familyId, presentedHash), this.#tokenKey(familyId, next.hash),
      String(now), JSON.stringify(next), String(next.expiresAt), `at:${accessToken.jti}`, String(accessToken.expiresAt)
    ) as string[]
    const [status, data, ...accessTokens] = reply
    if (status === 'rotated') return { status, family: JSON.parse(data!) as RefreshFamily }
    if (status === 'reused') return { status, family: JSON.parse(data!) as RefreshFamily, accessTokens: pairs(accessTokens) }
    return { status: 'invalid' }
  }

  async find (familyId: string, hash: string, now: number): Promise<{ family: RefreshFamily, token: RefreshTokenRecord } | null> {
    // Two reads, no script: nothing changes, and a rotation landing between them is no
    // different from one landing just after.
    const [[data, revoked], raw] = await Promise.all([
      this.#redis.hmget(this.#familyKey(familyId), 'data', 'revoked'),
      this.#redis.get(this.#tokenKey(familyId, hash))
    ])
    if (data == null || revoked != null || raw == null) return null
    const family = JSON.parse(data) as RefreshFamily
    const { usedAt, ...token } = JSON.parse(raw) as RefreshTokenRecord & { usedAt?: number }
    if (family.expiresAt <= now || token.expiresAt <= now || usedAt !== undefined) return null
    return { family, token }
  }

  async revokeFamily (familyId: string, now: number): Promise<{ family: RefreshFamily, accessTokens: IssuedAccessToken[] } | null> {
    const reply = await this.#scripts.gatehouseRefreshRevokeFamily(this.#familyKey(familyId), String(now)) as string[] | null
    if (reply === null) return null
    const [data, ...accessTokens] = reply
    return { family: JSON.parse(data!) as RefreshFamily, accessTokens: pairs(accessTokens) }
  }

  #familyKey (familyId: string): string {
    return `${this.#prefix}rt:{${familyId}}:family`
  }

  #tokenKey (familyId: string, hash: string): string {
    return `${this.#prefix}rt:{${familyId}}:t:${hash}`
  }
}

function pairs (flat: string[]): IssuedAccessToken[] {
  const tokens: IssuedAccessToken[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) tokens.push({ jti: flat[i]!, expiresAt: Number(flat[i + 1]) })
  return tokens
}

/**
 * A token filed under another family would be unreachable, and an empty family id would
 * make an empty hash tag `{}`, which Cluster ignores, scattering the family over slots.
 */
function assertSameFamily (familyId: string, token: RefreshTokenRecord): void {
  if (familyId === '' || token.familyId !== familyId) {
    throw new TypeError(`refresh token belongs to family "${token.familyId}", not "${familyId}"`)
  }
}
