/**
 * The issuer as an OpenID Shared Signals transmitter (docs/shared-signals.md): revocations go
 * into the event log as CAEP session-revoked events, receivers take them by poll (routes/ssf.ts)
 * or push (push.ts), each event signed as a SET for the stream it goes to.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.ts'
import type { IssuerConfig } from '../config.ts'
import { OAuthError } from '../errors.ts'
import type { SignalEvent, SignalEventInput, SignalStore, StreamRecord } from '../stores/types.ts'
import type { TokenService } from '../tokens/token-service.ts'
import { accessTokenRevoked, keysChanged, sessionRevoked, SET_TYPE, type RevocationCause } from './events.ts'
import { PushDelivery } from './push.ts'
import { signalRetention } from './retention.ts'
import type { StreamContext } from './streams.ts'

/** How often expired events and streams are dropped (reads never see them anyway). */
const PRUNE_INTERVAL_MS = 60_000

export interface SharedSignalsOptions {
  config: IssuerConfig
  clock: Clock
  store: SignalStore
  tokens: TokenService
  log: FastifyBaseLogger
}

/** A poll waiting for events: woken by the next append, anywhere. */
export interface PollWaiter {
  readonly isWoken: boolean
}

class Waiter implements PollWaiter {
  isWoken = false
  onWake: (() => void) | undefined

  wake (): void {
    this.isWoken = true
    this.onWake?.()
  }
}

export type WaitOutcome = 'woken' | 'timeout' | 'aborted'

export class SharedSignals {
  readonly isEnabled: boolean
  readonly store: SignalStore
  readonly retentionMs: number
  readonly pollWaitMs: number
  readonly maxStreamsPerClient: number
  readonly streams: StreamContext
  readonly #issuer: string
  readonly #clock: Clock
  readonly #tokens: TokenService
  readonly #log: FastifyBaseLogger
  readonly #waiters = new Set<Waiter>()
  readonly #push: PushDelivery
  #isClosing = false
  #pruneTimer: NodeJS.Timeout | undefined
  #stopListening: (() => void) | undefined

  constructor (options: SharedSignalsOptions) {
    const { config } = options
    this.isEnabled = config.sharedSignals.enabled
    this.store = options.store
    this.retentionMs = signalRetention(config) * 1000
    this.pollWaitMs = config.sharedSignals.pollWait * 1000
    this.maxStreamsPerClient = config.sharedSignals.maxStreamsPerClient
    const base = config.issuer.replace(/\/$/, '')
    this.streams = {
      issuer: config.issuer,
      pollUrl: (streamId) => `${base}/ssf/poll/${streamId}`,
      inactivityTimeoutSeconds: config.sharedSignals.inactivityTimeout
    }
    this.#issuer = config.issuer
    this.#clock = options.clock
    this.#tokens = options.tokens
    this.#log = options.log
    this.#push = new PushDelivery({ signals: this, clock: options.clock, log: options.log })
  }

  get clock (): Clock {
    return this.#clock
  }

  /** Opens the log, starts pruning and push delivery. Nothing when disabled. */
  async start (): Promise<void> {
    if (!this.isEnabled) return
    await this.store.open()
    this.#stopListening = this.store.onAppend(this.#onAppend)
    await this.prune()
    this.#pruneTimer = setInterval(() => { this.prune().catch((err: unknown) => this.#log.warn({ err }, 'shared signals: pruning failed')) }, PRUNE_INTERVAL_MS)
    this.#pruneTimer.unref()
    this.#push.start()
  }

  /** Drops what retention and inactivity have expired. */
  async prune (): Promise<void> {
    const now = this.#clock.now()
    await this.store.prune(this.since(now), now)
  }

  /** Events appended before this (ms) are past retention. */
  since (now: number): number {
    return now - this.retentionMs
  }

  /**
   * Appends events to the log. One the log cannot take fails the request with a 503, so the
   * client retries: a receiver must never miss a revocation silently.
   */
  async emit (events: readonly SignalEventInput[]): Promise<void> {
    if (!this.isEnabled || events.length === 0) return
    const now = this.#clock.now()
    try {
      await this.store.append(events, now + this.retentionMs, now)
    } catch (err) {
      this.#log.error({ err }, 'shared signals: the event log cannot be written')
      throw new OAuthError('temporarily_unavailable', 503, 'the event log cannot be written, try again shortly', false)
    }
  }

  /** The session `sid` ended (`subject`: its user, when known). */
  async sessionRevoked (cause: RevocationCause, sid: string, subject?: string): Promise<void> {
    if (!this.#isNew(cause, `sid:${sid}`)) return
    await this.emit([sessionRevoked(cause, this.#issuer, this.#clock.now(), sid, subject)])
  }

  /** These access tokens were revoked: one event each (once per cause). */
  async accessTokensRevoked (cause: RevocationCause, jtis: readonly string[]): Promise<void> {
    const now = this.#clock.now()
    const fresh = jtis.filter((jti) => this.#isNew(cause, `jti:${jti}`))
    await this.emit(fresh.map((jti) => accessTokenRevoked(cause, this.#issuer, now, jti)))
  }

  /** The issuer's signing keys changed (KeyManager): receivers that asked for it refetch the JWKS. */
  async keysChanged (changes: ReadonlyArray<{ change: string, kid: string }>): Promise<void> {
    const now = this.#clock.now()
    await this.emit(changes.map((c) => keysChanged(now, c.change, c.kid)))
  }

  /** Marks the subject announced for `cause`; false when it was already. */
  #isNew (cause: RevocationCause, subject: string): boolean {
    if (cause.announced.has(subject)) return false
    cause.announced.add(subject)
    return true
  }

  /** The event as a SET for `stream` (SSF 1.0 4): `aud` the receiver, no `sub`, no `exp`. */
  async signSet (event: SignalEvent, stream: StreamRecord): Promise<string> {
    const claims = {
      jti: event.jti,
      aud: stream.clientId,
      iat: Math.floor(event.at / 1000),
      txn: event.txn,
      sub_id: event.subject,
      events: { [event.type]: event.payload }
    }
    return (await this.#tokens.sign(claims, SET_TYPE)).token
  }

  /** A push stream was created or changed: deliver it without waiting for the next scan. */
  streamChanged (): void {
    if (this.isEnabled && !this.#isClosing) this.#push.wake()
  }

  /** Register BEFORE reading the log, so an append in between is not missed. */
  waiter (): PollWaiter {
    const waiter = new Waiter()
    if (this.#isClosing) waiter.isWoken = true
    else this.#waiters.add(waiter)
    return waiter
  }

  /** Waits until the waiter is woken, `ms` pass, or `signal` aborts (the client went away). */
  async wait (pollWaiter: PollWaiter, ms: number, signal: AbortSignal): Promise<WaitOutcome> {
    const waiter = pollWaiter as Waiter
    if (waiter.isWoken) return 'woken'
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    try {
      return await new Promise<WaitOutcome>((resolve) => {
        waiter.onWake = () => resolve('woken')
        timer = setTimeout(() => resolve('timeout'), Math.max(0, ms))
        onAbort = () => resolve('aborted')
        if (signal.aborted) resolve('aborted')
        signal.addEventListener('abort', onAbort, { once: true })
      })
    } finally {
      clearTimeout(timer)
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
      waiter.onWake = undefined
      this.#waiters.delete(waiter)
    }
  }

  /** Forgets a waiter that will not wait after all (the read failed or found events). */
  forget (waiter: PollWaiter): void {
    this.#waiters.delete(waiter as Waiter)
  }

  /** Polls held open at this moment. */
  get waitingPolls (): number {
    return this.#waiters.size
  }

  get isClosing (): boolean {
    return this.#isClosing
  }

  /** The app is closing: every held poll answers now (with what it has: nothing). */
  releasePolls (): void {
    this.#isClosing = true
    this.#wakeAll()
  }

  /** Stops pruning and push delivery and releases the polls; the store is closed by its owner. */
  async close (): Promise<void> {
    this.releasePolls()
    clearInterval(this.#pruneTimer)
    this.#stopListening?.()
    await this.#push.close()
  }

  readonly #onAppend = (): void => {
    this.#wakeAll()
    this.#push.wake()
  }

  #wakeAll (): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const waiter of waiters) waiter.wake()
  }
}
