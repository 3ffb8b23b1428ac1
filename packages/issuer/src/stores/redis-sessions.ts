/**
 * SSO sessions and consents in Redis: `<keyPrefix>session:{<sid>}` and
 * `<keyPrefix>consent:{<subject>}:<clientId>`, both hashes. The key layout is described at the
 * top of redis.ts.
 */
import type { RedisClient } from './redis-connection.ts'
import { checkConsentTtl } from './policy.ts'
import { execOrThrow, keyPart, ttl, withScripts, type ScriptClient } from './redis-scripts.ts'
import type { ConsentStore, SessionRecord, SessionStore } from './types.ts'

// KEYS: the session. Reads and ends it in one step, so of two concurrent logouts exactly one
// gets the session (and notifies its clients). The hash becomes the marker `ended`, kept for
// the rest of the session's lifetime (its TTL is unchanged).
const END_SESSION = `
if redis.call('HEXISTS', KEYS[1], 'data') == 0 then return false end
local fields = redis.call('HGETALL', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
if left > 0 then
  redis.call('HSET', KEYS[1], 'ended', '1')
  redis.call('PEXPIRE', KEYS[1], left)
end
return fields
`

// KEYS: the session. ARGV: field, value. Sets it only on a live session (one with data, not
// ended), so a family recorded after the logout is reported and revoked, never kept.
const HSET_IF_LIVE = `
if redis.call('HEXISTS', KEYS[1], 'data') == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

// KEYS: the consent. ARGV: now, the new scopes' expiresAt, the scopes.
// Each scope is a field whose value is when it expires; expired ones are dropped, and the key
// lives as long as its last scope.
const GRANT = `
local now = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local ends = tonumber(fields[i + 1])
  if ends <= now then redis.call('HDEL', KEYS[1], fields[i]) elseif ends > last then last = ends end
end
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[2]) end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, last - now)))
end
return 1
`

const SCRIPTS = {
  gatehouseSessionEnd: { lua: END_SESSION, numberOfKeys: 1 },
  gatehouseConsentGrant: { lua: GRANT, numberOfKeys: 1 },
  gatehouseSessionAdd: { lua: HSET_IF_LIVE, numberOfKeys: 1 }
}

type Scripts = ScriptClient<keyof typeof SCRIPTS>

/**
 * `create` takes no `now`: the session's `createdAt` is that moment, so its TTL is
 * `expiresAt - createdAt`. `addClient`, `addFamily` and `end` take no `now` either, so they
 * see a session until Redis evicts it: logout of a session that just expired still reaches
 * its clients.
 */
export class RedisSessionStore implements SessionStore {
  readonly #redis: RedisClient
  readonly #scripts: Scripts
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix = 'gatehouse:') {
    this.#redis = redis
    this.#scripts = withScripts(redis, SCRIPTS)
    this.#prefix = keyPrefix
  }

  async create (session: SessionRecord): Promise<void> {
    if (session.expiresAt <= session.createdAt) return
    const key = this.#key(session.sid)
    await execOrThrow(this.#redis.multi()
      .del(key)
      .hset(key, 'data', JSON.stringify(session))
      .pexpire(key, ttl(session.expiresAt, session.createdAt)), 'create session')
  }

  async get (sid: string, now: number): Promise<SessionRecord | null> {
    const data = await this.#redis.hget(this.#key(sid), 'data')
    if (data === null) return null
    const session = JSON.parse(data) as SessionRecord
    return session.expiresAt > now ? session : null
  }

  async addClient (sid: string, clientId: string): Promise<void> {
    await this.#scripts.gatehouseSessionAdd(this.#key(sid), `client:${clientId}`, '1')
  }

  async addFamily (sid: string, familyId: string): Promise<boolean> {
    return await this.#scripts.gatehouseSessionAdd(this.#key(sid), `family:${familyId}`, '1') === 1
  }

  async hasEnded (sid: string): Promise<boolean> {
    return await this.#redis.hexists(this.#key(sid), 'ended') === 1
  }

  async end (sid: string): Promise<{ session: SessionRecord, clients: string[], families: string[] } | null> {
    const fields = await this.#scripts.gatehouseSessionEnd(this.#key(sid)) as string[] | null
    if (fields === null) return null
    let session: SessionRecord | undefined
    const clients: string[] = []
    const families: string[] = []
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i]!
      if (field === 'data') session = JSON.parse(fields[i + 1]!) as SessionRecord
      else if (field.startsWith('client:')) clients.push(field.slice('client:'.length))
      else if (field.startsWith('family:')) families.push(field.slice('family:'.length))
    }
    // Every write goes through create (data first) or HSET-if-live, so data is always there.
    if (session === undefined) throw new Error(`session ${sid} had no data`)
    return { session, clients, families }
  }

  #key (sid: string): string {
    return `${this.#prefix}session:{${keyPart(sid)}}`
  }
}

/**
 * Each scope is granted until `ttlMs` after the grant that last included it: a grant never
 * extends scopes the user did not confirm again. The expiries are stored in the hash, so `get`
 * honours the caller's `now` before Redis evicts anything.
 */
export class RedisConsentStore implements ConsentStore {
  readonly #redis: RedisClient
  readonly #scripts: Scripts
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix = 'gatehouse:') {
    this.#redis = redis
    this.#scripts = withScripts(redis, SCRIPTS)
    this.#prefix = keyPrefix
  }

  async get (subject: string, clientId: string, now: number): Promise<string[]> {
    const fields = await this.#redis.hgetall(this.#key(subject, clientId))
    return Object.keys(fields).filter((scope) => Number(fields[scope]) > now)
  }

  async grant (subject: string, clientId: string, scopes: string[], ttlMs: number, now: number): Promise<void> {
    checkConsentTtl(ttlMs)
    await this.#scripts.gatehouseConsentGrant(this.#key(subject, clientId), String(now), String(now + ttl(now + ttlMs, now)), ...scopes)
  }

  #key (subject: string, clientId: string): string {
    return `${this.#prefix}consent:{${keyPart(subject)}}:${keyPart(clientId)}`
  }
}
