/**
 * The checks made on a JWS header before any key is looked up: a token with `alg: none`, an
 * HMAC alg (RFC 8725 2.1, 3.1) or the wrong `typ` never costs a JWKS fetch or a key import.
 */
import { AuthError } from './errors.ts'

export interface JwsHeader {
  alg: string
  kid: string | undefined
}

/** RFC 9068 4: typ must be "at+jwt" or "application/at+jwt"; RFC 7515 4.1.9: case-insensitive. */
function isAccessTokenType (typ: unknown): boolean {
  if (typeof typ !== 'string') return false
  const lower = typ.toLowerCase()
  return lower === 'at+jwt' || lower === 'application/at+jwt'
}

/** Reads and checks the protected header of a compact JWS (RFC 7515 7.1). Throws AuthError. */
export function readHeader (token: string, algorithms: ReadonlySet<string>): JwsHeader {
  const dot = token.indexOf('.')
  const second = token.indexOf('.', dot + 1)
  // Three segments exactly: a JWE (five) or anything else is not an access token of ours.
  if (dot <= 0 || second < 0 || token.indexOf('.', second + 1) >= 0) throw new AuthError('malformed')
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'))
  } catch (cause) {
    throw new AuthError('malformed', { cause })
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new AuthError('malformed')
  const { alg, typ, kid, crit, b64 } = header as Record<string, unknown>
  if (typeof alg !== 'string' || !algorithms.has(alg)) throw new AuthError('bad_algorithm')
  if (!isAccessTokenType(typ)) throw new AuthError('bad_type')
  if (kid !== undefined && typeof kid !== 'string') throw new AuthError('malformed')
  // RFC 7515 4.1.11: we understand no extension; RFC 7797 7: b64 has no place in a JWT.
  if (crit !== undefined || b64 !== undefined) throw new AuthError('malformed')
  return { alg, kid }
}
