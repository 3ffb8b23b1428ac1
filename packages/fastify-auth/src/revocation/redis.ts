/**
 * The shared revocation list in Redis, mirrored in memory by every instance.
 *
 * ## Redis layout (shown with the default `keyPrefix` `gatehouse:`)
 *
 * | Key / channel                  | Type       | Content                                           |
 * | ------------------------------ | ---------- | ------------------------------------------------- |
 * | `gatehouse:{revocations}:jti`  | sorted set | member = access token `jti`, score = expiry (ms)  |
 * | `gatehouse:{revocations}:sid`  | sorted set | member = session `sid`, score = expiry (ms)       |
 * | `gatehouse:{revocations}:epoch`| string     | the list's epoch: `<random id>.<ms>`, no TTL      |
 * | `gatehouse:{revocations}:run`  | string     | `<run_id>.<ms>`: when this server run was first seen, no TTL |
 * | `gatehouse:{revocations}:restoring` | string | an instance writing back (its id), 15 s TTL, renewed per batch |
 * | `gatehouse:revocations`        | channel    | one message per revoked id (below)                |
 *
 * - Scores are epoch milliseconds (integers) from the writer's clock: the entry stops counting
 *   once `now >= score`. A re-revoke keeps the later expiry (`ZADD GT`). A member scored `+inf`
 *   is revoked for good; one whose score cannot be read fails closed the same way, logged once.
 * - `{revocations}` is a Cluster hash tag: both sets live in one slot, so one script can write
 *   both. Clients must not set ioredis' own `keyPrefix` option (it would prefix twice).
 * - Every key has a TTL, kept at least as far out as the set's highest score; members with a
 *   score below `now` are removed on every write (`ZREMRANGEBYSCORE -inf (now`).
 * - Message: JSON `{"t":"jti"|"sid","id":"<id>","exp":<expiry ms>}`, published after the write;
 *   `{"t":"resync"}` after a write-back (below): every instance copies the list again;
 *   `{"t":"keys","change":"published"|"activated"|"retired"|"revoked","kid":"..."}` when the
 *   issuer's signing keys change: gateways refetch the JWKS at once (and drop a revoked kid).
 *
 * Writes: `revoke()` runs one Lua script (ZADD GT, ZREMRANGEBYSCORE, PTTL/PEXPIRE on each set it
 * touches; see `redis-scripts.ts`), then PUBLISHes one message per id.
 *
 * Writes while Redis is unreachable are not lost: the entry lands in this instance's mirror at
 * once and the write is queued in memory (`redis-writer.ts`); the queue is flushed in order when
 * the command connection is `ready` again and before every resync, so the other instances get
 * the entry through the restarted Redis. Such a `revoke()` resolves once queued, with a warning
 * logged. The queue lives in this process only: if it exits first, the entry is lost.
 *
 * Reads: the mirror SUBSCRIBEs first, then copies every live entry from both sets with
 * `ZRANGE <key> <min> +inf BYSCORE LIMIT 0 <pageSize> WITHSCORES` (pageSize 10 000; `min` starts
 * at now and moves to each page's last score), so nothing published during the copy is lost and
 * a 1 000 000-entry list loads without blocking Redis for long. Every reconnect of the subscriber
 * resyncs again. Entries are only ever added, so a resync is a union: an entry the mirror holds
 * stays until it expires, even if Redis restarted empty.
 *
 * Nothing is lost when Redis loses data (a restart without persistence, a FLUSHALL, a failover to
 * a replica that missed the last writes): every full sync reads the epoch key (created when
 * missing) and the server's run_id, and the heartbeat compares them with the last sync's every
 * second. When either changed, the instance writes every live entry of its mirror back with its
 * own expiry (ZADD GT in batches of 1000, after a random delay up to `writeBackJitterMs`), then,
 * if Redis took anything new, publishes `resync`. Writing back is idempotent (an entry is never
 * shortened; only what Redis lacked counts as new), so a fleet doing it at once costs Redis one
 * batched pass per instance and nothing else: as long as one instance that held an entry
 * survives, every instance, including one started after the loss, ends up holding it. A
 * run_id change with the same epoch (a restart that kept its data) writes back too: Redis
 * cannot say which last writes it missed.
 */
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { Cluster, Redis } from 'ioredis'
import { RevocationMirror, revocationTargets, systemClock } from './mirror.ts'
import { copyLiveEntries, ScoreReader } from './redis-copy.ts'
import { decodeMessage, encodeKeyChange, EPOCH_SCRIPT, resyncMessage, WRITE_BACK_SCRIPT } from './redis-scripts.ts'
import { RevocationWriter, type RevocationWrite } from './redis-writer.ts'
import type { Clock, KeyChange, RevocationEntry, RevocationList, RevocationLog } from './types.ts'

type Client = Redis | Cluster

/** Entries per write-back script call: a few ms of Redis time each, so other commands interleave. */
const WRITE_BACK_BATCH = 1000
/** The restoring marker outlives a stalled writer by this much. */
const RESTORING_TTL_MS = 15_000
/** Longest a starting instance waits for write-backs in progress before it reports ready. */
const RESTORE_WAIT_MS = 30_000
/** Deletes the restoring marker if it is still this instance's. */
const RELEASE_SCRIPT = 'if redis.call(\'GET\', KEYS[1]) == ARGV[1] then redis.call(\'DEL\', KEYS[1]) end return 0'

/** Options for {@link RedisRevocationList}. */
export interface RedisRevocationListOptions {
  /** Connection for commands (scripts, PUBLISH). Owned by the caller: `close()` leaves it open. */
  redis: Client
  /**
   * Connection for SUBSCRIBE, which cannot carry other commands. A client is used as is and
   * left open by `close()`; a factory's client, or `redis.duplicate()` when omitted, is owned
   * and quit by `close()`.
   */
  subscriber?: Client | (() => Client)
  /** Time source, epoch ms. Default `Date.now`. Also the `now` sent to the scripts. */
  clock?: Clock
  /** Prefix of every key and of the channel. Default `gatehouse:`. */
  keyPrefix?: string
  /** How often the subscriber is PINGed to prove the mirror is current. Default 1000 ms. */
  heartbeatMs?: number
  /** How often expired entries leave the mirror. Default 60 000 ms. */
  sweepMs?: number
  /** Entries per resync page. Default 10 000. */
  pageSize?: number
  /** A write slower than this is queued and retried (revoke() resolves). Default 2000 ms. */
  writeTimeoutMs?: number
  /** Most writes queued while Redis is down. Default 100 000. */
  maxPendingWrites?: number
  /**
   * A write-back (Redis lost the list, see the top of this file) starts after a random delay
   * up to this, so a fleet reconnecting at once spreads its writes. Default 500 ms.
   */
  writeBackJitterMs?: number
  /**
   * When the list's epoch or the server's run_id is younger than this (Redis just lost its
   * data, restarted, failed over, or is new), the first `ready()` waits until it is this old,
   * and then while an instance is writing back (at most 30 s more), and copies the list again,
   * so the write-backs of the instances that survived (their reconnect, at most 2 s with
   * ioredis' default back-off, plus the jitter) are in the copy. Default 3000 ms.
   */
  settleMs?: number
  log?: RevocationLog
}

/**
 * Writer and reader of the shared list. `isRevoked` answers from the in-memory mirror;
 * `staleness` says how far behind Redis that mirror may be (Infinity before the first sync).
 */
export class RedisRevocationList implements RevocationList {
  readonly #redis: Client
  readonly #subscriberSource: Client | (() => Client)
  #subscriber: Client | undefined
  readonly #ownsSubscriber: boolean
  readonly #keys: { jti: string, sid: string, epoch: string, run: string, restoring: string }
  /** This instance, in resync messages and the restoring marker. */
  readonly #id = randomUUID()
  readonly #channel: string
  readonly #clock: Clock
  readonly #mirror: RevocationMirror
  readonly #heartbeatMs: number
  readonly #sweepMs: number
  readonly #pageSize: number
  readonly #log: RevocationLog | undefined
  readonly #writer: RevocationWriter
  readonly #scores: ScoreReader
  #started = false
  #closed = false
  #hasSynced = false
  /** Subscriber connected and resynced since its last (re)connect: only then is lastHeard true. */
  #isLive = false
  /** Bumped on every subscriber disconnect, so a sync or PING that spans one is not trusted. */
  #generation = 0
  #passGeneration = -1
  #lastHeard = -Infinity
  #syncing: Promise<void> | null = null
  #isSyncWanted = false
  #isPinging = false
  #heartbeat: NodeJS.Timeout | undefined
  readonly #writeBackJitterMs: number
  readonly #settleMs: number
  /** The epoch's age at the last sync, and when that was (performance.now()). */
  #epochAge = { ms: Infinity, at: 0 }
  /** An instance was writing back at the last epoch check. */
  #restoring = false
  /** A write-back changed Redis but its resync message is not out yet. */
  #isResyncOwed = false
  /** Waits close() cuts short. */
  readonly #sleeps = new Set<() => void>()
  /** What the last full sync saw: the list's epoch and the server's run_id (see EPOCH_SCRIPT). */
  #seen: { epoch: string, runId: string } | undefined
  #isCheckingEpoch = false
  #settling: Promise<void> | undefined
  #writtenBack = 0
  readonly #keyListeners: Array<(change: KeyChange) => void> = []

  constructor (options: RedisRevocationListOptions) {
    const prefix = options.keyPrefix ?? 'gatehouse:'
    this.#redis = options.redis
    // Created in ready(), not here: a writer that never reads opens no second connection.
    this.#subscriberSource = options.subscriber ?? (() => options.redis.duplicate())
    this.#ownsSubscriber = typeof this.#subscriberSource === 'function'
    const key = (name: string): string => `${prefix}{revocations}:${name}`
    this.#keys = { jti: key('jti'), sid: key('sid'), epoch: key('epoch'), run: key('run'), restoring: key('restoring') }
    this.#channel = `${prefix}revocations`
    this.#clock = options.clock ?? systemClock
    this.#mirror = new RevocationMirror(this.#clock)
    this.#heartbeatMs = options.heartbeatMs ?? 1000
    this.#sweepMs = options.sweepMs ?? 60_000
    this.#pageSize = options.pageSize ?? 10_000
    this.#writeBackJitterMs = options.writeBackJitterMs ?? 500
    this.#settleMs = options.settleMs ?? 3000
    this.#log = options.log
    this.#scores = new ScoreReader(options.log)
    this.#writer = new RevocationWriter({
      redis: options.redis,
      keys: this.#keys,
      channel: this.#channel,
      clock: this.#clock,
      log: this.#log,
      timeoutMs: options.writeTimeoutMs ?? 2000,
      limit: options.maxPendingWrites ?? 100_000
    })
  }

  /**
   * Writes to Redis and publishes. The entry lands in this instance's mirror first, so this
   * instance honours it at once. When Redis is unreachable (or slower than `writeTimeoutMs`)
   * the write is queued, a warning is logged and the promise still resolves; the queue is
   * written when Redis is back (see the top of this file). Rejects only for bad arguments or
   * an error reply from Redis.
   */
  async revoke (entry: RevocationEntry, ttlSeconds: number): Promise<void> {
    const expiresAt = Math.ceil(Math.floor(this.#clock.now()) + ttlSeconds * 1000)
    const targets = revocationTargets(entry, ttlSeconds)
    if (targets.length === 0) return
    const write: RevocationWrite = { jti: '', sid: '', expiresAt }
    for (const { kind, id } of targets) {
      this.#mirror.add(kind, id, expiresAt)
      write[kind] = id
    }
    await this.#writer.submit(write)
  }

  /** Revocations queued while Redis was unreachable, not yet written. */
  get pendingWrites (): number {
    return this.#writer.pending
  }

  /** Calls `listener` for every key change announced on the channel (from ready() on). */
  onKeyChange (listener: (change: KeyChange) => void): void {
    this.#keyListeners.push(listener)
  }

  /**
   * Publishes a key change on the channel, within the write timeout. Rejects when Redis cannot
   * take it (an announcement is a hint: the JWKS refresh still happens on its own).
   */
  async announceKeyChange (change: KeyChange): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('Redis did not take the key change in time')), 2000) })
    try {
      await Promise.race([this.#redis.publish(this.#channel, encodeKeyChange(change)), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Entries this instance wrote back into Redis after it lost them (new or extended ones only). */
  get writtenBack (): number {
    return this.#writtenBack
  }

  isRevoked (claims: { jti?: string, sid?: string }): boolean {
    return this.#mirror.isRevoked(claims)
  }

  get staleness (): number {
    return this.#clock.now() - this.#lastHeard
  }

  get size (): number {
    return this.#mirror.size
  }

  /**
   * Subscribes and loads the whole list. Rejects if a sync fails (e.g. the client gave up on
   * its commands); the heartbeat keeps retrying in the background either way.
   */
  async ready (): Promise<void> {
    if (this.#closed) throw new Error('revocation list is closed')
    this.#start()
    // A pass cut short by a reconnect resolves without syncing; the next one waits for the
    // subscriber to be back, so this loop does not spin.
    while (!this.#hasSynced) {
      if (this.#closed) throw new Error('revocation list is closed')
      await this.#sync()
    }
    await this.#settle()
  }

  /** A young epoch or run_id: wait (see the `settleMs` option), then copy again. Once, unless it fails. */
  async #settle (): Promise<void> {
    if (this.#settling === undefined) {
      const settling = this.#settling = this.#settleOnce()
      settling.catch(() => { if (this.#settling === settling) this.#settling = undefined })
    }
    await this.#settling
  }

  async #settleOnce (): Promise<void> {
    const left = Math.min(this.#settleMs, this.#settleMs - this.#epochAge.ms - (performance.now() - this.#epochAge.at))
    if (!(left > 0) && !this.#restoring) return
    if (left > 0) {
      this.#log?.warn({ waitMs: Math.ceil(left) }, 'the revocation list in Redis is new, or Redis just restarted or lost its data: waiting for other instances to write theirs back before reporting ready')
      await this.#sleep(left)
      await this.#epoch()
    }
    const deadline = performance.now() + RESTORE_WAIT_MS
    while (this.#restoring && performance.now() < deadline) {
      await this.#sleep(100)
      await this.#epoch()
    }
    await this.#sync()
    if (this.#closed) throw new Error('revocation list is closed')
  }

  /** Resolves after `ms`, or at once when the list closes (then rejects). */
  async #sleep (ms: number): Promise<void> {
    if (this.#closed) throw new Error('revocation list is closed')
    await new Promise<void>((resolve) => {
      const done = (): void => { clearTimeout(timer); this.#sleeps.delete(done); resolve() }
      const timer = setTimeout(done, ms)
      this.#sleeps.add(done)
    })
    if (this.#closed) throw new Error('revocation list is closed')
  }

  /**
   * Stops timers, unsubscribes, and quits the subscriber if this list created it. Queued writes
   * get a last flush if Redis is connected; any left are logged as lost.
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#isLive = false
    for (const wake of [...this.#sleeps]) wake()
    clearInterval(this.#heartbeat)
    this.#mirror.stopSweeping()
    await this.#writer.close()
    const sub = this.#subscriber
    if (sub === undefined) return
    sub.off('message', this.#onMessage)
    sub.off('ready', this.#onReady)
    sub.off('close', this.#onClose)
    if (this.#ownsSubscriber) {
      // QUIT on a disconnected client would wait in the offline queue for a server that may
      // never return; disconnect() closes at once. Either way, resolve once it has ended. While
      // 'reconnecting' (socket gone, retry timer set), ioredis 5 only clears the timer: no 'end'.
      const ended = sub.status === 'end' || sub.status === 'reconnecting' ? Promise.resolve() : once(sub, 'end')
      if (sub.status === 'ready') await sub.quit().catch(() => sub.disconnect())
      else sub.disconnect()
      await ended
    } else if (sub.status === 'ready') {
      await sub.unsubscribe(this.#channel).catch(() => {})
    }
  }

  #start (): void {
    if (this.#started) return
    this.#started = true
    const source = this.#subscriberSource
    const sub = this.#subscriber = typeof source === 'function' ? source() : source
    sub.on('message', this.#onMessage)
    sub.on('ready', this.#onReady)
    sub.on('close', this.#onClose)
    // Only on clients we own: on the caller's, a listener would hide their own error handling.
    if (this.#ownsSubscriber) sub.on('error', this.#onError)
    this.#heartbeat = setInterval(this.#tick, this.#heartbeatMs)
    this.#heartbeat.unref()
    this.#mirror.startSweeping(this.#sweepMs)
  }

  /** The subscriber, which exists from the first ready() on. */
  get #sub (): Client {
    if (this.#subscriber === undefined) throw new Error('revocation list not started')
    return this.#subscriber
  }

  readonly #onMessage = (channel: string, raw: string): void => {
    if (channel !== this.#channel) return
    const message = decodeMessage(raw)
    if (message === null) {
      this.#log?.warn({ channel, message: raw.slice(0, 200) }, 'ignoring malformed revocation message')
      return
    }
    if (message.kind === 'keys') {
      for (const listener of this.#keyListeners) {
        try {
          listener({ change: message.change, kid: message.kid })
        } catch (err) {
          this.#log?.warn({ err }, 'a key change listener threw')
        }
      }
      return
    }
    if (message.kind === 'resync') {
      if (message.from === this.#id) return
      // Another instance wrote entries back: copy the list again, after a spread-out delay.
      const timer = setTimeout(() => { if (!this.#closed) this.#sync().catch(this.#onSyncError) }, Math.random() * this.#writeBackJitterMs)
      timer.unref()
      return
    }
    this.#mirror.add(message.kind, message.id, message.expiresAt)
    if (this.#isLive) this.#lastHeard = this.#clock.now()
  }

  readonly #onClose = (): void => {
    this.#generation++
    this.#isLive = false
  }

  /** A (re)connected subscriber lost every message sent while it was away: resync fully. */
  readonly #onReady = (): void => {
    // A pass begun in this generation already subscribes over this very connection.
    if (this.#syncing !== null && this.#passGeneration === this.#generation) return
    this.#sync().catch(this.#onSyncError)
  }

  readonly #onError = (err: Error): void => {
    this.#log?.warn({ err }, 'revocation subscriber connection error')
  }

  readonly #onSyncError = (err: unknown): void => {
    if (!this.#closed) this.#log?.warn({ err }, 'revocation list resync failed; retrying')
  }

  /** Heartbeat: retries a failed sync, or PINGs the subscriber to prove the mirror current. */
  readonly #tick = (): void => {
    if (this.#closed) return
    if (!this.#isLive) {
      if (this.#syncing === null && this.#sub.status === 'ready') this.#sync().catch(this.#onSyncError)
      return
    }
    this.#checkEpoch()
    if (this.#isPinging) return
    this.#isPinging = true
    const generation = this.#generation
    this.#sub.ping().then(() => {
      if (this.#isLive && generation === this.#generation) this.#lastHeard = this.#clock.now()
    }, () => {}).finally(() => { this.#isPinging = false })
  }

  /** Runs a full resync, coalescing requests that arrive while one is running. */
  #sync (): Promise<void> {
    this.#isSyncWanted = true
    this.#syncing ??= this.#drain()
    return this.#syncing
  }

  async #drain (): Promise<void> {
    try {
      while (this.#isSyncWanted && !this.#closed) {
        this.#isSyncWanted = false
        await this.#resync()
      }
    } finally {
      this.#syncing = null // runs in the same tick as the last loop check: no request is lost
    }
  }

  async #resync (): Promise<void> {
    const generation = this.#generation
    this.#passGeneration = generation
    // Subscribe first: anything published from now on reaches #onMessage while we copy.
    await this.#afterHandshake()
    await this.#sub.subscribe(this.#channel)
    await this.#writer.flush() // our queued writes reach Redis before we copy it
    const seen = await this.#epoch()
    if (this.#seen !== undefined && (seen.epoch !== this.#seen.epoch || seen.runId !== this.#seen.runId)) {
      await this.#writeBack(seen.epoch !== this.#seen.epoch ? 'the list is gone (epoch changed)' : 'the server restarted or failed over (run_id changed)')
    }
    // Only once written back: a write-back cut short is done again on the next pass.
    this.#seen = seen
    const now = Math.floor(this.#clock.now())
    for (const kind of ['jti', 'sid'] as const) {
      await copyLiveEntries(this.#redis, this.#keys[kind], now, this.#pageSize, (id, expiresAt) => {
        this.#mirror.add(kind, id, expiresAt)
      }, this.#scores)
    }
    if (generation !== this.#generation || this.#closed) return // the next 'ready' resyncs
    this.#hasSynced = true
    this.#isLive = true
    this.#lastHeard = this.#clock.now()
  }

  /** The list's epoch (created when missing) and the server's run_id; notes their age and any write-back in progress. */
  async #epoch (): Promise<{ epoch: string, runId: string }> {
    const { epoch, run, restoring } = this.#keys
    const reply = await this.#redis.eval(EPOCH_SCRIPT, 3, epoch, run, restoring, randomUUID())
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new TypeError('unexpected reply to the revocation epoch check')
    this.#epochAge = { ms: Math.max(0, Number(reply[2]) || 0), at: performance.now() }
    this.#restoring = Number(reply[3]) === 1
    return { epoch: reply[0], runId: String(reply[1] ?? '') }
  }

  /**
   * Heartbeat: a FLUSHALL, or a restart the subscriber did not notice, loses the list without a
   * reconnect. Compares the epoch and run_id with the last sync's; a change asks for a resync,
   * which writes the mirror back. The same connection as the writes, one call a heartbeat.
   */
  #checkEpoch (): void {
    const last = this.#seen
    // A sync in progress checks the epoch itself.
    if (last === undefined || this.#isCheckingEpoch || this.#syncing !== null || this.#redis.status !== 'ready') return
    this.#isCheckingEpoch = true
    this.#epoch().then((seen) => {
      if (!this.#closed && this.#seen === last && (seen.epoch !== last.epoch || seen.runId !== last.runId)) this.#sync().catch(this.#onSyncError)
    }, () => {}).finally(() => { this.#isCheckingEpoch = false })
  }

  /**
   * Writes every live entry of the mirror back into Redis, which lost some or all of the list
   * (see the top of this file), after a random delay of up to `writeBackJitterMs`. Then, if
   * Redis took anything new, asks every instance to copy the list again.
   */
  async #writeBack (why: string): Promise<void> {
    await this.#sleep(Math.random() * this.#writeBackJitterMs)
    const now = Math.floor(this.#clock.now())
    let changed = 0
    // Instances starting meanwhile wait for this marker to go before they report ready.
    const mark = async (): Promise<void> => { await this.#redis.set(this.#keys.restoring, this.#id, 'PX', RESTORING_TTL_MS) }
    await mark()
    for (const kind of ['jti', 'sid'] as const) {
      let batch: Array<string | number> = []
      const send = async (): Promise<void> => {
        await mark()
        const reply = await this.#redis.eval(WRITE_BACK_SCRIPT, 1, this.#keys[kind], now, ...batch)
        changed += Number(reply)
        this.#writtenBack += Number(reply)
        batch = []
      }
      for (const [id, expiresAt] of this.#mirror.entries(kind)) {
        batch.push(id, expiresAt === Infinity ? '+inf' : Math.ceil(expiresAt))
        if (batch.length >= WRITE_BACK_BATCH * 2) await send()
      }
      if (batch.length > 0) await send()
    }
    if (changed > 0) {
      this.#log?.warn({ reason: why, restored: changed }, 'Redis had lost revocations: wrote them back from this instance\'s mirror')
      this.#isResyncOwed = true
    }
    // Owed until published: a retried write-back finds nothing new, yet the others must copy.
    if (this.#isResyncOwed) {
      await this.#redis.publish(this.#channel, resyncMessage(this.#id))
      this.#isResyncOwed = false
    }
    await this.#redis.eval(RELEASE_SCRIPT, 1, this.#keys.restoring, this.#id)
  }

  /**
   * ioredis 5 sends a SUBSCRIBE issued during its handshake (status `connect`) straight away,
   * and its own ready check (INFO) then fails in subscriber mode, reconnecting forever. In any
   * other status the command waits in the offline queue, which is safe.
   */
  async #afterHandshake (): Promise<void> {
    const sub = this.#sub
    if (sub.status !== 'connect') return
    await new Promise<void>((resolve) => {
      const done = (): void => { sub.off('ready', done); sub.off('close', done); resolve() }
      sub.on('ready', done)
      sub.on('close', done)
    })
  }
}
