/**
 * Validation of an OIDC Back-Channel Logout 1.0 `logout_token` (2.6), as a resource server
 * does it: signature against the issuer's JWKS (found through discovery), typ, iss, aud, iat,
 * exp, jti, the events claim, sid or sub, no nonce, and no replayed jti.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** Asymmetric algorithms only: `none` and HMAC never verify a logout token here. */
const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA']

/** How long a jti is remembered when the token's exp is implausibly far away, ms. */
const MAX_REMEMBER_MS = 10 * 60 * 1000
const MAX_REMEMBERED_JTIS = 10_000

export interface LogoutTokenVerifierOptions {
  /** The issuer's `iss` (its base URL): discovery is at `<issuer>/.well-known/openid-configuration`. */
  issuer: string
  /** The `aud` this receiver expects. */
  audience: string
  /** Seconds of clock skew tolerated on iat and exp. Default 30. */
  clockTolerance?: number
  /** ms since the epoch; default Date.now. */
  now?: () => number
}

export interface LogoutClaims extends JWTPayload {
  jti: string
  iat: number
  sid?: string
  sub?: string
}

/** The token is not a valid, fresh logout token for us: the answer is a 400 (2.8). */
export class InvalidLogoutToken extends Error {
  override name = 'InvalidLogoutToken'
}

/** The issuer (discovery or JWKS) could not be reached: the token could not be checked at all. */
export class IssuerUnavailable extends Error {
  override name = 'IssuerUnavailable'
}

export type LogoutTokenVerifier = (token: string) => Promise<LogoutClaims>

async function discoverJwks (issuer: string): Promise<JWTVerifyGetKey> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  let metadata: { issuer?: unknown, jwks_uri?: unknown }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' })
    if (!res.ok) throw new Error(`discovery answered ${res.status}`)
    metadata = await res.json() as typeof metadata
  } catch (err) {
    throw new IssuerUnavailable(`discovery at ${url} failed: ${(err as Error).message}`)
  }
  // OIDC Discovery 4.3: the issuer in the document must be the one we asked.
  if (metadata.issuer !== issuer) throw new IssuerUnavailable(`discovery names issuer ${String(metadata.issuer)}, expected ${issuer}`)
  if (typeof metadata.jwks_uri !== 'string') throw new IssuerUnavailable('discovery has no jwks_uri')
  return createRemoteJWKSet(new URL(metadata.jwks_uri))
}

/** A JOSE error that says "this token is bad", as opposed to "the keys could not be fetched". */
function isTokenProblem (err: unknown): boolean {
  return err instanceof joseErrors.JOSEError && !(err instanceof joseErrors.JWKSTimeout) && err.code !== 'ERR_JOSE_GENERIC'
}

export function logoutTokenVerifier (options: LogoutTokenVerifierOptions): LogoutTokenVerifier {
  const now = options.now ?? Date.now
  const tolerance = options.clockTolerance ?? 30
  let keys: Promise<JWTVerifyGetKey> | undefined
  /** jti -> when it may be forgotten (ms): a replay inside the token's lifetime is refused. */
  const seen = new Map<string, number>()

  function remember (jti: string, exp: number): void {
    const t = now()
    for (const [old, until] of seen) {
      if (until <= t) seen.delete(old)
    }
    if (seen.size >= MAX_REMEMBERED_JTIS) seen.delete(seen.keys().next().value as string)
    seen.set(jti, Math.min(exp * 1000 + tolerance * 1000, t + MAX_REMEMBER_MS))
  }

  /** The JWKS, discovered on first use (so a malformed token is refused without a round trip). */
  const getKey: JWTVerifyGetKey = async (header, token) => {
    keys ??= discoverJwks(options.issuer).catch((err: unknown) => { keys = undefined; throw err })
    return await (await keys)(header, token)
  }

  return async function verifyLogoutToken (token: string): Promise<LogoutClaims> {
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: options.issuer,
        audience: options.audience,
        // 2.6 step 2 (and 2.4's recommendation): explicit typing keeps other JWTs out.
        typ: 'logout+jwt',
        algorithms: ALGORITHMS,
        requiredClaims: ['iat', 'exp', 'jti', 'events'],
        clockTolerance: tolerance,
        currentDate: new Date(now())
      }))
    } catch (err) {
      if (isTokenProblem(err)) throw new InvalidLogoutToken((err as Error).message)
      if (err instanceof IssuerUnavailable) throw err
      throw new IssuerUnavailable(`the issuer's keys could not be fetched: ${(err as Error).message}`)
    }
    const events = payload.events
    const event = typeof events === 'object' && events !== null && !Array.isArray(events) ? (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT] : undefined
    if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new InvalidLogoutToken(`events must hold ${BACKCHANNEL_LOGOUT_EVENT}`)
    const hasSid = typeof payload.sid === 'string' && payload.sid !== ''
    const hasSub = typeof payload.sub === 'string' && payload.sub !== ''
    if (!hasSid && !hasSub) throw new InvalidLogoutToken('a logout token names a sid or a sub')
    // 2.4: a nonce is prohibited, so that an ID Token can never pass as a logout token.
    if ('nonce' in payload) throw new InvalidLogoutToken('a logout token must not carry a nonce')
    if (typeof payload.iat !== 'number' || typeof payload.jti !== 'string' || payload.jti === '') throw new InvalidLogoutToken('iat and jti are required')
    // 2.6 step 7 (optional there, done here): the same jti twice is a replay.
    const until = seen.get(payload.jti)
    if (until !== undefined && until > now()) throw new InvalidLogoutToken('this logout token was already received')
    remember(payload.jti, payload.exp as number)
    return payload as LogoutClaims
  }
}
