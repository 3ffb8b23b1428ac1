/** Reads the token out of `Authorization: Bearer <token>` (RFC 6750 2.1). */
import { AuthError } from './errors.ts'

/** RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
const BEARER = [0x62, 0x65, 0x61, 0x72, 0x65, 0x72] // "bearer"

/** True when `token` is a b64token (RFC 6750 2.1): what follows "Bearer " and nothing else. */
export function isB64Token (token: string): boolean {
  return B64TOKEN.test(token)
}

/**
 * Where the token starts in `"Bearer" 1*SP b64token`, or -1 when the scheme is not Bearer.
 * RFC 9110 11.1: the scheme is case-insensitive; compared by char code, so nothing is built.
 */
export function bearerTokenStart (header: string): number {
  if (header.length < 8 || header.charCodeAt(6) !== 0x20) return -1
  for (let i = 0; i < 6; i++) if ((header.charCodeAt(i) | 0x20) !== BEARER[i]) return -1
  let start = 7
  while (header.charCodeAt(start) === 0x20) start++
  return start
}

/**
 * The token of a Bearer credential: `"Bearer" 1*SP b64token` and nothing else (RFC 6750 2.1).
 * Another scheme, two tokens, a trailing space or a stray character is 'malformed'; a token
 * longer than `maxLength` is 'too_long' before anything else looks at it.
 */
export function readBearerToken (header: string, maxLength: number): string {
  const start = bearerTokenStart(header)
  if (start < 0) throw new AuthError('malformed')
  if (header.length - start > maxLength) throw new AuthError('too_long')
  const token = header.slice(start)
  if (!isB64Token(token)) throw new AuthError('malformed')
  return token
}
