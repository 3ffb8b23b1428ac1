/** The one mapping from AuthError to an HTTP answer (RFC 6750 3). */
import type { FastifyReply } from 'fastify'
import type { AuthError } from './errors.ts'

/** RFC 6750 3: attribute values are quoted-strings of %x20-21 / %x23-5B / %x5D-7E. */
function quoted (value: string): string {
  return '"' + value.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '') + '"'
}

/**
 * The `WWW-Authenticate` challenge for a 401 or 403 (RFC 6750 3); undefined for a 503.
 * Always with an error code: a request with no credentials gets `invalid_token` too (below).
 */
export function bearerChallenge (err: AuthError, realm = 'gatehouse'): string | undefined {
  if (err.status === 503) return undefined
  // A missing token gets error="invalid_token" too. RFC 6750 3.1 says it SHOULD carry no error
  // code, but the product contract (docs/product.md, The gateway) promises invalid_token for
  // missing, invalid, expired and revoked tokens alike, and clients match on it.
  let challenge = `Bearer realm=${quoted(realm)}`
  challenge += `, error=${quoted(err.code ?? 'invalid_token')}, error_description=${quoted(err.description)}`
  if (err.scope !== undefined) challenge += `, scope=${quoted(err.scope)}`
  return challenge
}

/**
 * Sends the answer for `err`: its status (401, 403 or 503), the Bearer challenge for 401/403,
 * `Cache-Control: no-store`, and a JSON body `{ error, error_description }` (error is
 * 'invalid_token', 'insufficient_scope' or 'temporarily_unavailable'; a missing token says
 * 'invalid_token' in the body and in the challenge, as the product contract promises).
 * `realm` defaults to the registered plugin's, else 'gatehouse'.
 */
export function sendAuthError (reply: FastifyReply, err: AuthError, realm?: string): FastifyReply {
  const challenge = bearerChallenge(err, realm ?? reply.server.gatehouseAuth?.realm ?? 'gatehouse')
  if (challenge !== undefined) reply.header('www-authenticate', challenge)
  return reply
    .code(err.status)
    .header('cache-control', 'no-store')
    .send({ error: err.code ?? 'invalid_token', error_description: err.description })
}
