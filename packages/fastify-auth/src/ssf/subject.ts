/**
 * What a session-revoked event's `sub_id` (RFC 9493, SSF 1.0 Subject Members) lets the mirror
 * refuse. The revocation list matches tokens by `sid` or `jti` only, so:
 *
 * - an opaque subject, or a complex one with an opaque `session`, is a `sid`;
 * - a `jwt_id` subject is a `jti`;
 * - anything else (a user, an email, a device) names no session or token: no effect.
 *
 * The issuer the subject belongs to is the `jwt_id`'s `iss`, else a complex subject's `user`
 * `iss_sub` issuer, else the transmitter itself; the receiver acts only on the issuers it is
 * told its transmitter may speak for.
 */

export type SubjectTarget =
  | { kind: 'sid' | 'jti', id: string, issuer: string }
  /** A well-formed subject the list cannot match to a token (a user, an email, ...). */
  | { kind: 'none', format: string }
  /** Not a usable subject identifier: the SET is refused (invalid_request). */
  | { kind: 'invalid', description: string }

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const isId = (value: unknown): value is string => typeof value === 'string' && value !== ''

const invalid = (description: string): SubjectTarget => ({ kind: 'invalid', description })

/** RFC 9493 3.2.4 `iss_sub`: the user's issuer, when the complex subject names one. */
function userIssuer (subject: Record<string, unknown>): string | undefined {
  const user = subject.user
  return isObject(user) && user.format === 'iss_sub' && isId(user.iss) ? user.iss : undefined
}

/** The target of `subId`, for a transmitter whose issuer is `transmitter`. Never throws. */
export function subjectTarget (subId: unknown, transmitter: string): SubjectTarget {
  if (subId === undefined) return invalid('the SET has no sub_id')
  if (!isObject(subId) || typeof subId.format !== 'string') return invalid('the SET sub_id is not a subject identifier')
  switch (subId.format) {
    case 'opaque':
      // RFC 9493 3.2.5; CAEP 1.0 3.1 shows a session given this way.
      if (!isId(subId.id)) return invalid('the opaque sub_id has no id')
      return { kind: 'sid', id: subId.id, issuer: transmitter }
    case 'jwt_id':
      // SSF 1.0, JWT ID Subject Identifier Format: iss and jti are both required.
      if (!isId(subId.iss) || !isId(subId.jti)) return invalid('the jwt_id sub_id lacks iss or jti')
      return { kind: 'jti', id: subId.jti, issuer: subId.iss }
    case 'complex': {
      const session = subId.session
      if (session === undefined) return { kind: 'none', format: 'complex' }
      if (!isObject(session) || session.format !== 'opaque' || !isId(session.id)) {
        return invalid('the complex sub_id has a session that is not an opaque id')
      }
      return { kind: 'sid', id: session.id, issuer: userIssuer(subId) ?? transmitter }
    }
    default:
      return { kind: 'none', format: subId.format.slice(0, 32) }
  }
}
