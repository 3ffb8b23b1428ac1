/**
 * The stream calls (SSF 1.0 Management API, RFC 8936 poll), over an authorised request function
 * that adds the access token (and renews it once on a 401).
 */
import type { Answer, RequestOptions } from './transport.ts'
import { expectObject, TransmitterError, urlMember } from './transport.ts'
import { KEYS_CHANGED, POLL_DELIVERY, SESSION_REVOKED, type SetError } from './wire.ts'

export type AuthorizedRequest = (url: string, options: Omit<RequestOptions, 'authorization'>) => Promise<Answer>

export interface Stream {
  id: string
  /** The transmitter-supplied `delivery.endpoint_url`. */
  pollUrl: string
  /** What the SETs' `aud` must hold: the client id, else the stream's `aud`. */
  audience: string | string[]
}

export interface CreateStreamRequest {
  issuer: string
  clientId: string | undefined
  description: string
  timeoutMs: number
  signal?: AbortSignal
}

const isAudience = (aud: unknown): aud is string | string[] =>
  (typeof aud === 'string' && aud !== '') ||
  (Array.isArray(aud) && aud.length > 0 && aud.every((one) => typeof one === 'string' && one !== ''))

/**
 * POST to the configuration endpoint, poll delivery (no `delivery`: SSF 1.0, Creating a Stream),
 * then the checks of the answer: `iss` is the transmitter (Creating a Stream) and `aud` holds the
 * client id when there is one (Validating a Create Stream Response). A stream that fails them
 * is deleted again (best effort). Throws TransmitterError.
 */
export async function createStream (call: AuthorizedRequest, endpoint: string, request: CreateStreamRequest): Promise<Stream> {
  const { timeoutMs, signal } = request
  const answer = await call(endpoint, {
    method: 'POST',
    json: { events_requested: [SESSION_REVOKED, KEYS_CHANGED], description: request.description },
    timeoutMs,
    signal
  })
  const config = expectObject(endpoint, answer, [201, 200])
  const id = config.stream_id
  if (typeof id !== 'string' || id === '') throw new TransmitterError(`${endpoint}: the new stream has no stream_id`)
  try {
    if (config.iss !== request.issuer) throw new TransmitterError(`${endpoint}: the new stream's iss is not ${request.issuer}`)
    const aud = config.aud
    if (!isAudience(aud)) throw new TransmitterError(`${endpoint}: the new stream has no aud`)
    const { clientId } = request
    if (clientId !== undefined && !(aud === clientId || (Array.isArray(aud) && aud.includes(clientId)))) {
      throw new TransmitterError(`${endpoint}: the new stream's aud does not name client ${clientId}`)
    }
    const delivery = config.delivery
    if (typeof delivery !== 'object' || delivery === null || (delivery as Record<string, unknown>).method !== POLL_DELIVERY) {
      throw new TransmitterError(`${endpoint}: the new stream is not a poll stream`)
    }
    const pollUrl = urlMember(endpoint, delivery as Record<string, unknown>, 'endpoint_url')
    return { id, pollUrl, audience: clientId ?? aud }
  } catch (err) {
    await deleteStream(call, endpoint, id, timeoutMs, signal).catch(() => {})
    throw err
  }
}

/** SSF 1.0, Deleting a Stream: 204, or 404 (already gone). Throws TransmitterError. */
export async function deleteStream (call: AuthorizedRequest, endpoint: string, id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const url = new URL(endpoint)
  url.searchParams.set('stream_id', id)
  const answer = await call(url.href, { method: 'DELETE', timeoutMs, signal })
  if (answer.status !== 204 && answer.status !== 200 && answer.status !== 404) {
    throw new TransmitterError(`${endpoint}: deleting the stream: HTTP ${answer.status}`, answer.status)
  }
}

export interface PollRequest {
  ack: string[]
  setErrs: Map<string, SetError>
  returnImmediately: boolean
  timeoutMs: number
  signal?: AbortSignal
}

export interface PollAnswer {
  /** jti -> compact SET (unchecked), in the transmitter's order (oldest first). */
  sets: Array<[string, unknown]>
  moreAvailable: boolean
}

/** RFC 8936 2.4: one poll, acknowledging and reporting. 'gone' for a 404 (the stream no longer exists). */
export async function poll (call: AuthorizedRequest, url: string, request: PollRequest): Promise<PollAnswer | 'gone'> {
  const json: Record<string, unknown> = { returnImmediately: request.returnImmediately }
  if (request.ack.length > 0) json.ack = request.ack
  // Object.fromEntries defines own properties: a jti such as "__proto__" stays a plain key.
  if (request.setErrs.size > 0) json.setErrs = Object.fromEntries(request.setErrs)
  const answer = await call(url, { method: 'POST', json, timeoutMs: request.timeoutMs, signal: request.signal })
  if (answer.status === 404) return 'gone'
  const body = expectObject(url, answer, [200])
  const sets = body.sets ?? {}
  if (typeof sets !== 'object' || sets === null || Array.isArray(sets)) throw new TransmitterError(`${url}: sets is not an object`, 200)
  return { sets: Object.entries(sets), moreAvailable: body.moreAvailable === true }
}
