/**
 * What the issuer says over Shared Signals (docs/shared-signals.md, "What the issuer sends"):
 * the event types, the causes of a revocation, and the events built from them.
 */
import { randomUUID } from 'node:crypto'
import { newJti } from '../tokens/token-service.ts'
import type { SignalEventInput, StreamStatus } from '../stores/types.ts'

/** CAEP 1.0 3.1 */
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
/** SSF 1.0 8.1.4.1 */
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
/** SSF 1.0 8.1.5 */
export const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated'
/**
 * Gatehouse's own event (docs/shared-signals.md): the issuer's signing keys changed. Sent only to
 * streams that ask for it by name, so a receiver that does not know it never sees it.
 */
export const KEYS_CHANGED = 'urn:gatehouse:secevent:signing-key-changed'
/** The event types a stream may ask for (verification and stream-updated always come). */
export const EVENTS_SUPPORTED: readonly string[] = [SESSION_REVOKED, KEYS_CHANGED]
/** What a stream that names no `events_requested` gets: the standard ones. */
export const EVENTS_BY_DEFAULT: readonly string[] = [SESSION_REVOKED]

/** RFC 8936 (poll) and RFC 8935 (push), as SSF 1.0 7.1 names them. */
export const POLL_DELIVERY = 'urn:ietf:rfc:8936'
export const PUSH_DELIVERY = 'urn:ietf:rfc:8935'

/** The SET's JOSE `typ` (RFC 8417 2.3, SSF 1.0 4.1.1). */
export const SET_TYPE = 'secevent+jwt'

/** CAEP 1.0 2: who made the revocation happen. */
export type InitiatingEntity = 'user' | 'policy' | 'admin'

/** Every reason the issuer revokes, with the words receivers log (`reason_admin`). */
export const REVOCATION_REASONS = {
  /** RP-initiated logout, or a gateway logging a user out. */
  logout: { reason: 'logout', initiatingEntity: 'user' },
  /** RFC 7009: a client revoked a token (a refresh token takes its family's access tokens along). */
  tokenRevoked: { reason: 'token revoked', initiatingEntity: 'user' },
  /** RFC 9700 4.14.2: a used refresh token came back, so its family is revoked. */
  refreshTokenReuse: { reason: 'refresh token reuse', initiatingEntity: 'policy' },
  /** RFC 6749 4.1.2: a used authorization code came back, so what it issued is revoked. */
  codeReplay: { reason: 'authorization code replay', initiatingEntity: 'policy' },
  /** A sign-in in the same browser replaced the previous session. */
  sessionReplaced: { reason: 'session replaced by a new sign-in', initiatingEntity: 'user' },
  /** A grant of a session that had ended was used (a refresh, or a code exchange racing a logout). */
  sessionEnded: { reason: 'session ended', initiatingEntity: 'policy' }
} as const satisfies Record<string, { reason: string, initiatingEntity: InitiatingEntity }>

export type RevocationReason = keyof typeof REVOCATION_REASONS

/** One cause: every event it produces shares its `txn` (SSF 1.0 4.1.9). */
export interface RevocationCause {
  readonly txn: string
  readonly reason: string
  readonly initiatingEntity: InitiatingEntity
  /** The subjects (`jti:`, `sid:`) already announced for this cause: each goes out once. */
  readonly announced: Set<string>
}

export function revocationCause (reason: RevocationReason): RevocationCause {
  return { txn: randomUUID(), ...REVOCATION_REASONS[reason], announced: new Set() }
}

function sessionRevokedPayload (cause: RevocationCause, at: number): Record<string, unknown> {
  return { event_timestamp: Math.floor(at / 1000), initiating_entity: cause.initiatingEntity, reason_admin: { en: cause.reason } }
}

/** The session `sid` ended: subject `complex` with the session and, when known, the user. */
export function sessionRevoked (cause: RevocationCause, issuer: string, at: number, sid: string, subject?: string): SignalEventInput {
  const sub: Record<string, unknown> = { format: 'complex', session: { format: 'opaque', id: sid } }
  if (subject !== undefined) sub.user = { format: 'iss_sub', iss: issuer, sub: subject }
  return { jti: newJti(), at, txn: cause.txn, type: SESSION_REVOKED, subject: sub, payload: sessionRevokedPayload(cause, at) }
}

/** One access token revoked: subject `jwt_id` (SSF 1.0 3.4.1). */
export function accessTokenRevoked (cause: RevocationCause, issuer: string, at: number, jti: string): SignalEventInput {
  return { jti: newJti(), at, txn: cause.txn, type: SESSION_REVOKED, subject: { format: 'jwt_id', iss: issuer, jti }, payload: sessionRevokedPayload(cause, at) }
}

/** A key change (`published`, `activated`, `retired`, `revoked`). Its jti names the change, so instances announcing the same change append it once. */
export function keysChanged (at: number, change: string, kid: string): SignalEventInput {
  return { jti: `keys.${change}.${kid}`, at, txn: randomUUID(), type: KEYS_CHANGED, subject: { format: 'opaque', id: kid }, payload: { change, kid, event_timestamp: Math.floor(at / 1000) } }
}

/** SSF 1.0 8.1.4.1: for one stream, echoing the receiver's `state`. */
export function verification (streamId: string, at: number, state?: string): SignalEventInput {
  return { jti: newJti(), at, txn: randomUUID(), type: VERIFICATION, subject: { format: 'opaque', id: streamId }, payload: state === undefined ? {} : { state }, streamId }
}

/** SSF 1.0 8.1.5: the stream's status changed. */
export function streamUpdated (streamId: string, at: number, status: StreamStatus, reason?: string): SignalEventInput {
  return { jti: newJti(), at, txn: randomUUID(), type: STREAM_UPDATED, subject: { format: 'opaque', id: streamId }, payload: reason === undefined ? { status } : { status, reason }, streamId }
}
