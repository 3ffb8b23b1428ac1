/**
 * The authorization request once client and redirect_uri are known good (errors from here on
 * are redirected back to the client with state and iss).
 */
import type { Client } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { OAuthError, invalidRequest } from '../errors.ts'
import type { FormParams } from './form.ts'
import { checkCodeChallenge } from './pkce.ts'

export type ResponseType = 'code' | 'token'
export type Prompt = 'none' | 'login' | 'consent' | 'select_account'

export interface AuthorizationRequest {
  client: Client
  redirectUri: string
  redirectUriGiven: boolean
  responseType: ResponseType
  state?: string
  nonce?: string
  scope: string[]
  audience: string[]
  prompt: Set<Prompt>
  maxAge?: number
  loginHint?: string
  codeChallenge?: string
}

const PROMPTS = new Set<string>(['none', 'login', 'consent', 'select_account'])

export function parseAuthorizationRequest (ctx: IssuerContext, client: Client, redirectUri: string, redirectUriGiven: boolean, params: FormParams, resources: string[]): AuthorizationRequest {
  const responseType = params.response_type
  if (responseType === undefined) throw invalidRequest('response_type is required')
  if (responseType !== 'code' && responseType !== 'token') throw new OAuthError('unsupported_response_type', 400, `response_type "${responseType.slice(0, 40)}" is not supported`)
  // Implicit only for clients that opted in (OAuth 2.1 drops it; RFC 9700 2.1.2).
  if (responseType === 'token' && !client.grants.has('implicit')) throw new OAuthError('unauthorized_client', 400, 'this client may not use the implicit grant')
  if (responseType === 'code' && !client.grants.has('authorization_code')) throw new OAuthError('unauthorized_client', 400, 'this client may not use the authorization code grant')
  if (params.response_mode !== undefined && params.response_mode !== (responseType === 'code' ? 'query' : 'fragment')) {
    throw invalidRequest(`response_mode "${params.response_mode.slice(0, 40)}" is not supported for response_type ${responseType}`)
  }
  if (params.request !== undefined || params.request_uri !== undefined) throw new OAuthError('invalid_request', 400, 'request objects are not supported')

  const prompt = new Set<Prompt>()
  for (const p of (params.prompt ?? '').split(' ').filter(Boolean)) {
    if (!PROMPTS.has(p)) throw invalidRequest(`unknown prompt "${p.slice(0, 40)}"`)
    prompt.add(p as Prompt)
  }
  if (prompt.has('none') && prompt.size > 1) throw invalidRequest('prompt=none cannot be combined with other values')

  let maxAge: number | undefined
  if (params.max_age !== undefined) {
    if (!/^\d{1,9}$/.test(params.max_age)) throw invalidRequest('max_age must be a non-negative integer')
    maxAge = Number(params.max_age)
  }

  const needsPkce = client.requirePkce || ctx.config.authorization.requirePkce
  const codeChallenge = responseType === 'code'
    ? checkCodeChallenge(params.code_challenge, params.code_challenge_method, needsPkce)
    : undefined
  const scope = ctx.scopes.select(params.scope, client.scopes)
  const grant = ctx.scopes.audience(scope, resources, client)
  if (params.nonce !== undefined && params.nonce.length > 512) throw invalidRequest('nonce is too long')
  if (params.state !== undefined && params.state.length > 2048) throw invalidRequest('state is too long')

  return {
    client,
    redirectUri,
    redirectUriGiven,
    responseType,
    ...(params.state === undefined ? {} : { state: params.state }),
    ...(params.nonce === undefined ? {} : { nonce: params.nonce }),
    scope: grant.scope,
    audience: grant.audience,
    prompt,
    ...(maxAge === undefined ? {} : { maxAge }),
    ...(params.login_hint === undefined ? {} : { loginHint: params.login_hint.slice(0, 200) }),
    ...(codeChallenge === undefined ? {} : { codeChallenge })
  }
}

/** The redirect back to the client: query for code, fragment for token; always `iss` (RFC 9207). */
export function authorizationResponse (ctx: IssuerContext, request: Pick<AuthorizationRequest, 'redirectUri' | 'responseType' | 'state'>, values: Record<string, string>): string {
  const target = new URL(request.redirectUri)
  const out = new URLSearchParams()
  for (const [k, v] of Object.entries(values)) out.set(k, v)
  if (request.state !== undefined) out.set('state', request.state)
  out.set('iss', ctx.config.issuer)
  if (request.responseType === 'token') {
    target.hash = out.toString()
  } else {
    for (const [k, v] of out) target.searchParams.set(k, v)
  }
  return target.toString()
}
