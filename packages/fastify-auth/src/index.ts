/**
 * `@gatehouse/fastify-auth`: local validation of Gatehouse access tokens (RFC 9068), the shared
 * revocation list and scopes, for any Fastify resource server.
 */
export { default, authPreHandler } from './plugin.ts'
export { TokenVerifier, type VerifierStats } from './verifier.ts'
export { AuthError, AUTH_FAILURES, isAuthError, type BearerErrorCode } from './errors.ts'
export { sendAuthError, bearerChallenge } from './reply.ts'
export { readBearerToken, isB64Token } from './bearer.ts'
export { AuthOptionsError, SUPPORTED_ALGORITHMS } from './options.ts'
export { IssuerMismatchError } from './discovery.ts'
export type { AccessClaims, AuthFailureReason, AuthOptions, IntrospectionOptions, RouteAuth } from './types.ts'
export type { Clock, KeyChange, RevocationEntry, RevocationList, RevocationLog } from './revocation/types.ts'
