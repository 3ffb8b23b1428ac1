/**
 * The issuer's metadata (OpenID Connect Discovery, through oauth4webapi, which checks that its
 * `issuer` is the one asked for), fetched at first use and kept: the app starts and answers
 * before the issuer does. A failed discovery is tried again at the next use.
 */
import * as oauth from 'oauth4webapi'

export const OUTBOUND_TIMEOUT_MS = 10_000

/** oauth4webapi refuses plain http unless told: the demo runs on http://127.0.0.1. */
export function httpOptions (url: URL): { [oauth.allowInsecureRequests]?: true, signal: AbortSignal } {
  return { ...(url.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true as const } : {}), signal: AbortSignal.timeout(OUTBOUND_TIMEOUT_MS) }
}

export type MetadataSource = () => Promise<oauth.AuthorizationServer>

export function issuerMetadata (issuer: URL): MetadataSource {
  let found: Promise<oauth.AuthorizationServer> | undefined
  return async () => {
    found ??= oauth.discoveryRequest(issuer, { ...httpOptions(issuer), algorithm: 'oidc' })
      .then(async (response) => await oauth.processDiscoveryResponse(issuer, response))
    try {
      return await found
    } catch (err) {
      found = undefined
      throw new IssuerUnavailable(`the issuer at ${issuer.origin} did not answer its discovery: ${(err as Error).message}`)
    }
  }
}

export class IssuerUnavailable extends Error {}

/** What went wrong, in a line: the OAuth error code and description when there is one. */
export function describeError (err: unknown): string {
  if (err instanceof oauth.ResponseBodyError || err instanceof oauth.AuthorizationResponseError) {
    return err.error_description === undefined ? err.error : `${err.error}: ${err.error_description}`
  }
  return err instanceof Error ? err.message : String(err)
}
