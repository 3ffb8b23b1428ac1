/**
 * The Shared Signals log and streams in Redis, shared by every issuer instance. Every key
 * carries the hash tag `{ssf}`, so one script can touch the log and a stream together, on
 * Cluster too. Shown with the default prefix `gatehouse:`:
 *
 * - `gatehouse:{ssf}:head`: hash. `seq` -> the last event number given; `epoch` -> a random id
 *   of this log. If the log is ever lost (evicted, flushed), the next append starts a new
 *   epoch, and a stream whose cursor belongs to another epoch starts over from the top of
 *   the log (applying an event twice is harmless; missing one is not).
 * - `gatehouse:{ssf}:events`: sorted set, score `seq`, member the event's JSON (`seq` first).
 * - `gatehouse:{ssf}:jti`: hash, `jti` -> `seq` (acknowledgements name events by `jti`).
 * - `gatehouse:{ssf}:stream:<id>`: hash. `data` -> JSON `StreamRecord` (without `expiresAt`),
 *   `expiresAt`, `cursor` (every event up to it is acknowledged or not for this stream),
 *   `epoch`.
 * - `gatehouse:{ssf}:acked:<id>`: sorted set of the stream's acknowledged `seq`s above its cursor.
 * - `gatehouse:{ssf}:client:<clientId>`, `gatehouse:{ssf}:streams`: sorted sets, stream id ->
 *   `expiresAt`: a client's streams, and every stream (push delivery walks it).
 * - `gatehouse:{ssf}:lease:<id>`: string, the instance delivering a push stream.
 * - channel `gatehouse:{ssf}:appended`: a message after each append, so a poll held open on
 *   one instance wakes for an event appended on another.
 *
 * TTLs: the log keys live `keepUntil` after the last append, a stream's keys until its
 * `expiresAt`, the sets as long as their longest-lived member, a lease its own time. Every
 * script compares expiries with the caller's `now`.
 */
import type { FastifyBaseLogger } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { RedisClient } from './redis-connection.ts'
import { keyPart, withScripts, type ScriptClient } from './redis-scripts.ts'
import { SIGNAL_SCRIPTS } from './redis-signals-scripts.ts'
import type { SignalEvent, SignalEventInput, SignalPollRequest, SignalPollResult, SignalStore, StreamRecord } from './types.ts'

type Scripts = ScriptClient<keyof typeof SIGNAL_SCRIPTS>

export interface RedisSignalStoreOptions {
  redis: RedisClient
  /** A connection for pub/sub (it may be shared: only this store's channel is used). */
  subscriber: RedisClient
  log?: Pick<FastifyBaseLogger, 'warn'>
  keyPrefix?: string
}

export class RedisSignalStore implements SignalStore {
  readonly #redis: RedisClient
  readonly #subscriber: RedisClient
  readonly #scripts: Scripts
  readonly #log: RedisSignalStoreOptions['log']
  readonly #base: string
  readonly #channel: string
  readonly #listeners = new Set<() => void>()
  #opening: Promise<void> | undefined
  #isClosed = false

  constructor (options: RedisSignalStoreOptions) {
    this.#redis = options.redis
    this.#subscriber = options.subscriber
    this.#scripts = withScripts(options.redis, SIGNAL_SCRIPTS)
    this.#log = options.log
    this.#base = `${options.keyPrefix ?? 'gatehouse:'}{ssf}:`
    this.#channel = `${this.#base}appended`
  }

  async open (): Promise<void> {
    this.#opening ??= this.#subscribe()
    await this.#opening
  }

  async append (inputs: readonly SignalEventInput[], keepUntil: number, now: number): Promise<void> {
    if (inputs.length === 0) return
    const args = inputs.flatMap((e) => [e.jti, JSON.stringify(e)])
    const epoch = randomBytes(8).toString('base64url')
    const seq = await this.#scripts.gatehouseSignalsAppend(this.#key('head'), this.#key('events'), this.#key('jti'), String(Math.max(1, keepUntil - now)), epoch, ...args)
    // Best effort: a poll missing it still answers at the end of its wait.
    await this.#redis.publish(this.#channel, String(seq)).catch((err: unknown) => this.#log?.warn({ err }, 'shared signals: could not publish an append'))
    this.#notify()
  }

  async createStream (stream: StreamRecord, maxPerClient: number, now: number): Promise<boolean> {
    const created = await this.#scripts.gatehouseSignalsCreate(...this.#streamKeys(stream.id, stream.clientId),
      String(now), String(maxPerClient), stream.id, encodeRecord(stream), String(stream.expiresAt))
    return created === 1
  }

  async getStream (id: string, now: number): Promise<StreamRecord | null> {
    const [data = null, expiresAt = null] = await this.#redis.hmget(this.#streamKey(id), 'data', 'expiresAt')
    return decodeRecord(data, expiresAt, now)
  }

  async listStreams (clientId: string | undefined, now: number): Promise<StreamRecord[]> {
    const index = clientId === undefined ? this.#key('streams') : this.#key(`client:${keyPart(clientId)}`)
    const ids = await this.#redis.zrangebyscore(index, `(${now}`, '+inf')
    if (ids.length === 0) return []
    const pipeline = this.#redis.pipeline()
    for (const id of ids) pipeline.hmget(this.#streamKey(id), 'data', 'expiresAt')
    const rows = await pipeline.exec() ?? []
    const streams: StreamRecord[] = []
    for (const [err, row] of rows) {
      if (err !== null) throw err
      const [data, expiresAt] = row as [string | null, string | null]
      const record = decodeRecord(data, expiresAt, now)
      if (record !== null && (clientId === undefined || record.clientId === clientId)) streams.push(record)
    }
    return streams
  }

  async saveStream (stream: StreamRecord, options: { skipPending: boolean }, now: number): Promise<boolean> {
    const saved = await this.#scripts.gatehouseSignalsSave(...this.#streamKeys(stream.id, stream.clientId),
      String(now), stream.id, encodeRecord(stream), String(stream.expiresAt), options.skipPending ? '1' : '0')
    return saved === 1
  }

  async deleteStream (id: string, clientId: string): Promise<boolean> {
    return await this.#delete(id, clientId, '')
  }

  async poll (id: string, request: SignalPollRequest): Promise<SignalPollResult | null> {
    const stream = await this.#redis.hget(this.#streamKey(id), 'data')
    if (stream === null) return null
    const { clientId } = JSON.parse(stream) as StreamRecord
    const [head, streamKey, acked, client, streams] = this.#streamKeys(id, clientId)
    const result = await this.#scripts.gatehouseSignalsPoll(head, streamKey, acked, client, streams, this.#key('events'), this.#key('jti'),
      String(request.now), id, String(request.since), String(request.max), request.activeUntil === undefined ? '' : String(request.activeUntil),
      ...request.ack) as [number, ...string[]] | null
    if (result === null) return null
    const [more, ...rows] = result
    return { events: rows.map((row) => JSON.parse(row) as SignalEvent), more: more === 1 }
  }

  async prune (before: number, now: number): Promise<void> {
    await this.#scripts.gatehouseSignalsPrune(this.#key('events'), this.#key('jti'), String(before))
    const expired = await this.#redis.zrangebyscore(this.#key('streams'), '-inf', now, 'LIMIT', 0, 1000)
    for (const id of expired) {
      const data = await this.#redis.hget(this.#streamKey(id), 'data')
      const clientId = data === null ? undefined : (JSON.parse(data) as StreamRecord).clientId
      if (clientId !== undefined) await this.#delete(id, clientId, String(now))
      else await this.#redis.zrem(this.#key('streams'), id)
    }
  }

  onAppend (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  async lease (streamId: string, owner: string, ttlMs: number): Promise<boolean> {
    return await this.#scripts.gatehouseSignalsLease(this.#key(`lease:${keyPart(streamId)}`), owner, String(Math.max(1, Math.floor(ttlMs)))) === 1
  }

  async releaseLease (streamId: string, owner: string): Promise<void> {
    await this.#scripts.gatehouseSignalsRelease(this.#key(`lease:${keyPart(streamId)}`), owner)
  }

  /** Unsubscribes (the connections belong to the caller). */
  async close (): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#listeners.clear()
    this.#subscriber.off('message', this.#onMessage)
    this.#subscriber.off('ready', this.#notify)
    if (this.#opening !== undefined && this.#subscriber.status === 'ready') await this.#subscriber.unsubscribe(this.#channel).catch(() => {})
  }

  async #subscribe (): Promise<void> {
    this.#subscriber.on('message', this.#onMessage)
    // A reconnected subscriber missed what was published meanwhile: wake every poll to look.
    this.#subscriber.on('ready', this.#notify)
    await afterHandshake(this.#subscriber)
    await this.#subscriber.subscribe(this.#channel)
  }

  readonly #onMessage = (channel: string): void => {
    if (channel === this.#channel) this.#notify()
  }

  readonly #notify = (): void => {
    for (const listener of this.#listeners) listener()
  }

  async #delete (id: string, clientId: string, now: string): Promise<boolean> {
    const [, stream, acked, client, streams] = this.#streamKeys(id, clientId)
    return await this.#scripts.gatehouseSignalsDelete(stream, acked, client, streams, this.#key(`lease:${keyPart(id)}`), id, now) === 1
  }

  #key (name: string): string {
    return this.#base + name
  }

  #streamKey (id: string): string {
    return this.#key(`stream:${keyPart(id)}`)
  }

  /** head, stream, acked, the client's streams, every stream. */
  #streamKeys (id: string, clientId: string): [string, string, string, string, string] {
    return [this.#key('head'), this.#streamKey(id), this.#key(`acked:${keyPart(id)}`), this.#key(`client:${keyPart(clientId)}`), this.#key('streams')]
  }
}

/** The record without `expiresAt`, which has a field of its own. */
function encodeRecord (stream: StreamRecord): string {
  const { expiresAt: _expiresAt, ...rest } = stream
  return JSON.stringify(rest)
}

function decodeRecord (data: string | null, expiresAt: string | null, now: number): StreamRecord | null {
  if (data === null || expiresAt === null || Number(expiresAt) <= now) return null
  return { ...JSON.parse(data) as Omit<StreamRecord, 'expiresAt'>, expiresAt: Number(expiresAt) }
}

/**
 * ioredis sends a SUBSCRIBE issued during its handshake (status `connect`) at once, and its
 * ready check then fails in subscriber mode; in any other status the command waits in the
 * offline queue, which is safe.
 */
async function afterHandshake (client: RedisClient): Promise<void> {
  if (client.status !== 'connect') return
  await new Promise<void>((resolve) => {
    const done = (): void => { client.off('ready', done); client.off('close', done); resolve() }
    client.on('ready', done)
    client.on('close', done)
  })
}
