/** PKCE (RFC 7636), S256 only: RFC 9700 2.1.1 says `plain` must not be used. */
import { createHash, timingSafeEqual } from 'node:crypto'
import { invalidGrant, invalidRequest } from '../errors.ts'

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

/** Validates the authorization request's challenge; returns it, or undefined when none was sent. */
export function checkCodeChallenge (challenge: string | undefined, method: string | undefined, required: boolean): string | undefined {
  if (challenge === undefined) {
    if (method !== undefined) throw invalidRequest('code_challenge_method without code_challenge')
    if (required) throw invalidRequest('PKCE is required: send code_challenge with code_challenge_method=S256')
    return undefined
  }
  // RFC 7636 4.3 defaults a missing method to plain, which we refuse.
  if (method !== 'S256') throw invalidRequest('code_challenge_method must be S256')
  if (!S256_CHALLENGE.test(challenge)) throw invalidRequest('malformed code_challenge')
  return challenge
}

/** Token endpoint: the verifier must hash to the stored challenge (RFC 7636 4.6). */
export function checkCodeVerifier (verifier: string | undefined, challenge: string | undefined): void {
  if (challenge === undefined) {
    // RFC 9700 2.1.1: a verifier for a code issued without a challenge is a downgrade attempt.
    if (verifier !== undefined) throw invalidGrant('code_verifier sent but the authorization request had no code_challenge')
    return
  }
  if (verifier === undefined) throw invalidGrant('code_verifier is required')
  if (!VERIFIER.test(verifier)) throw invalidGrant('malformed code_verifier')
  const computed = createHash('sha256').update(verifier).digest()
  const expected = Buffer.from(challenge, 'base64url')
  if (expected.length !== computed.length || !timingSafeEqual(computed, expected)) throw invalidGrant('code_verifier does not match the code_challenge')
}
