/**
 * Client authentication at the token, revocation and introspection endpoints
 * (RFC 6749 2.3: client_secret_basic, client_secret_post; none for public clients).
 */
import type { Client, ClientRegistry, AuthMethodName } from '../clients.ts'
import { invalidClient, invalidRequest } from '../errors.ts'
import type { FormParams } from './form.ts'

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

/** Which client is calling, and with what proof. Throws invalid_client/invalid_request. */
export function authenticateClient (authorization: string | undefined, params: FormParams, registry: ClientRegistry): Client {
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
