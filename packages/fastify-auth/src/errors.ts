/**
 * Every refusal in one table: reason, HTTP status, RFC 6750 error code and a description safe
 * to send (like fastify's `lib/errors.js`).
 */
import type { AccessClaims, AuthFailureReason } from './types.ts'

/**
 * The RFC 6750 3.1 error code of a reason; `null` for 'missing' (3.1 gives none), which
 * `sendAuthError` still answers with `invalid_token`, as docs/product.md promises.
 */
export type BearerErrorCode = 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable'

interface Failure {
  status: 401 | 403 | 503
  code: BearerErrorCode | null
  description: string
}

const invalid = (description: string): Failure => ({ status: 401, code: 'invalid_token', description })

/** Descriptions are printable ASCII without `"` or `\`, as RFC 6750 3 requires of error_description. */
export const AUTH_FAILURES: Readonly<Record<AuthFailureReason, Failure>> = {
  missing: { status: 401, code: null, description: 'an access token is required' },
  malformed: invalid('the Authorization header or the access token is malformed'),
  too_long: invalid('the access token is too long'),
  bad_type: invalid('the token is not an access token (typ must be at+jwt)'),
  bad_algorithm: invalid('the token is signed with an algorithm that is not accepted'),
  unknown_key: invalid('the token is signed with an unknown key'),
  bad_signature: invalid('the token signature is invalid'),
  expired: invalid('the access token has expired'),
  not_yet_valid: invalid('the access token is not valid yet'),
  bad_issuer: invalid('the access token was issued by another issuer'),
  bad_audience: invalid('the access token is not meant for this resource'),
  missing_claim: invalid('the access token lacks a required claim'),
  revoked: invalid('the access token has been revoked'),
  inactive: invalid('the access token is not active'),
  insufficient_scope: { status: 403, code: 'insufficient_scope', description: 'the access token lacks a required scope' },
  revocations_stale: {
    status: 503,
    code: 'temporarily_unavailable',
    description: 'the revocation list is out of date; try again shortly'
  },
  issuer_unavailable: {
    status: 503,
    code: 'temporarily_unavailable',
    description: 'the token issuer cannot be reached; try again shortly'
  }
}

/**
 * Why a token (or a request) was refused. `status` is 401, 403 or 503; `scope` is set for
 * 'insufficient_scope' (the scopes the route needs, space-separated, RFC 6750 3). `claims`
 * is set when the token itself was valid and this request's checks refused it (audience,
 * revocation, staleness, scope): whose token it was, for the logs.
 */
export class AuthError extends Error {
  readonly reason: AuthFailureReason
  readonly status: 401 | 403 | 503
  readonly code: BearerErrorCode | null
  readonly description: string
  readonly scope: string | undefined
  readonly claims: AccessClaims | undefined

  constructor (reason: AuthFailureReason, options: { scope?: string, cause?: unknown, claims?: AccessClaims } = {}) {
    const failure = AUTH_FAILURES[reason]
    super(failure.description, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AuthError'
    this.reason = reason
    this.status = failure.status
    this.code = failure.code
    this.description = failure.description
    this.scope = options.scope
    // Not enumerable: a logged error (pino copies enumerable properties) must not print claims.
    Object.defineProperty(this, 'claims', { value: options.claims, enumerable: false })
  }
}

/** Type guard that survives two copies of the package in one process. */
export function isAuthError (err: unknown): err is AuthError {
  return err instanceof AuthError || (err instanceof Error && err.name === 'AuthError' && 'reason' in err)
}
