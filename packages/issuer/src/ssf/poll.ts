/**
 * Poll delivery (RFC 8936): acknowledgements in, the stream's oldest unacknowledged SETs out,
 * or, with nothing to deliver, the request held until an event is appended or `pollWait`
 * passes (a long poll).
 */
import type { FastifyBaseLogger } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { StreamRecord } from '../stores/types.ts'
import { invalidSsfRequest, streamNotFound } from './errors.ts'
import type { JsonObject } from './streams.ts'
import type { SharedSignals } from './transmitter.ts'

/** RFC 8936 2.4: the most SETs one answer holds (and the default). */
export const MAX_EVENTS = 1000
/** Most acknowledgements and errors one request may carry. */
const MAX_ACKS = 10_000
const MAX_JTI_LENGTH = 256

export interface PollRequest {
  maxEvents: number
  returnImmediately: boolean
  /** Acknowledged `jti`s, and those reported in `setErrs`. */
  ack: string[]
  setErrs: Array<{ jti: string, err: string, description?: string }>
}

/** RFC 8936 2.4: `maxEvents`, `returnImmediately`, `ack`, `setErrs`; anything else is ignored. */
export function readPollRequest (body: JsonObject): PollRequest {
  const { maxEvents = MAX_EVENTS, returnImmediately = false, ack = [], setErrs = {} } = body
  if (typeof maxEvents !== 'number' || !Number.isSafeInteger(maxEvents) || maxEvents < 0) throw invalidSsfRequest('maxEvents must be a non-negative integer')
  if (typeof returnImmediately !== 'boolean') throw invalidSsfRequest('returnImmediately must be true or false')
  if (!Array.isArray(ack) || ack.length > MAX_ACKS || ack.some((j) => typeof j !== 'string' || j.length > MAX_JTI_LENGTH)) {
    throw invalidSsfRequest(`ack must be an array of at most ${MAX_ACKS} jti strings`)
  }
  if (typeof setErrs !== 'object' || setErrs === null || Array.isArray(setErrs)) throw invalidSsfRequest('setErrs must be an object of jti -> {err, description}')
  const errs: PollRequest['setErrs'] = []
  for (const [jti, value] of Object.entries(setErrs as JsonObject)) {
    const { err, description } = (typeof value === 'object' && value !== null ? value : {}) as JsonObject
    if (jti.length > MAX_JTI_LENGTH || typeof err !== 'string' || (description !== undefined && typeof description !== 'string')) {
      throw invalidSsfRequest('each setErrs member must be {"err": string, "description"?: string}')
    }
    errs.push({ jti, err: err.slice(0, 100), ...(description === undefined ? {} : { description: description.slice(0, 300) }) })
  }
  if (ack.length + errs.length > MAX_ACKS) throw invalidSsfRequest(`at most ${MAX_ACKS} acknowledgements and errors at once`)
  return { maxEvents: Math.min(maxEvents, MAX_EVENTS), returnImmediately, ack: ack as string[], setErrs: errs }
}

export interface PollAnswer {
  sets: Record<string, string>
  moreAvailable: boolean
}

/**
 * Answers one poll of `stream`; null when the client went away meanwhile (`gone` aborted).
 * Throws a 404 when the stream is gone.
 */
export async function pollStream (signals: SharedSignals, stream: StreamRecord, request: PollRequest, gone: AbortSignal, log: FastifyBaseLogger): Promise<PollAnswer | null> {
  // RFC 8936 2.4.4: the receiver's errors are logged, and the SETs are not delivered again.
  for (const e of request.setErrs) audit(log, 'ssf.poll.set_error', { stream_id: stream.id, client_id: stream.clientId, jti: e.jti, reason: e.err, description: e.description }, 'warn')
  if (request.ack.length > 0) audit(log, 'ssf.poll.acknowledged', { stream_id: stream.id, client_id: stream.clientId, count: request.ack.length }, 'debug')
  let ack = [...request.ack, ...request.setErrs.map((e) => e.jti)]
  const deadline = Date.now() + signals.pollWaitMs
  for (;;) {
    const waiter = signals.waiter()
    const now = signals.clock.now()
    let result
    try {
      result = await signals.store.poll(stream.id, {
        ack,
        max: request.maxEvents,
        since: signals.since(now),
        now,
        // RFC 8936 polling is receiver activity (SSF 1.0 8.1.1 inactivity_timeout).
        activeUntil: now + signals.streams.inactivityTimeoutSeconds * 1000
      })
    } catch (err) {
      signals.forget(waiter)
      throw err
    }
    ack = []
    if (result === null) {
      signals.forget(waiter)
      throw streamNotFound()
    }
    const isDone = result.events.length > 0 || request.returnImmediately || request.maxEvents === 0 ||
      stream.status !== 'enabled' || signals.isClosing
    if (isDone) {
      signals.forget(waiter)
      const sets: Record<string, string> = {}
      for (const event of result.events) sets[event.jti] = await signals.signSet(event, stream)
      return { sets, moreAvailable: result.more }
    }
    const outcome = await signals.wait(waiter, deadline - Date.now(), gone)
    if (outcome === 'aborted') return null
    if (outcome === 'timeout') return { sets: {}, moreAvailable: false }
  }
}
