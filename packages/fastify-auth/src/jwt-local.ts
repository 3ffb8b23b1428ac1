/**
 * Local validation of a JWT access token (RFC 9068 4): header, signature against the issuer's
 * JWKS, then the claims. No cache and no per-route checks here: see `verifier.ts`.
 *
 * Signatures are checked with node:crypto, synchronously. jose's verify goes through WebCrypto,
 * an async threadpool job per token, which cost the gateway about twice the CPU per uncached
 * token in the benchmark. The algorithm allowlist is enforced before this (jwt-header.ts), and
 * the key must fit the algorithm (key-set.ts), as jose would insist.
 */
import { constants, verify, type KeyObject, type VerifyKeyObjectInput, type VerifyPublicKeyInput } from 'node:crypto'
import { checkTimes, toAccessClaims } from './claims.ts'
import { AuthError } from './errors.ts'
import { readHeader, type JwsHeader } from './jwt-header.ts'
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

const SEGMENTS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** RFC 7518 3.1: the hash, and how node:crypto wants the key, for each JWS alg. */
function verifyInput (alg: string, key: KeyObject): { hash: string | null, input: VerifyKeyObjectInput | VerifyPublicKeyInput | KeyObject, signatureLength?: number } | undefined {
  switch (alg) {
    case 'ES256': return { hash: 'sha256', input: { key, dsaEncoding: 'ieee-p1363' }, signatureLength: 64 }
    case 'ES384': return { hash: 'sha384', input: { key, dsaEncoding: 'ieee-p1363' }, signatureLength: 96 }
    case 'ES512': return { hash: 'sha512', input: { key, dsaEncoding: 'ieee-p1363' }, signatureLength: 132 }
    case 'RS256': case 'RS384': case 'RS512':
      return { hash: `sha${alg.slice(2)}`, input: key }
    case 'PS256': case 'PS384': case 'PS512':
      return { hash: `sha${alg.slice(2)}`, input: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } }
    case 'EdDSA': case 'Ed25519':
      return { hash: null, input: key }
    default: return undefined
  }
}

/** Distinct JWS headers remembered (an issuer has a few: one per key and typ). */
const HEADERS_KEPT = 32

export class LocalValidator {
  readonly #options: LocalValidatorOptions
  readonly #algorithms: ReadonlySet<string>
  readonly #keys: KeySet
  /**
   * Headers read and accepted, by their encoded segment: every token of one key has the same,
   * so it is decoded and checked once, not per token. Only accepted headers are kept.
   */
  readonly #headers = new Map<string, JwsHeader>()
  /** Signatures checked (tokens that reached jose). */
  signatureChecks = 0

  constructor (options: LocalValidatorOptions, keys: KeySet) {
    this.#options = options
    this.#algorithms = new Set(options.algorithms)
    this.#keys = keys
  }

  /**
   * Validates everything that does not depend on the route. Throws AuthError (or rejects with
   * it). The claims come back at once when the key is at hand (nearly always), as a promise
   * when it must be waited for (a fetch, an announced key).
   */
  validate (token: string): AccessClaims | Promise<AccessClaims> {
    // RFC 7515 7.1: three base64url segments, nothing else (no padding, no other characters).
    if (!SEGMENTS.test(token)) throw new AuthError('malformed')
    const { alg, kid } = this.#header(token)
    this.signatureChecks++
    const key = this.#keys.known(alg, kid)
    if (key !== undefined) return this.#check(token, alg, key)
    return this.#keys.resolve(alg, kid).then((resolved) => this.#check(token, alg, resolved))
  }

  #header (token: string): JwsHeader {
    const segment = token.slice(0, token.indexOf('.'))
    let header = this.#headers.get(segment)
    if (header === undefined) {
      header = readHeader(token, this.#algorithms)
      if (this.#headers.size >= HEADERS_KEPT) this.#headers.clear()
      this.#headers.set(segment, header)
    }
    return header
  }

  #check (token: string, alg: string, key: KeyObject): AccessClaims {
    const params = verifyInput(alg, key)
    if (params === undefined) throw new AuthError('bad_algorithm')
    const lastDot = token.lastIndexOf('.')
    const signature = Buffer.from(token.slice(lastDot + 1), 'base64url')
    if (params.signatureLength !== undefined && signature.length !== params.signatureLength) throw new AuthError('bad_signature')
    let valid: boolean
    try {
      valid = verify(params.hash, Buffer.from(token.slice(0, lastDot)), params.input, signature)
    } catch (cause) {
      // A key that does not fit the alg.
      throw new AuthError('bad_signature', { cause })
    }
    if (!valid) throw new AuthError('bad_signature')
    let payload: unknown
    try {
      payload = JSON.parse(decoder.decode(Buffer.from(token.slice(token.indexOf('.') + 1, lastDot), 'base64url')))
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
}
