/**
 * What a token must look like before the issuer is asked about it (RFC 7662), so that garbage
 * costs the issuer nothing. The issuer still decides everything else (signature, revocation,
 * `active`); this only refuses what it could never call active.
 *
 * - A JWT (three base64url segments, RFC 7515 7.1): its header and payload are JSON objects,
 *   the header names an `alg`, `iss` is the configured issuer and `exp` is a number not yet
 *   past (with the clock tolerance). The signature is not checked here.
 * - Anything else is an opaque token. Gatehouse issues JWT access tokens only, so by default an
 *   opaque token is refused here. With `opaqueTokens` it must be 22 characters or more (128
 *   random bits in base64url: RFC 6749 10.10 wants tokens no easier to guess than 2^-128) of
 *   the RFC 6750 2.1 b64token alphabet, which the caller has checked, up to `maxTokenLength`.
 */
import { AuthError } from './errors.ts'

export interface PrecheckOptions {
  issuer: string
  /** Seconds of tolerance on `exp`. */
  clockTolerance: number
  /** Whether tokens that are not JWTs may be asked about at all. */
  opaqueTokens: boolean
}

/** 128 bits in base64url. */
export const MIN_OPAQUE_LENGTH = 22

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
const decoder = new TextDecoder('utf-8', { fatal: true })

function jsonObject (segment: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(Buffer.from(segment, 'base64url')))
  } catch (cause) {
    throw new AuthError('malformed', { cause })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AuthError('malformed')
  return value as Record<string, unknown>
}

/**
 * Throws AuthError ('malformed', 'bad_issuer', 'expired') for a token the issuer could not call
 * active. `token` is a b64token already; `now` is epoch milliseconds.
 */
export function precheckToken (token: string, now: number, options: PrecheckOptions): void {
  if (!JWT.test(token)) {
    if (!options.opaqueTokens || token.length < MIN_OPAQUE_LENGTH) throw new AuthError('malformed')
    return
  }
  const dot = token.indexOf('.')
  const header = jsonObject(token.slice(0, dot))
  if (typeof header.alg !== 'string') throw new AuthError('malformed')
  const payload = jsonObject(token.slice(dot + 1, token.lastIndexOf('.')))
  if (payload.iss !== options.issuer) throw new AuthError('bad_issuer')
  const exp = payload.exp
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new AuthError('missing_claim')
  if (now / 1000 >= exp + options.clockTolerance) throw new AuthError('expired')
}
