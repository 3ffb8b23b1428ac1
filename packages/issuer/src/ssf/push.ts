/**
 * Push delivery (RFC 8935) of every enabled push stream: one worker per stream POSTs its SETs
 * oldest first. 202 is delivered; 400 is the receiver refusing the SET (logged, not sent
 * again); anything else, or no answer within 5 s, is sent again after a back-off (1 s doubling
 * to 60 s) for as long as the event is retained. With a shared store, a lease makes one
 * instance at a time deliver a stream.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { Clock } from '../clock.ts'
import type { SignalEvent, StreamRecord } from '../stores/types.ts'
import { PUSH_DELIVERY } from './events.ts'
import type { SharedSignals } from './transmitter.ts'

const TIMEOUT_MS = 5_000
const FIRST_BACKOFF_MS = 1_000
const MAX_BACKOFF_MS = 60_000
/** How often idle workers look again (and renew their lease), and streams are scanned. */
const CHECK_MS = 5_000
/** A lease outlives several checks: an instance that died is replaced within this time. */
const LEASE_MS = 30_000
const BATCH = 50

type Outcome = 'delivered' | 'refused' | 'retry'

export interface PushDeliveryOptions {
  signals: SharedSignals
  clock: Clock
  log: FastifyBaseLogger
}

export class PushDelivery {
  readonly #signals: SharedSignals
  readonly #clock: Clock
  readonly #log: FastifyBaseLogger
  /** This instance, as a lease holder. */
  readonly #owner = randomUUID()
  readonly #workers = new Map<string, Promise<void>>()
  readonly #closing = new AbortController()
  /** Idle workers, woken by an append. */
  readonly #idle = new Set<() => void>()
  /** Counts appends, so a worker sees one that came while it was reading. */
  #appends = 0
  #timer: NodeJS.Timeout | undefined
  #scan: Promise<void> | undefined
  #isScanWanted = false

  constructor (options: PushDeliveryOptions) {
    this.#signals = options.signals
    this.#clock = options.clock
    this.#log = options.log
  }

  start (): void {
    this.#requestScan()
    this.#timer = setInterval(() => { this.#requestScan() }, CHECK_MS)
    this.#timer.unref()
  }

  /** Something was appended, or a stream changed. */
  wake (): void {
    this.#appends++
    for (const resume of [...this.#idle]) resume()
    this.#requestScan()
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    this.#closing.abort()
    for (const resume of [...this.#idle]) resume()
    await this.#scan
    await Promise.allSettled(this.#workers.values())
  }

  #requestScan (): void {
    if (this.#closing.signal.aborted) return
    this.#isScanWanted = true
    this.#scan ??= this.#scanStreams().finally(() => { this.#scan = undefined })
  }

  /** Starts a worker for every enabled push stream that has none here. */
  async #scanStreams (): Promise<void> {
    while (this.#isScanWanted && !this.#closing.signal.aborted) {
      this.#isScanWanted = false
      let streams: StreamRecord[]
      try {
        streams = await this.#signals.store.listStreams(undefined, this.#clock.now())
      } catch (err) {
        this.#log.warn({ err }, 'shared signals: cannot list the push streams')
        return
      }
      for (const stream of streams) {
        if (stream.delivery.method !== PUSH_DELIVERY || stream.status !== 'enabled' || this.#workers.has(stream.id)) continue
        this.#workers.set(stream.id, this.#deliverStream(stream.id).finally(() => this.#workers.delete(stream.id)))
      }
    }
  }

  async #deliverStream (id: string): Promise<void> {
    const store = this.#signals.store
    let backoff = FIRST_BACKOFF_MS
    let retryAt = 0
    try {
      while (!this.#closing.signal.aborted) {
        if (!await store.lease(id, this.#owner, LEASE_MS)) return
        const stream = await store.getStream(id, this.#clock.now())
        if (stream === null || stream.delivery.method !== PUSH_DELIVERY || stream.status !== 'enabled') return
        if (Date.now() < retryAt) {
          await this.#pause(Math.min(retryAt - Date.now(), CHECK_MS), false)
          continue
        }
        const seen = this.#appends
        const now = this.#clock.now()
        const pending = await store.poll(id, { ack: [], max: BATCH, since: this.#signals.since(now), now })
        if (pending === null) return
        if (pending.events.length === 0) {
          if (seen === this.#appends) await this.#pause(CHECK_MS, true)
          continue
        }
        const done: string[] = []
        let isFailing = false
        for (const event of pending.events) {
          const outcome = await this.#deliver(stream, event)
          if (outcome === 'retry') {
            isFailing = true
            break
          }
          done.push(event.jti)
        }
        if (done.length > 0) await store.poll(id, { ack: done, max: 0, since: this.#signals.since(now), now: this.#clock.now() })
        if (isFailing) {
          retryAt = Date.now() + backoff
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
        } else {
          backoff = FIRST_BACKOFF_MS
        }
      }
    } catch (err) {
      // The store is down: the next scan starts the stream again.
      if (!this.#closing.signal.aborted) this.#log.warn({ err, stream_id: id }, 'shared signals: push delivery stopped')
    } finally {
      await store.releaseLease(id, this.#owner).catch(() => {})
    }
  }

  /** One SET to the receiver (RFC 8935 2). */
  async #deliver (stream: StreamRecord, event: SignalEvent): Promise<Outcome> {
    const set = await this.#signals.signSet(event, stream)
    const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json' }
    if (stream.delivery.authorizationHeader !== undefined) headers.authorization = stream.delivery.authorizationHeader
    // Not the endpoint URL: a receiver may carry a secret in it.
    const log = { stream_id: stream.id, client_id: stream.clientId, jti: event.jti }
    try {
      const response = await fetch(stream.delivery.endpointUrl, {
        method: 'POST',
        headers,
        body: set,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), this.#closing.signal])
      })
      if (response.status === 202) {
        await response.body?.cancel()
        audit(this.#log, 'ssf.push.delivered', { ...log, status: 202 }, 'debug')
        return 'delivered'
      }
      if (response.status === 400) {
        // RFC 8935 2.3: the receiver refuses this SET for good; it says why in {err, description}.
        const refusal = parseRefusal(await response.text())
        audit(this.#log, 'ssf.push.refused', { ...log, status: 400, reason: refusal.err, description: refusal.description }, 'warn')
        return 'refused'
      }
      await response.body?.cancel()
      audit(this.#log, 'ssf.push.failed', { ...log, status: response.status, reason: 'bad_status' }, 'warn')
    } catch (err) {
      if (!this.#closing.signal.aborted) audit(this.#log, 'ssf.push.failed', { ...log, status: null, reason: 'no_answer', description: (err as Error).message }, 'warn')
    }
    return 'retry'
  }

  /** Waits `ms`, or less when closing (or, if `isWakeable`, on an append). */
  async #pause (ms: number, isWakeable: boolean): Promise<void> {
    if (this.#closing.signal.aborted) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#idle.delete(done)
        this.#closing.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      if (isWakeable) this.#idle.add(done)
      this.#closing.signal.addEventListener('abort', done, { once: true })
    })
  }
}

/** The `err` and `description` of a refusal, shortened for the log. */
function parseRefusal (text: string): { err?: string, description?: string } {
  try {
    const body = JSON.parse(text) as { err?: unknown, description?: unknown }
    return {
      ...(typeof body.err === 'string' ? { err: body.err.slice(0, 100) } : {}),
      ...(typeof body.description === 'string' ? { description: body.description.slice(0, 300) } : {})
    }
  } catch {
    return {}
  }
}
