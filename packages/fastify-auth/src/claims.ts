/**
 * Turns a verified JWT payload (or an RFC 7662 introspection answer) into AccessClaims, and the
 * time checks of RFC 7519 4.1.4-4.1.6.
 */
import { AuthError } from './errors.ts'
import type { AccessClaims } from './types.ts'

const isText = (value: unknown): value is string => typeof value === 'string' && value !== ''
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/**
 * The lists of a token's claims, frozen and shared by every token whose claim reads the same
 * (one Map per claim, at most {@link SHARED_MAX} strings each; past that, a list of its own):
 * a full verified-token cache then holds one `["demo-api"]` and one `["api:read"]`, not 10,000
 * of each, and V8's major GC has that many objects fewer to mark (docs/architecture.md).
 */
const SHARED_MAX = 1000
const sharedAudiences = new Map<string, string[]>()
const sharedScopes = new Map<string, string[]>()
const NONE = Object.freeze([]) as unknown as string[]

function shared (lists: Map<string, string[]>, key: string, make: () => string[]): string[] {
  let list = lists.get(key)
  if (list === undefined) {
    list = Object.freeze(make()) as string[]
    if (lists.size < SHARED_MAX) lists.set(key, list)
  }
  return list
}

/** RFC 7519 4.1.3: aud is one string or an array of strings. */
function readAudience (aud: unknown): string[] {
  if (aud === undefined) return NONE
  if (typeof aud === 'string') return shared(sharedAudiences, aud, () => [aud])
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[]
  throw new AuthError('bad_audience')
}

/** RFC 6749 3.3 (RFC 9068 2.2.3): scope is one space-separated string. */
function readScope (scope: unknown): string[] {
  if (scope === undefined) return NONE
  if (typeof scope !== 'string') throw new AuthError('malformed')
  return shared(sharedScopes, scope, () => scope.split(' ').filter((s) => s !== ''))
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
