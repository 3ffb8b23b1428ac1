/**
 * The auth plugin's public contract: what a resource server (the gateway, or any Fastify app)
 * configures and what it gets on each request.
 */
import type { Clock, RevocationList, RevocationLog } from './revocation/types.ts'

/** Claims of a validated access token (RFC 9068), with `scope` parsed. */
export interface AccessClaims {
  iss: string
  sub: string
  aud: string[]
  exp: number
  iat: number
  jti: string
  client_id: string
  /** Space-separated scope of the token, parsed. */
  scope: string[]
  sid?: string
  auth_time?: number
  /** Every claim as received. */
  raw: Readonly<Record<string, unknown>>
}

/** Why a request was refused: stable codes for metrics and logs. */
export type AuthFailureReason =
  | 'missing' | 'malformed' | 'too_long' | 'bad_type' | 'bad_algorithm' | 'unknown_key'
  | 'bad_signature' | 'expired' | 'not_yet_valid' | 'bad_issuer' | 'bad_audience'
  | 'missing_claim' | 'revoked' | 'inactive' | 'insufficient_scope'
  /** The revocation list is staler than allowed and the policy is fail-closed (503). */
  | 'revocations_stale'
  /** Keys (or the introspection endpoint) could not be reached and nothing cached helps (503). */
  | 'issuer_unavailable'

export interface IntrospectionOptions {
  /** RFC 7662 endpoint; default: `introspection_endpoint` from the issuer's discovery document. */
  endpoint?: string
  clientId: string
  clientSecret: string
  /** Seconds an answer is reused (never past the token's exp). Default 30. */
  cacheTtl?: number
  /** Most answers kept. Default 10 000. */
  cacheSize?: number
  /** Seconds a refusal (`active: false`, ...) is reused, in a cache of its own. Default 10. */
  negativeCacheTtl?: number
  /** Most refusals kept, apart from the active answers so that bad tokens cannot evict them. Default 1000. */
  negativeCacheSize?: number
  /**
   * Whether tokens that are not JWTs are sent to the issuer. Default false: Gatehouse issues JWT
   * access tokens, so anything else is refused without a request. When true, an opaque token
   * must be at least 22 b64token characters (128 bits). A JWT is always pre-checked: well formed,
   * `iss` is `issuer`, `exp` not past.
   */
  opaqueTokens?: boolean
  /** Milliseconds to wait for the issuer. Default 2000. */
  timeout?: number
}

export interface AuthOptions {
  /** Expected `iss`; the discovery document is read from `<issuer>/.well-known/openid-configuration`. */
  issuer: string
  /** JWKS location; default: `jwks_uri` from discovery. */
  jwksUri?: string
  /** Expected audience(s) when a route does not say; omitted: any audience. */
  audience?: string | string[]
  /** Asymmetric algorithms accepted (never `none`, never HS*). Default ES256, ES384, RS256, PS256, EdDSA. */
  algorithms?: string[]
  /** Seconds of tolerance on exp, nbf and iat. Default 5. */
  clockTolerance?: number
  /** Longest token accepted, in characters. Default 8192. */
  maxTokenLength?: number
  /** Verified tokens kept so a repeated token costs no signature check (never used past exp). Default 10 000. */
  cacheSize?: number
  /** Least milliseconds between JWKS refetches triggered by an unknown kid. Default 30 000. */
  jwksCooldown?: number
  /** The shared revocation list (mirror); in-memory for one instance when omitted. */
  revocations?: RevocationList
  /** Milliseconds of revocation-list staleness tolerated. Default 30 000. */
  maxStaleness?: number
  /** When the list is staler than that: refuse (false, default: 503) or serve anyway (true). */
  failOpen?: boolean
  /** Validation by the issuer (RFC 7662), for routes that ask for it. */
  introspection?: IntrospectionOptions
  /** Called once per refused request, for metrics. */
  onFailure?: (reason: AuthFailureReason) => void
  /** `realm` of the `WWW-Authenticate` challenge (RFC 6750 3). Default `gatehouse`. */
  realm?: string
  /** Milliseconds to wait for the discovery document and the JWKS. Default 2000. */
  jwksTimeout?: number
  /** Milliseconds after which known keys are refreshed in the background (kept if that fails). Default 60 000: well inside the issuer's key activation delay, so a rotated key is known before it signs. */
  jwksMaxAge?: number
  /** Time source, epoch ms, for exp/nbf/iat, caches and cooldowns. Default `Date.now`. */
  clock?: Clock
  /** Where JWKS and introspection trouble is reported. The plugin passes `app.log` when omitted. */
  log?: RevocationLog
}

/** What one route requires. */
export interface RouteAuth {
  /** 'required' (default): no token is 401; 'optional': a token is checked when present. */
  mode?: 'required' | 'optional'
  /** Overrides AuthOptions.audience; `null`: any audience. */
  audience?: string | string[] | null
  /** Every one of these scopes is needed. */
  scopes?: string[]
  /** 'local' (default): JWT checked here; 'introspect': asked of the issuer (RFC 7662). */
  validation?: 'local' | 'introspect'
  /**
   * false: skip the revocation list (and its staleness bound). Only for an endpoint that
   * revokes the token itself, like the gateway's logout: a repeated logout must still be a 200.
   */
  checkRevocation?: boolean
}
