/**
 * Turns a verified JWT payload (or an RFC 7662 introspection answer) into AccessClaims, and the
 * time checks of RFC 7519 4.1.4-4.1.6.
 */
import { AuthError } from './errors.ts'
import type { AccessClaims } from './types.ts'

const isText = (value: unknown): value is string => typeof value === 'string' && value !== ''
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/** RFC 7519 4.1.3: aud is one string or an array of strings. */
function readAudience (aud: unknown): string[] {
  if (aud === undefined) return []
  if (typeof aud === 'string') return [aud]
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[]
  throw new AuthError('bad_audience')
}

/** RFC 6749 3.3 (RFC 9068 2.2.3): scope is one space-separated string. */
function readScope (scope: unknown): string[] {
  if (scope === undefined) return []
  if (typeof scope !== 'string') throw new AuthError('malformed')
  return scope.split(' ').filter((s) => s !== '')
}

/**
 * Checks `iss` and the claims RFC 9068 2.2 requires (sub, jti, client_id, exp, iat) and builds
 * the claims object, frozen. Throws AuthError bad_issuer, missing_claim, bad_audience or malformed.
 */
export function toAccessClaims (payload: Record<string, unknown>, issuer: string): AccessClaims {
  const { iss, sub, aud, exp, iat, jti, client_id: clientId, scope, sid, auth_time: authTime } = payload
  if (iss !== issuer) throw new AuthError('bad_issuer')
  if (!isText(sub) || !isText(jti) || !isText(clientId) || !isTime(exp) || !isTime(iat)) {
    throw new AuthError('missing_claim')
  }
  if (sid !== undefined && !isText(sid)) throw new AuthError('malformed')
  if (authTime !== undefined && !isTime(authTime)) throw new AuthError('malformed')
  const claims: AccessClaims = {
    iss,
    sub,
    aud: readAudience(aud),
    exp,
    iat,
    jti,
    client_id: clientId,
    scope: readScope(scope),
    raw: Object.freeze(payload)
  }
  if (sid !== undefined) claims.sid = sid
  if (authTime !== undefined) claims.auth_time = authTime
  // Cached and handed to every request bearing the token: nobody may change it for the next one.
  Object.freeze(claims.aud)
  Object.freeze(claims.scope)
  return Object.freeze(claims)
}

/**
 * RFC 7519 4.1.4-4.1.6 with `tolerance` seconds of clock skew: refused once `now >= exp`
 * (+ tolerance), before `nbf`, and when issued in the future. `now` is in seconds.
 */
export function checkTimes (payload: Record<string, unknown>, now: number, tolerance: number): void {
  const { exp, nbf, iat } = payload
  if (!isTime(exp) || now >= exp + tolerance) throw new AuthError('expired')
  if (nbf !== undefined && (!isTime(nbf) || now + tolerance < nbf)) throw new AuthError('not_yet_valid')
  if (isTime(iat) && now + tolerance < iat) throw new AuthError('not_yet_valid')
}
