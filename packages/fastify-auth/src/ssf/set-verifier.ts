/**
 * Verifies one Security Event Token (RFC 8417) as SSF 1.0 profiles it: an allowed asymmetric
 * algorithm, `typ: secevent+jwt`, a signature by one of the transmitter's keys, `iss`, `aud`,
 * `iat`, `jti`, and `events` with exactly one known type. The answer is the event, a refusal
 * with its RFC 8936 2.4.4 error code, or 'defer' (the keys could not be had: not the SET's fault).
 */
import { errors, jwtVerify, type JWTPayload } from 'jose'
import { isAuthError } from '../errors.ts'
import type { KeySet } from '../key-set.ts'
import type { Clock } from '../revocation/types.ts'
import { KNOWN_EVENT_TYPES, SET_TYPE, type SetError } from './wire.ts'

export interface VerifiedEvent {
  jti: string
  /** The one event type URI. */
  type: string
  /** The event object (type-specific members). */
  event: Record<string, unknown>
  /** The `sub_id` claim as received (checked by subject.ts). */
  subId: unknown
}

export type Verdict =
  | { kind: 'event', value: VerifiedEvent }
  | { kind: 'refused', error: SetError }
  /** The key could not be resolved now; `fetched` tells whether this attempt refetched the JWKS. */
  | { kind: 'defer', reason: 'keys_unavailable' | 'unknown_key', fetched: boolean }

export interface SetVerifierOptions {
  issuer: string
  algorithms: string[]
  clock: Clock
}

/** A SET is a few hundred bytes; anything this large is not one of ours. */
const MAX_SET_LENGTH = 64 * 1024
const SEGMENTS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

const refused = (err: SetError['err'], description: string): Verdict => ({ kind: 'refused', error: { err, description } })

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** RFC 7515 4.1.9: typ is compared case-insensitively, `application/` optional. */
function isSetType (typ: unknown): boolean {
  if (typeof typ !== 'string') return false
  const lower = typ.toLowerCase()
  return lower === SET_TYPE || lower === `application/${SET_TYPE}`
}

/** The header checks that cost no key lookup: a garbled or mistyped SET never triggers a JWKS fetch. */
function checkHeader (compact: string, algorithms: ReadonlySet<string>): Verdict | undefined {
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(compact.slice(0, compact.indexOf('.')), 'base64url').toString('utf8'))
  } catch {
    return refused('invalid_request', 'the SET header is not JSON')
  }
  if (!isObject(header)) return refused('invalid_request', 'the SET header is not a JSON object')
  // RFC 8725 3.1: only the configured asymmetric algorithms; never none, never HS*.
  if (typeof header.alg !== 'string' || !algorithms.has(header.alg)) return refused('invalid_key', 'the SET is signed with an algorithm that is not accepted')
  if (!isSetType(header.typ)) return refused('invalid_request', 'the SET typ is not secevent+jwt')
  if (header.kid !== undefined && typeof header.kid !== 'string') return refused('invalid_request', 'the SET kid is not a string')
  return undefined
}

/** jose's failures, as RFC 8936 2.4.4 codes. Descriptions are ours: nothing from the SET. */
function fromJose (err: unknown): Verdict {
  if (err instanceof errors.JWSSignatureVerificationFailed) return refused('invalid_key', 'the SET signature is invalid')
  if (err instanceof errors.JOSEAlgNotAllowed) return refused('invalid_key', 'the SET is signed with an algorithm that is not accepted')
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return refused('invalid_issuer', 'the SET iss is not this transmitter')
    if (err.claim === 'aud') return refused('invalid_audience', 'the SET aud is not this receiver')
    if (err.claim === 'typ') return refused('invalid_request', 'the SET typ is not secevent+jwt')
    return refused('invalid_request', `the SET ${err.claim} claim is missing or invalid`)
  }
  if (err instanceof errors.JWTExpired) return refused('invalid_request', 'the SET has expired')
  return refused('invalid_request', 'the SET is not a valid signed JWT')
}

export class SetVerifier {
  readonly #options: SetVerifierOptions
  readonly #algorithms: ReadonlySet<string>

  constructor (options: SetVerifierOptions) {
    this.#options = options
    this.#algorithms = new Set(options.algorithms)
  }

  /** Verifies `compact`, delivered under `jti` (the poll answer's key), for `audience`. Never throws. */
  async verify (compact: unknown, jti: string, audience: string | string[], keys: KeySet): Promise<Verdict> {
    if (typeof compact !== 'string' || compact.length > MAX_SET_LENGTH || !SEGMENTS.test(compact)) {
      return refused('invalid_request', 'not a signed JWT in compact serialization')
    }
    const early = checkHeader(compact, this.#algorithms)
    if (early !== undefined) return early
    const fetchesBefore = keys.fetches
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(compact, async (header) => await keys.resolve(header.alg, header.kid), {
        algorithms: this.#options.algorithms,
        typ: SET_TYPE,
        issuer: this.#options.issuer,
        audience,
        requiredClaims: ['iat', 'jti', 'events'],
        currentDate: new Date(this.#options.clock.now())
      }))
    } catch (err) {
      if (isAuthError(err)) {
        const fetched = keys.fetches > fetchesBefore
        return { kind: 'defer', reason: err.reason === 'unknown_key' ? 'unknown_key' : 'keys_unavailable', fetched }
      }
      return fromJose(err)
    }
    return checkClaims(payload, jti)
  }
}

/** What jose does not check: the `jti` matches its delivery key, and `events` holds one known event. */
function checkClaims (payload: JWTPayload, jti: string): Verdict {
  if (payload.jti !== jti) return refused('invalid_request', 'the SET jti is not the one it was delivered under')
  const { events } = payload
  if (!isObject(events)) return refused('invalid_request', 'the SET events claim is not an object')
  const types = Object.keys(events)
  // SSF 1.0, The "events" claim: one event per SET.
  if (types.length !== 1) return refused('invalid_request', 'the SET does not carry exactly one event')
  const type = types[0] as string
  if (!KNOWN_EVENT_TYPES.has(type)) return refused('invalid_request', 'the SET event type is not supported')
  const event = events[type]
  if (!isObject(event)) return refused('invalid_request', 'the SET event is not an object')
  return { kind: 'event', value: { jti, type, event, subId: payload.sub_id } }
}
