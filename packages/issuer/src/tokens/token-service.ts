/**
 * Mints and reads the issuer's tokens: JWT access tokens (RFC 9068) and opaque refresh
 * tokens (`<familyId>.<secret>`, stored only as a SHA-256 hash; the family id routes the
 * lookup and is the Redis hash tag, the secret is 256 random bits).
 */
import { createHash, randomBytes } from 'node:crypto'
import { jwtVerify, errors as joseErrors, type CryptoKey, type JWSHeaderParameters, type JWTPayload } from 'jose'
import type { Clock } from '../clock.ts'
import type { KeyManager } from '../keys/key-manager.ts'

export interface AccessTokenInput {
  clientId: string
  subject: string
  scope: string[]
  audience: string[]
  ttl: number
  sid?: string
  authTime?: number
}

export interface MintedAccessToken {
  token: string
  jti: string
  /** ms since the epoch */
  expiresAt: number
  /** seconds */
  expiresIn: number
}

/** Claims of an access token we issued, as read back by introspection and revocation. */
export interface AccessClaims extends JWTPayload {
  iss: string
  sub: string
  jti: string
  exp: number
  iat: number
  client_id: string
  scope?: string
  sid?: string
}

const randomId = (bytes: number): string => randomBytes(bytes).toString('base64url')

// One CSPRNG call per 256 ids instead of one per token (it showed at 3% of the token path).
const POOL_SIZE = 4096
let pool = Buffer.alloc(0)
let poolOffset = POOL_SIZE

/** 128 random bits, base64url (22 characters): a `jti`. */
export function newJti (): string {
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(POOL_SIZE)
    poolOffset = 0
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + 16)
  // Never reuse pool bytes: the slice is consumed and zeroed.
  pool.fill(0, poolOffset, poolOffset + 16)
  poolOffset += 16
  return id
}

export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/** A fresh refresh token for a family, and its stored hash. */
export function newRefreshToken (familyId = randomId(16)): { token: string, familyId: string, hash: string } {
  const token = `${familyId}.${randomId(32)}`
  return { token, familyId, hash: hashToken(token) }
}

/** Splits a presented refresh token; null when it cannot be one of ours. */
export function parseRefreshToken (token: string): { familyId: string, hash: string } | null {
  const match = /^([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$/.exec(token)
  return match?.[1] === undefined ? null : { familyId: match[1], hash: hashToken(token) }
}

/** Cheap shape test: three base64url segments. */
export function looksLikeJwt (token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)
}

export class TokenService {
  private readonly issuer: string
  private readonly keys: KeyManager
  private readonly clock: Clock

  constructor (issuer: string, keys: KeyManager, clock: Clock) {
    this.issuer = issuer
    this.keys = keys
    this.clock = clock
  }

  async mintAccessToken (input: AccessTokenInput): Promise<MintedAccessToken> {
    const signer = await this.keys.signingKey()
    const now = Math.floor(this.clock.now() / 1000)
    const jti = newJti()
    const exp = now + input.ttl
    const claims: JWTPayload = {
      iss: this.issuer,
      sub: input.subject,
      aud: input.audience.length === 1 ? input.audience[0] : input.audience,
      exp,
      iat: now,
      jti,
      client_id: input.clientId,
      scope: input.scope.join(' ')
    }
    if (input.sid !== undefined) claims.sid = input.sid
    if (input.authTime !== undefined) claims.auth_time = input.authTime
    // RFC 9068 2.1: typ "at+jwt" keeps access tokens from passing as id_tokens and back.
    const token = signer.sign('at+jwt', claims)
    return { token, jti, expiresAt: exp * 1000, expiresIn: input.ttl }
  }

  /** One of our published keys for a JWS header (kid and alg must both match). */
  readonly #resolveKey = async (header: JWSHeaderParameters): Promise<CryptoKey> => {
    const found = header.kid === undefined ? undefined : await this.keys.verificationKey(header.kid)
    if (found === undefined || found.alg !== header.alg) throw new joseErrors.JWKSNoMatchingKey()
    return found.key
  }

  /** Signs any other JWT of ours (id_token, logout_token) with the current key. */
  async sign (claims: JWTPayload, typ: string): Promise<{ token: string, alg: string }> {
    const signer = await this.keys.signingKey()
    return { token: signer.sign(typ, { iss: this.issuer, ...claims }), alg: signer.alg }
  }

  /**
   * Verifies an id_token we issued, for `id_token_hint` (OIDC RP-Initiated Logout 1.0, 2):
   * signature and issuer must hold; an expired one is still accepted as a hint.
   */
  async readIdTokenHint (token: string): Promise<JWTPayload | null> {
    if (!looksLikeJwt(token)) return null
    try {
      const { payload } = await jwtVerify(token, this.#resolveKey, { issuer: this.issuer, typ: 'JWT', algorithms: ['ES256', 'RS256', 'EdDSA'], currentDate: new Date(0) })
      return payload
    } catch {
      return null
    }
  }

  /**
   * Verifies one of our access tokens (signature, typ, iss, exp). Null for anything that is not
   * a live access token of ours; never throws for bad input.
   */
  async readAccessToken (token: string): Promise<AccessClaims | null> {
    return await this.#verifyAccessToken(token, new Date(this.clock.now()))
  }

  /**
   * For logout (POST /oauth2/session/end): one of our access tokens, signature, typ and iss
   * checked, but an expired one is accepted, so logging out with a stale token still ends the
   * session and a repeated logout answers the same. Revocation is not checked either.
   */
  async readAccessTokenForLogout (token: string): Promise<AccessClaims | null> {
    // `exp` is still required and must be a number; only its comparison with now is skipped.
    return await this.#verifyAccessToken(token, new Date(0))
  }

  async #verifyAccessToken (token: string, currentDate: Date): Promise<AccessClaims | null> {
    if (!looksLikeJwt(token)) return null
    try {
      const { payload } = await jwtVerify(token, this.#resolveKey, {
        issuer: this.issuer,
        typ: 'at+jwt',
        algorithms: ['ES256', 'RS256', 'EdDSA'],
        currentDate,
        requiredClaims: ['sub', 'jti', 'exp', 'iat', 'client_id']
      })
      if (typeof payload.client_id !== 'string' || typeof payload.jti !== 'string') return null
      return payload as AccessClaims
    } catch {
      return null
    }
  }
}
