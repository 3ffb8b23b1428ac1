/** The transmitter's configuration metadata (SSF 1.0, Transmitter Configuration Metadata). */
import { expectObject, NotOfferedError, request, TransmitterError, urlMember } from './transport.ts'
import { POLL_DELIVERY } from './wire.ts'

/** The members the receiver uses. */
export interface TransmitterMetadata {
  jwksUri: string
  configurationEndpoint: string
}

/**
 * Reads and checks the metadata: it must name `issuer` exactly (SSF 1.0, Transmitter
 * Configuration Validation), publish its keys and a configuration endpoint, and offer poll
 * delivery when it lists its delivery methods. Throws TransmitterError.
 */
export async function fetchMetadata (url: string, issuer: string, timeoutMs: number, signal?: AbortSignal): Promise<TransmitterMetadata> {
  const answer = await request(url, { timeoutMs, signal })
  if (answer.status === 404) throw new NotOfferedError(`${url}: HTTP 404: no Shared Signals transmitter metadata there`, 404)
  const document = expectObject(url, answer, [200])
  if (document.issuer !== issuer) {
    throw new TransmitterError(`${url}: the metadata names another issuer than ${issuer} (compared exactly; a trailing slash counts)`)
  }
  const methods = document.delivery_methods_supported
  if (Array.isArray(methods) && !methods.includes(POLL_DELIVERY)) {
    throw new TransmitterError(`${url}: the transmitter does not offer poll delivery (${POLL_DELIVERY})`)
  }
  return {
    jwksUri: urlMember(url, document, 'jwks_uri'),
    configurationEndpoint: urlMember(url, document, 'configuration_endpoint')
  }
}
