/** The issuer's discovery document (OIDC Discovery 1.0 4, RFC 8414 3), fetched once and kept. */
import { fetchJson, IssuerFetchError } from './http.ts'
import type { Clock } from './revocation/types.ts'

/** The members this package reads. */
export interface DiscoveryDocument {
  issuer: string
  jwks_uri?: string
  introspection_endpoint?: string
}

/**
 * The discovery document names another issuer than the one configured. Not an outage: a config
 * mistake (often a trailing slash), which a retry will not fix. OIDC Discovery 1.0 4.3 and
 * RFC 8414 3.3 compare the two exactly, as RFC 9068 4 compares a token's `iss`.
 */
export class IssuerMismatchError extends IssuerFetchError {
  /** The configured issuer. */
  readonly expected: string
  /** The document's `issuer`, as received. */
  readonly found: unknown

  constructor (url: string, expected: string, found: unknown) {
    super(`${url}: the issuer calls itself ${JSON.stringify(found)}, not ${JSON.stringify(expected)} (compared exactly; a trailing slash counts)`)
    this.name = 'IssuerMismatchError'
    this.expected = expected
    this.found = found
  }
}

/** After a failed fetch, callers get the same failure for this long instead of a new request. */
const FAILURE_BACKOFF_MS = 1000

export class Discovery {
  readonly #url: string
  readonly #issuer: string
  readonly #timeout: number
  readonly #clock: Clock
  #document: DiscoveryDocument | undefined
  #pending: Promise<DiscoveryDocument> | undefined
  #failure: { at: number, error: Error } | undefined

  constructor (url: string, issuer: string, timeout: number, clock: Clock) {
    this.#url = url
    this.#issuer = issuer
    this.#timeout = timeout
    this.#clock = clock
  }

  /** The document; fetched on first use, then kept. Throws IssuerFetchError. */
  async get (): Promise<DiscoveryDocument> {
    if (this.#document !== undefined) return this.#document
    const failure = this.#failure
    if (failure !== undefined && this.#clock.now() - failure.at < FAILURE_BACKOFF_MS) throw failure.error
    this.#pending ??= this.#fetch().finally(() => { this.#pending = undefined })
    return await this.#pending
  }

  async #fetch (): Promise<DiscoveryDocument> {
    try {
      const body = await fetchJson(this.#url, this.#timeout)
      // OIDC Discovery 1.0 4.3 / RFC 8414 3.3: the issuer in the document must be ours, exactly.
      if (body.issuer !== this.#issuer) throw new IssuerMismatchError(this.#url, this.#issuer, body.issuer)
      const document: DiscoveryDocument = { issuer: this.#issuer }
      if (typeof body.jwks_uri === 'string') document.jwks_uri = body.jwks_uri
      if (typeof body.introspection_endpoint === 'string') document.introspection_endpoint = body.introspection_endpoint
      this.#document = document
      this.#failure = undefined
      return document
    } catch (err) {
      this.#failure = { at: this.#clock.now(), error: err as Error }
      throw err
    }
  }
}
