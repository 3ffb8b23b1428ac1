/**
 * Local validation of a JWT access token (RFC 9068 4): header, signature against the issuer's
 * JWKS (jose), then the claims. No cache and no per-route checks here: see `verifier.ts`.
 */
import { compactVerify, errors as joseErrors, type CompactJWSHeaderParameters, type CryptoKey } from 'jose'
import { checkTimes, toAccessClaims } from './claims.ts'
import { AuthError, isAuthError } from './errors.ts'
import { readHeader } from './jwt-header.ts'
import type { KeySet } from './key-set.ts'
import type { Clock } from './revocation/types.ts'
import type { AccessClaims } from './types.ts'

export interface LocalValidatorOptions {
  issuer: string
  algorithms: string[]
  clockTolerance: number
  clock: Clock
}

const decoder = new TextDecoder('utf-8', { fatal: true })

function fromJose (err: unknown): AuthError {
  if (isAuthError(err)) return err
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new AuthError('bad_algorithm', { cause: err })
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JOSENotSupported) {
    return new AuthError('malformed', { cause: err })
  }
  // JWSSignatureVerificationFailed, and a key that does not fit the alg (jose throws TypeError).
  return new AuthError('bad_signature', { cause: err })
}

export class LocalValidator {
  readonly #options: LocalValidatorOptions
  readonly #algorithms: ReadonlySet<string>
  readonly #keys: KeySet
  /** Signatures checked (tokens that reached jose). */
  signatureChecks = 0

  constructor (options: LocalValidatorOptions, keys: KeySet) {
    this.#options = options
    this.#algorithms = new Set(options.algorithms)
    this.#keys = keys
  }

  /** Validates everything that does not depend on the route. Throws AuthError. */
  async validate (token: string): Promise<AccessClaims> {
    readHeader(token, this.#algorithms)
    this.signatureChecks++
    let payloadBytes: Uint8Array
    try {
      const result = await compactVerify(token, this.#resolveKey, { algorithms: this.#options.algorithms })
      payloadBytes = result.payload
    } catch (err) {
      throw fromJose(err)
    }
    let payload: unknown
    try {
      payload = JSON.parse(decoder.decode(payloadBytes))
    } catch (cause) {
      throw new AuthError('malformed', { cause })
    }
    // RFC 7519 7.2 step 10: the payload is a JSON object (the JWT Claims Set).
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new AuthError('malformed')
    const record = payload as Record<string, unknown>
    const claims = toAccessClaims(record, this.#options.issuer)
    checkTimes(record, this.#options.clock.now() / 1000, this.#options.clockTolerance)
    return claims
  }

  readonly #resolveKey = async (header: CompactJWSHeaderParameters): Promise<CryptoKey | Uint8Array> =>
    await this.#keys.resolve(header.alg, header.kid)
}
