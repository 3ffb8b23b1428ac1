/**
 * Client and redirect_uri of an authorization request. Until both are valid, errors are shown
 * on an error page, never redirected (RFC 6749 4.1.2.1): no open redirect.
 */
import type { Client, ClientRegistry } from '../clients.ts'
import type { FormParams } from './form.ts'

export class UnsafeRequestError extends Error {}

export function checkClientAndRedirect (params: FormParams, clients: ClientRegistry): { client: Client, redirectUri: string, redirectUriGiven: boolean } {
  const clientId = params.client_id
  if (clientId === undefined) throw new UnsafeRequestError('The request has no client_id.')
  const client = clients.get(clientId)
  if (client === undefined) throw new UnsafeRequestError('The application that sent you here is not registered.')
  const given = params.redirect_uri
  if (given === undefined) {
    // RFC 6749 3.1.2.3: may be omitted only when exactly one is registered.
    const only = client.redirectUris.length === 1 ? client.redirectUris[0] : undefined
    if (only === undefined) throw new UnsafeRequestError('The request has no redirect_uri.')
    return { client, redirectUri: only, redirectUriGiven: false }
  }
  // Exact string match (RFC 9700 2.1): no prefix, wildcard or normalisation.
  if (!client.redirectUris.includes(given)) throw new UnsafeRequestError('The redirect_uri is not registered for this application.')
  return { client, redirectUri: given, redirectUriGiven: true }
}
