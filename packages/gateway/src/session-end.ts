/**
 * The issuer side of the gateway's logout: `POST <issuer>/oauth2/session/end`, authenticated
 * as the gateway's client (client_secret_basic), with the caller's access token and one
 * `audience` per resource server that wants a Back-Channel Logout token.
 */
import { AuthError } from '@gatehouse/fastify-auth'
import { badGateway } from './errors.ts'

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

/**
 * Asks the issuer to revoke the token and end its session.
 *
 * @throws {AuthError} 'inactive' when the issuer says the token is not one of its access tokens
 * @throws {GatewayError} 502 when the issuer cannot be reached or answers otherwise
 */
export async function endSession (request: SessionEndRequest): Promise<SessionEnd> {
  const form = new URLSearchParams({ token: request.token })
  for (const audience of request.audiences) form.append('audience', audience)
  let res: Response
  try {
    res = await fetch(request.endpoint, {
      method: 'POST',
      headers: { authorization: basic(request.clientId, request.clientSecret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(request.timeout),
      redirect: 'manual'
    })
  } catch {
    throw badGateway('the issuer could not be reached to end the session')
  }
  const body: unknown = await res.json().catch(() => undefined)
  if (res.status === 400) throw new AuthError('inactive')
  if (res.status !== 200) throw badGateway(`the issuer refused to end the session (HTTP ${res.status})`)
  const parsed = parse(body)
  if (parsed === undefined) throw badGateway('the issuer\'s session-end answer is malformed')
  return parsed
}
