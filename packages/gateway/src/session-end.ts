/**
 * The issuer side of the gateway's logout: `POST <issuer>/oauth2/session/end`, authenticated
 * as the gateway's client (client_secret_basic), with the caller's access token and one
 * `audience` per resource server that wants a Back-Channel Logout token, and the logout
 * request's id (X-Request-Id), so the issuer's log lines of the call carry it too.
 */
import { AuthError } from '@gatehouse/fastify-auth'
import { badGateway, unavailable } from './errors.ts'

/** The issuer's answer. */
export interface SessionEnd {
  /** True when this call ended the session; false on a repeat or without a session. */
  ended: boolean
  sid: string | null
  sub: string
  jti: string
  exp: number
  /** audience -> logout_token */
  logoutTokens: Record<string, string>
}

export interface SessionEndRequest {
  endpoint: string
  clientId: string
  clientSecret: string
  token: string
  audiences: string[]
  /** Milliseconds. */
  timeout: number
  /** The logout request's id, sent as X-Request-Id: the issuer keeps it when it trusts this gateway (its `trustProxy`). */
  requestId: string
}

/** RFC 6749 2.3.1: id and secret are form-encoded before they are joined and base64-encoded. */
function basic (id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
}

function parse (body: unknown): SessionEnd | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const b = body as Record<string, unknown>
  const tokens = b.logout_tokens ?? {}
  if (typeof b.ended !== 'boolean' || !(typeof b.sid === 'string' || b.sid === null) || typeof b.sub !== 'string' ||
    typeof b.jti !== 'string' || typeof b.exp !== 'number' || typeof tokens !== 'object' || tokens === null) return undefined
  const logoutTokens: Record<string, string> = {}
  for (const [aud, token] of Object.entries(tokens)) if (typeof token === 'string') logoutTokens[aud] = token
  return { ended: b.ended, sid: b.sid, sub: b.sub, jti: b.jti, exp: b.exp, logoutTokens }
}

/** Longest Retry-After passed on from the issuer, seconds. */
const MAX_RETRY_AFTER_S = 300

/** The issuer's `Retry-After` in seconds (RFC 9110 10.2.3; an HTTP-date or garbage counts as 1). */
function retryAfter (value: string | null): number {
  const seconds = /^\d{1,9}$/.test(value ?? '') ? Number(value) : 1
  return Math.min(Math.max(seconds, 1), MAX_RETRY_AFTER_S)
}

/**
 * Asks the issuer to revoke the token and end its session.
 *
 * @throws {AuthError} 'inactive' when the issuer says the token is not one of its access tokens
 * @throws {GatewayError} 503 with Retry-After when the issuer is stalled (no answer within
 *   `timeout`) or says it is unavailable for now (503, 429: its store is stalled, or the
 *   gateway's client is throttled); 502 when it cannot be reached or answers otherwise
 */
export async function endSession (request: SessionEndRequest): Promise<SessionEnd> {
  const form = new URLSearchParams({ token: request.token })
  for (const audience of request.audiences) form.append('audience', audience)
  let res: Response
  try {
    res = await fetch(request.endpoint, {
      method: 'POST',
      headers: { authorization: basic(request.clientId, request.clientSecret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'x-request-id': request.requestId },
      body: form.toString(),
      signal: AbortSignal.timeout(request.timeout),
      redirect: 'manual'
    })
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw unavailable(`the issuer did not answer within ${request.timeout} ms, so the session may not be ended; this gateway already refuses the token; retry the logout`)
    throw badGateway('the issuer could not be reached to end the session')
  }
  const body: unknown = await res.json().catch(() => undefined)
  if (res.status === 503 || res.status === 429) {
    throw unavailable(`the issuer cannot end the session right now (HTTP ${res.status}); this gateway already refuses the token; retry the logout`, retryAfter(res.headers.get('retry-after')))
  }
  if (res.status === 400) throw new AuthError('inactive')
  if (res.status !== 200) throw badGateway(`the issuer refused to end the session (HTTP ${res.status})`)
  const parsed = parse(body)
  if (parsed === undefined) throw badGateway('the issuer\'s session-end answer is malformed')
  return parsed
}
