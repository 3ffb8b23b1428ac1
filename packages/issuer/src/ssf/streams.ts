/**
 * Stream configurations (SSF 1.0 8.1.1): reading what a receiver sends (create, update,
 * replace) and the configuration the transmitter answers with.
 */
import { randomBytes } from 'node:crypto'
import type { DeliveryMethod, StreamRecord, StreamStatus } from '../stores/types.ts'
import { EVENTS_BY_DEFAULT, EVENTS_SUPPORTED, POLL_DELIVERY, PUSH_DELIVERY } from './events.ts'
import { invalidSsfRequest } from './errors.ts'

/** SSF 1.0 8.1.1: seconds between verification requests, at least. */
export const MIN_VERIFICATION_INTERVAL = 5
export const MAX_DESCRIPTION_LENGTH = 256
const MAX_URL_LENGTH = 2048
const MAX_HEADER_LENGTH = 4096
const MAX_EVENTS_REQUESTED = 64

/** Stream ids we give out: 128 random bits, base64url. Anything else is unknown. */
const STREAM_ID = /^[A-Za-z0-9_-]{1,64}$/

export function newStreamId (): string {
  return randomBytes(16).toString('base64url')
}

export function isStreamId (value: unknown): value is string {
  return typeof value === 'string' && STREAM_ID.test(value)
}

/** What a receiver may set (SSF 1.0 8.1.1 "Receiver-Supplied"). */
export interface ReceiverSettings {
  delivery?: { method: DeliveryMethod, endpointUrl?: string, authorizationHeader?: string }
  eventsRequested?: string[]
  description?: string
}

export type JsonObject = Record<string, unknown>

export function jsonObject (body: unknown, what = 'the body'): JsonObject {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidSsfRequest(`${what} must be a JSON object`)
  return body as JsonObject
}

function optionalString (body: JsonObject, name: string, max: number): string | undefined {
  const value = body[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw invalidSsfRequest(`${name} must be a string`)
  if (value.length > max) throw invalidSsfRequest(`${name} is longer than ${max} characters`)
  return value
}

function readDelivery (value: unknown): ReceiverSettings['delivery'] {
  const delivery = jsonObject(value, 'delivery')
  const method = delivery.method
  if (method !== POLL_DELIVERY && method !== PUSH_DELIVERY) throw invalidSsfRequest(`delivery.method must be ${POLL_DELIVERY} or ${PUSH_DELIVERY}`)
  const endpointUrl = optionalString(delivery, 'endpoint_url', MAX_URL_LENGTH)
  const authorizationHeader = optionalString(delivery, 'authorization_header', MAX_HEADER_LENGTH)
  if (method === POLL_DELIVERY) {
    if (authorizationHeader !== undefined) throw invalidSsfRequest('authorization_header is for push delivery')
    return { method, ...(endpointUrl === undefined ? {} : { endpointUrl }) }
  }
  if (endpointUrl === undefined) throw invalidSsfRequest('push delivery needs delivery.endpoint_url')
  let url: URL
  try {
    url = new URL(endpointUrl)
  } catch {
    throw invalidSsfRequest('delivery.endpoint_url must be an http or https URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidSsfRequest('delivery.endpoint_url must be an http or https URL')
  // Sent as a header as it is: no control characters (no header injection).
  if (authorizationHeader !== undefined && (authorizationHeader === '' || hasControlCharacter(authorizationHeader))) {
    throw invalidSsfRequest('delivery.authorization_header must be a non-empty header value')
  }
  return { method, endpointUrl, ...(authorizationHeader === undefined ? {} : { authorizationHeader }) }
}

/** Any control character but a tab (RFC 9110 5.5: not in a field value). */
function hasControlCharacter (value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true
  }
  return false
}

/** The receiver-supplied members present in `body`, checked. */
export function readReceiverSettings (body: JsonObject): ReceiverSettings {
  const settings: ReceiverSettings = {}
  if (body.delivery !== undefined) settings.delivery = readDelivery(body.delivery)
  if (body.events_requested !== undefined) {
    const events = body.events_requested
    if (!Array.isArray(events) || events.some((e) => typeof e !== 'string' || e.length > MAX_URL_LENGTH) || events.length > MAX_EVENTS_REQUESTED) {
      throw invalidSsfRequest(`events_requested must be an array of at most ${MAX_EVENTS_REQUESTED} event type URIs`)
    }
    settings.eventsRequested = [...new Set(events as string[])]
  }
  const description = optionalString(body, 'description', MAX_DESCRIPTION_LENGTH)
  if (description !== undefined) settings.description = description
  return settings
}

/** SSF 1.0 8.1.1: what it gets is what it asked for that we send (the standard ones when it did not ask). */
export function eventsDelivered (eventsRequested: readonly string[] | undefined): string[] {
  if (eventsRequested === undefined) return [...EVENTS_BY_DEFAULT]
  return EVENTS_SUPPORTED.filter((e) => eventsRequested.includes(e))
}

export interface StreamContext {
  issuer: string
  /** The poll endpoint of a stream. */
  pollUrl: (streamId: string) => string
  inactivityTimeoutSeconds: number
}

/** The stream with `settings` applied (all of them replace the old ones: PUT; only those given: PATCH). */
export function applySettings (stream: StreamRecord, settings: ReceiverSettings, context: StreamContext, replace: boolean): StreamRecord {
  const next: StreamRecord = { ...stream }
  if (replace || settings.delivery !== undefined) {
    const delivery = settings.delivery ?? { method: POLL_DELIVERY }
    next.delivery = delivery.method === POLL_DELIVERY
      ? { method: POLL_DELIVERY, endpointUrl: context.pollUrl(stream.id) }
      : { method: PUSH_DELIVERY, endpointUrl: delivery.endpointUrl!, ...(delivery.authorizationHeader === undefined ? {} : { authorizationHeader: delivery.authorizationHeader }) }
  }
  if (replace || settings.eventsRequested !== undefined) {
    if (settings.eventsRequested === undefined) delete next.eventsRequested
    else next.eventsRequested = settings.eventsRequested
    next.eventsDelivered = eventsDelivered(settings.eventsRequested)
  }
  if (replace || settings.description !== undefined) {
    if (settings.description === undefined) delete next.description
    else next.description = settings.description
  }
  return next
}

/** A new stream of `clientId`, enabled, with `settings` (poll delivery when none is given). */
export function newStream (clientId: string, settings: ReceiverSettings, context: StreamContext, now: number): StreamRecord {
  const base: StreamRecord = {
    id: newStreamId(),
    clientId,
    delivery: { method: POLL_DELIVERY, endpointUrl: '' },
    eventsDelivered: [],
    status: 'enabled',
    createdAt: now,
    expiresAt: now + context.inactivityTimeoutSeconds * 1000
  }
  return applySettings(base, settings, context, true)
}

/** SSF 1.0 8.1.1.3/8.1.1.4: transmitter-supplied members may be sent back, but must match. */
export function checkTransmitterSupplied (body: JsonObject, current: JsonObject): void {
  for (const name of ['iss', 'aud', 'events_supported', 'events_delivered', 'inactivity_timeout', 'min_verification_interval']) {
    if (body[name] !== undefined && JSON.stringify(body[name]) !== JSON.stringify(current[name])) {
      throw invalidSsfRequest(`${name} is set by the transmitter and does not match`)
    }
  }
  const delivery = body.delivery as JsonObject | undefined
  const currentDelivery = current.delivery as JsonObject
  if (delivery?.method === POLL_DELIVERY && currentDelivery.method === POLL_DELIVERY && delivery.endpoint_url !== undefined && delivery.endpoint_url !== currentDelivery.endpoint_url) {
    throw invalidSsfRequest('a poll stream\'s endpoint_url is set by the transmitter and does not match')
  }
}

/** The configuration as sent to the receiver (SSF 1.0 8.1.1). The push authorization header is never echoed. */
export function streamConfiguration (stream: StreamRecord, context: StreamContext): JsonObject {
  return {
    stream_id: stream.id,
    iss: context.issuer,
    aud: stream.clientId,
    delivery: { method: stream.delivery.method, endpoint_url: stream.delivery.endpointUrl },
    events_supported: [...EVENTS_SUPPORTED],
    ...(stream.eventsRequested === undefined ? {} : { events_requested: stream.eventsRequested }),
    events_delivered: stream.eventsDelivered,
    ...(stream.description === undefined ? {} : { description: stream.description }),
    inactivity_timeout: context.inactivityTimeoutSeconds,
    min_verification_interval: MIN_VERIFICATION_INTERVAL
  }
}

const STATUSES: readonly StreamStatus[] = ['enabled', 'paused', 'disabled']

export function readStatus (body: JsonObject): { status: StreamStatus, reason?: string } {
  const status = body.status
  if (!STATUSES.includes(status as StreamStatus)) throw invalidSsfRequest('status must be enabled, paused or disabled')
  const reason = optionalString(body, 'reason', MAX_DESCRIPTION_LENGTH)
  return { status: status as StreamStatus, ...(reason === undefined ? {} : { reason }) }
}
