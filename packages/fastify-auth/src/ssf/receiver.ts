/**
 * A Shared Signals receiver (SSF 1.0, poll delivery per RFC 8936) that feeds a revocation list.
 *
 * In the background: read the transmitter metadata, get a token, create a poll stream, poll with
 * `returnImmediately` until `moreAvailable` is false (ready), then long-poll. Each SET is
 * verified, applied (awaited), and acknowledged in the next poll; a bad one is reported in
 * `setErrs`. Failures back off (0.5 s doubling to 30 s, with jitter); a 404 on the poll means the
 * stream is gone, and a new one replays the retained events. Nothing escapes the loop.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { Discovery } from '../discovery.ts'
import { KeySet } from '../key-set.ts'
import { AccessTokens } from './access-token.ts'
import type { KeyChange } from '../revocation/types.ts'
import type { ApplyContext } from './apply.ts'
import { Deliveries } from './deliveries.ts'
import { fetchMetadata, type TransmitterMetadata } from './metadata.ts'
import { parseSignalOptions, type ResolvedSignalOptions, type SignalReceiverOptions } from './options.ts'
import { SetVerifier } from './set-verifier.ts'
import { createStream, deleteStream, poll, type AuthorizedRequest, type Stream } from './stream.ts'
import { NotOfferedError, request, TransmitterError } from './transport.ts'

/** Counters for metrics; plain numbers, read at will. */
export interface SignalReceiverStats {
  /** session-revoked events written to the revocation list. */
  applied: number
  /** SETs refused (reported in `setErrs`). */
  refused: number
  /** Events acknowledged with no effect: verification, stream-updated, other issuers, subjects without a session or token. */
  ignored: number
  /** Poll answers received. */
  polls: number
  /** Failed attempts (unreachable, timeouts, unexpected answers, SETs that could not be applied yet). */
  failures: number
}

/** RFC 8936 polls are held up to pollWait; the answer may take this much longer to arrive. */
const POLL_GRACE_MS = 5000
const BACKOFF_FIRST_MS = 500
const BACKOFF_MAX_MS = 30_000
/** An empty answer to a long poll sooner than this (a paused stream, a transmitter that does not hold polls) waits the rest. */
const MIN_EMPTY_POLL_MS = 1000
/** Known keys are refreshed in the background after this long, as the verifier's JWKS are. */
const KEYS_MAX_AGE_MS = 60_000

/** Equal jitter: half the delay fixed, half random, so a fleet of gateways does not retry in step. */
function backoff (failures: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(failures - 1, 16))
  return base / 2 + Math.random() * base / 2
}

const describe = (err: unknown): string => err instanceof Error ? err.message : String(err)

export class SignalReceiver {
  readonly #options: ResolvedSignalOptions
  readonly #tokens: AccessTokens
  readonly #deliveries: Deliveries
  readonly #abort = new AbortController()
  readonly #ready: Promise<void>
  #settleReady: ((err?: Error) => void) | undefined
  #loop: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #metadata: TransmitterMetadata | undefined
  #keys: { uri: string, set: KeySet } | undefined
  #stream: Stream | undefined
  #streamPolled = false
  #caughtUp = false
  /** When the last answer was fully applied (epoch ms). */
  #lastHeard = -Infinity
  /** True while nothing failed since that answer: an in-flight poll then counts as live. */
  #isLive = false
  #pollStartedAt: number | undefined
  /** Set when an optional transmitter turned out not to be one: the receiver stopped for good. */
  #notOffered = false
  readonly #stats: SignalReceiverStats = { applied: 0, refused: 0, ignored: 0, polls: 0, failures: 0 }
  readonly #keyListeners: Array<(change: KeyChange) => void> = []

  /** Checks the options (throws an AuthOptionsError naming a bad one); no I/O. */
  constructor (options: SignalReceiverOptions) {
    this.#options = parseSignalOptions(options)
    const { credentials, issuer, timeoutMs, clock, algorithms } = this.#options
    this.#tokens = new AccessTokens(credentials, issuer, timeoutMs, clock)
    this.#deliveries = new Deliveries(new SetVerifier({ issuer, algorithms, clock }), this.#stats, this.#options.log)
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#settleReady = (err) => { if (err === undefined) resolve(); else reject(err) }
    })
    this.#ready.catch(() => {}) // a receiver closed before its catch-up rejects only for callers of ready()
  }

  /** Starts the background loop (once). */
  start (): void {
    if (this.#loop !== undefined || this.#closing !== undefined) return
    this.#loop = this.#run().catch((err: unknown) => {
      this.#options.log.warn({ transmitter: this.#options.issuer, err: describe(err) }, 'shared signals: receiver loop stopped')
    })
  }

  /** Resolves after the first catch-up (every retained event applied); rejects if closed first. */
  async ready (): Promise<void> {
    await this.#ready
  }

  /**
   * Milliseconds the list may be missing this transmitter's events: Infinity before the first
   * catch-up; 0 while a poll is held open and not overdue; else the time since the last answer
   * that was fully applied, or since a held poll failed or became overdue, whichever is later.
   */
  get staleness (): number {
    if (this.#notOffered) return 0
    if (!this.#caughtUp) return Infinity
    const now = this.#options.clock.now()
    const started = this.#pollStartedAt
    if (this.#isLive && started !== undefined && now - started <= this.#options.pollWaitMs + POLL_GRACE_MS) return 0
    return Math.max(0, now - this.#lastHeard)
  }

  /**
   * Calls `listener` when the transmitter announces a change of its own signing keys (the
   * receiver applies it to the keys it verifies SETs with first). The gateway passes these on to
   * its token verifier when the transmitter is its issuer.
   */
  onKeyChange (listener: (change: KeyChange) => void): void {
    this.#keyListeners.push(listener)
  }

  get stats (): SignalReceiverStats {
    return { ...this.#stats }
  }

  /** Stops the loop (aborting a held poll) and deletes the stream, within `timeout`. Never rejects. */
  async close (): Promise<void> {
    this.#closing ??= this.#shutdown()
    await this.#closing
  }

  async #shutdown (): Promise<void> {
    this.#abort.abort()
    await this.#loop
    this.#settleReady?.(new Error(`shared signals: the receiver for ${this.#options.issuer} was closed before its first catch-up`))
    this.#settleReady = undefined
    const stream = this.#stream
    const metadata = this.#metadata
    this.#stream = undefined
    if (stream === undefined || metadata === undefined) return
    const { issuer, timeoutMs, log } = this.#options
    try {
      // One deadline for the token and the delete together.
      await deleteStream(this.#call, metadata.configurationEndpoint, stream.id, timeoutMs, AbortSignal.timeout(timeoutMs))
      log.info({ transmitter: issuer, stream_id: stream.id }, 'shared signals: stream deleted')
    } catch (err) {
      log.warn({ transmitter: issuer, stream_id: stream.id, err: describe(err) }, 'shared signals: the stream could not be deleted; the transmitter drops it when inactive')
    }
  }

  get #closed (): boolean {
    return this.#abort.signal.aborted
  }

  async #run (): Promise<void> {
    let failures = 0
    while (!this.#closed) {
      let isDone: boolean
      try {
        isDone = await this.#cycle()
      } catch (err) {
        if (this.#closed) return
        if (err instanceof NotOfferedError && this.#options.optional) {
          this.#giveUp(err)
          return
        }
        this.#options.log.warn({ transmitter: this.#options.issuer, err: describe(err), failures: failures + 1 }, 'shared signals: transmitter call failed; retrying')
        isDone = false
      }
      if (isDone) {
        failures = 0
        continue
      }
      this.#isLive = false
      this.#stats.failures++
      failures++
      await delay(backoff(failures), undefined, { signal: this.#abort.signal }).catch(() => {})
    }
  }

  /** An optional transmitter that is none: say so once, and count as neither stale nor pending. */
  #giveUp (err: NotOfferedError): void {
    this.#notOffered = true
    this.#options.log.warn({ transmitter: this.#options.issuer, err: err.message }, 'shared signals: NOT receiving revocations from this issuer (it offers no Shared Signals stream to this client); revocations made there reach this gateway only through Redis or a logout through it')
    this.#settleReady?.()
    this.#settleReady = undefined
  }

  /** Whether an optional transmitter turned out not to be one (the receiver stopped). */
  get isOffered (): boolean {
    return !this.#notOffered
  }

  /** One poll and its processing. True when all went well; false (or a throw) to back off. */
  async #cycle (): Promise<boolean> {
    const { clock, pollWaitMs, log, issuer } = this.#options
    const stream = this.#stream ?? await this.#open()
    const answers = this.#deliveries.pending()
    // After a failure too: an immediate answer tells at once that the transmitter is back.
    const returnImmediately = !this.#caughtUp || !this.#isLive
    const started = this.#pollStartedAt = clock.now()
    let answer: Awaited<ReturnType<typeof poll>>
    try {
      answer = await poll(this.#call, stream.pollUrl, { ...answers, returnImmediately, timeoutMs: pollWaitMs + POLL_GRACE_MS, signal: this.#abort.signal })
    } catch (err) {
      this.#heldUntilNow(started)
      throw err
    } finally {
      this.#pollStartedAt = undefined
    }
    if (answer === 'gone') {
      this.#heldUntilNow(started)
      log.info({ transmitter: issuer, stream_id: stream.id }, 'shared signals: the stream no longer exists; creating a new one (it replays the retained events)')
      const wasPolled = this.#streamPolled
      this.#stream = undefined
      this.#deliveries.clear()
      // A stream gone before its first answer is a transmitter problem: back off rather than spin.
      return wasPolled
    }
    this.#stats.polls++
    this.#streamPolled = true
    this.#deliveries.answered(answers)
    const deferred = await this.#handle(stream, answer.sets)
    if (this.#closed) return true
    if (deferred > 0) return false
    this.#lastHeard = clock.now()
    this.#isLive = true
    if (!this.#caughtUp && !answer.moreAvailable) {
      this.#caughtUp = true
      this.#settleReady?.()
      this.#settleReady = undefined
      log.info({ transmitter: issuer, stream_id: stream.id }, 'shared signals: caught up')
    }
    const elapsed = clock.now() - started
    if (!returnImmediately && answer.sets.length === 0 && elapsed < MIN_EMPTY_POLL_MS) {
      await delay(MIN_EMPTY_POLL_MS - elapsed, undefined, { signal: this.#abort.signal }).catch(() => {})
    }
    return true
  }

  /**
   * staleness said 0 while a poll started live was held: once it ends without an answer to
   * apply, staleness goes on from then (or from when it became overdue) instead of jumping back
   * to the answer before it.
   */
  #heldUntilNow (started: number): void {
    if (!this.#isLive) return
    const endedAt = Math.min(this.#options.clock.now(), started + this.#options.pollWaitMs + POLL_GRACE_MS)
    this.#lastHeard = Math.max(this.#lastHeard, endedAt)
  }

  /** Metadata, keys, and a new poll stream. Throws TransmitterError. */
  async #open (): Promise<Stream> {
    const { issuer, metadataUrl, timeoutMs, jwksCooldownMs, clock, log, credentials, description } = this.#options
    const signal = this.#abort.signal
    const metadata = await fetchMetadata(metadataUrl, issuer, timeoutMs, signal)
    if (this.#keys?.uri !== metadata.jwksUri) {
      const set = new KeySet({
        jwksUri: metadata.jwksUri,
        discovery: new Discovery(metadataUrl, issuer, timeoutMs, clock), // unused: the JWKS is named
        cooldown: jwksCooldownMs,
        maxAge: KEYS_MAX_AGE_MS,
        timeout: timeoutMs,
        clock,
        log
      })
      this.#keys = { uri: metadata.jwksUri, set }
    }
    this.#metadata = metadata
    const stream = await createStream(this.#call, metadata.configurationEndpoint, { issuer, clientId: credentials.clientId, description, timeoutMs, signal })
    this.#stream = stream
    this.#streamPolled = false
    log.info({ transmitter: issuer, stream_id: stream.id }, 'shared signals: stream created')
    return stream
  }

  /** Verifies and applies the SETs of one answer; returns how many must wait for a later poll. */
  async #handle (stream: Stream, sets: Array<[string, unknown]>): Promise<number> {
    const keys = this.#keys?.set
    if (keys === undefined) throw new TransmitterError('no keys') // #open always sets them
    const { issuer, appliesTo, revocations, entryTtl, log } = this.#options
    const context: ApplyContext = { transmitter: issuer, appliesTo, revocations, entryTtl, streamId: stream.id, log, keyChanged: this.#keyChanged }
    return await this.#deliveries.handle(sets, stream.audience, keys, context, this.#abort.signal)
  }

  readonly #keyChanged = (change: KeyChange): void => {
    this.#keys?.set.announce(change).catch(() => {})
    for (const listener of this.#keyListeners) {
      try {
        listener(change)
      } catch (err) {
        this.#options.log.warn({ transmitter: this.#options.issuer, err: describe(err) }, 'shared signals: a key change listener threw')
      }
    }
  }

  /** A request with the access token; a 401 gets a new token and one more try (client credentials only). */
  readonly #call: AuthorizedRequest = async (url, options) => {
    const token = await this.#tokens.get(options.signal)
    const answer = await request(url, { ...options, authorization: `Bearer ${token}` })
    if (answer.status !== 401 || !this.#tokens.isRenewable) return answer
    this.#tokens.invalidate(token)
    const renewed = await this.#tokens.get(options.signal)
    return await request(url, { ...options, authorization: `Bearer ${renewed}` })
  }
}
