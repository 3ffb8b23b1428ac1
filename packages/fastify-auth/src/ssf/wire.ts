/** The Shared Signals wire names the receiver reads and writes: one place for each. */

/** CAEP 1.0 3.1: the session identified by the subject has been revoked. */
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
/** SSF 1.0, Verification Event: sent on request (or at will) to prove the stream works end to end. */
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
/** SSF 1.0, Stream Updated Event: the transmitter changed the stream's status. */
export const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated'

/**
 * Gatehouse's own event (not part of SSF or CAEP; only receivers that ask for it get it): the
 * transmitter's signing keys changed. Event members `change` (published, activated, retired,
 * revoked) and `kid`; the subject is the kid (`opaque`). docs/shared-signals.md.
 */
export const KEYS_CHANGED = 'urn:gatehouse:secevent:signing-key-changed'

export const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set([SESSION_REVOKED, VERIFICATION, STREAM_UPDATED, KEYS_CHANGED])

/** SSF 1.0, Poll Delivery using HTTP (RFC 8936). */
export const POLL_DELIVERY = 'urn:ietf:rfc:8936'

/** The scope that lets a client manage its streams (CAEP interoperability profile). */
export const MANAGE_SCOPE = 'ssf.manage'

/** RFC 8417 2.3 and SSF 1.0, Explicit Typing of SETs. */
export const SET_TYPE = 'secevent+jwt'

/** RFC 8935 2.3 (registered for RFC 8936 2.4.4 too): why a SET was refused. */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience'

/** One entry of a poll's `setErrs` (RFC 8936 2.4.4). */
export interface SetError {
  err: SetErrorCode
  description: string
}
