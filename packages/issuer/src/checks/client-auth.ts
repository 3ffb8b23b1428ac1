/**
 * Client authentication at the token, revocation, introspection and session-end endpoints
 * (RFC 6749 2.3: client_secret_basic, client_secret_post; none for public clients), throttled:
 * failures are counted per client_id and per IP (checks/failure-limit.ts).
 */
import type { FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import type { Client, ClientRegistry, AuthMethodName } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { invalidClient, invalidRequest, OAuthError } from '../errors.ts'
import { FailureLimit, TooManyFailures, type Counted, type Lock } from './failure-limit.ts'
import { formParams, type FormParams } from './form.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The client `clientAuthentication` authenticated; null on endpoints that do not run it. */
    client: Client | null
  }
}

/** RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding. */
function formDecode (value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    throw invalidClient('malformed Basic credentials')
  }
}

function parseBasic (header: string): { id: string, secret: string } {
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim())
  if (match?.[1] === undefined) throw invalidClient('malformed Authorization header')
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 1) throw invalidClient('malformed Basic credentials')
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) }
}

/** What the request presents: a client id, maybe a secret, and by which method. */
export interface Credentials {
  id: string
  secret: string | undefined
  method: AuthMethodName
}

/** Reads the credentials without checking them. Throws invalid_client/invalid_request. */
export function presentedCredentials (authorization: string | undefined, params: FormParams): Credentials {
  let id: string | undefined
  let secret: string | undefined
  let method: AuthMethodName
  if (authorization !== undefined) {
    if (params.client_secret !== undefined) throw invalidRequest('more than one client authentication method')
    const basic = parseBasic(authorization)
    if (params.client_id !== undefined && params.client_id !== basic.id) throw invalidRequest('client_id does not match the Authorization header')
    id = basic.id
    secret = basic.secret
    method = 'client_secret_basic'
  } else if (params.client_secret !== undefined) {
    id = params.client_id
    secret = params.client_secret
    method = 'client_secret_post'
  } else {
    id = params.client_id
    method = 'none'
  }
  if (id === undefined || id === '') throw invalidClient('client authentication required')
  return { id, secret, method }
}

/** Which registered client the credentials prove. Throws invalid_client. */
export function verifyClient ({ id, secret, method }: Credentials, registry: ClientRegistry): Client {
  const client = registry.get(id)
  if (client === undefined) {
    registry.burnSecretCheck(secret ?? '')
    throw invalidClient()
  }
  if (!client.authMethods.has(method)) {
    throw invalidClient(method === 'none' ? 'client authentication required' : `client may not use ${method}`)
  }
  if (method !== 'none' && !client.matchesSecret(secret ?? '')) throw invalidClient()
  return client
}

const isAuthFailure = (err: unknown): err is OAuthError => err instanceof OAuthError && err.code === 'invalid_client'

/**
 * preHandler of every endpoint that authenticates clients: sets `request.client`. Failures are
 * counted per address and per registered client_id (unknown ids would only fill the store).
 * - An address past `clientAuthPerIp` is refused with 429 before any secret is checked.
 * - A client_id past `clientAuthPerClient` answers its wrong secrets with 429 instead of 401,
 *   but its right secret still works: client secrets are long random values that nobody
 *   guesses, while refusing the right one would let anyone who knows a client_id (the
 *   gateway's, say) lock it out, and with it every logout.
 */
export function clientAuthentication (ctx: IssuerContext): (request: FastifyRequest) => Promise<void> {
  const limits = ctx.config.rateLimit
  const limit = new FailureLimit(ctx.stores.authFailures, ctx.clock, limits.clientAuthWindow)
  return async function authenticate (request) {
    let credentials: Credentials | undefined
    let malformed: OAuthError | undefined
    try {
      credentials = presentedCredentials(request.headers.authorization, formParams(request))
    } catch (err) {
      if (!isAuthFailure(err)) throw err
      malformed = err
    }
    const counted: Counted[] = [{ kind: 'client-ip', id: request.ip, max: limits.clientAuthPerIp }]
    if (credentials !== undefined && ctx.clients.get(credentials.id) !== undefined) {
      counted.push({ kind: 'client', id: credentials.id, max: limits.clientAuthPerClient })
    }
    const { lock } = await limit.check(counted)
    const who = { client_id: credentials?.id, ip: request.ip }
    if (lock?.kind === 'client-ip') {
      audit(request.log, 'client_auth.throttled', { ...who, reason: 'ip_locked', retry_after: lock.retryAfterSeconds })
      throw tooMany(lock)
    }
    try {
      if (credentials === undefined) throw malformed ?? invalidClient()
      request.client = verifyClient(credentials, ctx.clients)
    } catch (err) {
      if (!isAuthFailure(err)) throw err
      await limit.fail(counted)
      if (lock === null) audit(request.log, 'client_auth.failed', { ...who, reason: failureReason(credentials, ctx.clients) })
      else audit(request.log, 'client_auth.throttled', { ...who, reason: 'client_locked', retry_after: lock.retryAfterSeconds })
      throw lock === null ? err : tooMany(lock)
    }
    request.clientId = request.client.id
  }
}

/** Why credentials failed, as a stable code for the audit line. */
function failureReason (credentials: Credentials | undefined, registry: ClientRegistry): string {
  if (credentials === undefined) return 'missing_or_malformed'
  const client = registry.get(credentials.id)
  if (client === undefined) return 'unknown_client'
  if (!client.authMethods.has(credentials.method)) return 'method_not_allowed'
  return 'wrong_secret'
}

function tooMany (lock: Lock): TooManyFailures {
  const what = lock.kind === 'client' ? 'for this client' : 'from this address'
  return new TooManyFailures(`too many failed client authentications ${what}, try again later`, lock.retryAfterSeconds)
}

/** The client `clientAuthentication` set: a route that authenticates clients without it is a bug. */
export function authenticatedClient (request: FastifyRequest): Client {
  if (request.client === null) throw new Error(`${request.routeOptions.url ?? request.url} runs without clientAuthentication`)
  return request.client
}
