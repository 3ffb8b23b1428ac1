/**
 * The full copy behind a resync: every live member of one sorted set, in pages, without
 * blocking Redis for long. Layout: see `redis.ts`.
 */
import type { Cluster, Redis } from 'ioredis'
import type { RevocationLog } from './types.ts'

/** Most unreadable entries named in the log; past that they still fail closed, unlogged. */
const MAX_LOGGED = 1000

/**
 * Turns the scores of a `ZRANGE ... WITHSCORES` reply into expiries (epoch ms). Redis writes
 * +inf as `inf`, which `Number()` reads as NaN: an entry scored `+inf` is revoked for good.
 * A score that cannot be read at all fails closed: the entry counts as revoked for good too,
 * and is logged once per set and member (never again on later resyncs).
 */
export class ScoreReader {
  readonly #log: RevocationLog | undefined
  readonly #logged = new Set<string>()

  constructor (log?: RevocationLog) {
    this.#log = log
  }

  expiry (key: string, id: string, raw: unknown): number {
    const text = String(raw).trim().toLowerCase()
    if (text === 'inf' || text === '+inf' || text === 'infinity' || text === '+infinity') return Infinity
    if (text === '-inf' || text === '-infinity') return -Infinity
    const score = text === '' ? NaN : Number(text)
    if (!Number.isNaN(score)) return score
    const entry = `${key} ${id}`
    if (!this.#logged.has(entry) && this.#logged.size < MAX_LOGGED) {
      this.#logged.add(entry)
      this.#log?.warn({ key, id, score: String(raw).slice(0, 100) }, 'unreadable revocation score: the entry counts as revoked for good')
    }
    return Infinity
  }
}

/**
 * The next page of a sorted set after `cursor`, `member, score, member, score, ...`. The
 * resync uses it only inside a run of at least a page of members sharing one score, which
 * a score cursor cannot step through (plain ZRANGE BYSCORE serves every other page: copying
 * a reply through Lua costs Redis several times more).
 * KEYS[1] = set; ARGV[1] = page size, ARGV[2] = cursor member, ARGV[3] = its score.
 *
 * When the cursor is still there with the same score, the page starts right after its rank,
 * read atomically with that rank. Otherwise it restarts at the cursor's score: re-reading a
 * few entries is harmless, the mirror keeps the later expiry.
 */
export const PAGE_AFTER_SCRIPT = `
local size = tonumber(ARGV[1])
local rank = redis.call('ZRANK', KEYS[1], ARGV[2])
if rank and redis.call('ZSCORE', KEYS[1], ARGV[2]) == ARGV[3] then
  return redis.call('ZRANGE', KEYS[1], rank + 1, rank + size, 'WITHSCORES')
end
return redis.call('ZRANGE', KEYS[1], ARGV[3], '+inf', 'BYSCORE', 'LIMIT', 0, size, 'WITHSCORES')
`

/**
 * Calls `add(id, expiresAt)` for every member of `key` scoring at least `now`, `pageSize` at a
 * time. The cursor is a score, not an offset: writers remove members that expire while we
 * copy, which would shift an offset past live entries. Each page starts at the previous page's
 * last score, inclusive, so members sharing that score are read again (harmless) rather than
 * skipped. A page that is all one score switches to PAGE_AFTER_SCRIPT until the run ends.
 */
export async function copyLiveEntries (
  redis: Redis | Cluster,
  key: string,
  now: number,
  pageSize: number,
  add: (id: string, expiresAt: number) => void,
  scores: ScoreReader = new ScoreReader()
): Promise<void> {
  let min = String(now)
  let after = ''
  for (;;) {
    const page = after === ''
      ? await redis.zrange(key, min, '+inf', 'BYSCORE', 'LIMIT', 0, pageSize, 'WITHSCORES')
      : await redis.eval(PAGE_AFTER_SCRIPT, 1, key, pageSize, after, min)
    if (!Array.isArray(page)) throw new TypeError('unexpected reply to a revocation page')
    for (let i = 0; i + 1 < page.length; i += 2) {
      const id = String(page[i])
      add(id, scores.expiry(key, id, page[i + 1]))
    }
    if (page.length < pageSize * 2) return
    const last = String(page[page.length - 1])
    after = last === String(page[1]) ? String(page[page.length - 2]) : ''
    min = last
  }
}
