/**
 * The access token the receiver shows the transmitter: a static one, or one from the client
 * credentials grant (RFC 6749 4.4) with scope `ssf.manage`, kept until shortly before it expires
 * and replaced once when the transmitter answers 401.
 */
import type { Clock } from '../revocation/types.ts'
import type { Credentials } from './options.ts'
import { expectObject, NotOfferedError, request, TransmitterError, urlMember } from './transport.ts'
import { MANAGE_SCOPE } from './wire.ts'

/** A token is replaced this long before its `expires_in` runs out (or at half its life, if shorter). */
const RENEW_MARGIN_MS = 30_000

/** RFC 6749 2.3.1: the client id and secret are form-encoded before going into Basic. */
const formEncode = (value: string): string => encodeURIComponent(value).replace(/%20/g, '+')

export class AccessTokens {
  readonly #credentials: Credentials
  readonly #issuer: string
  readonly #timeoutMs: number
  readonly #clock: Clock
  #tokenEndpoint: string | undefined
  #token: { value: string, renewAt: number } | undefined
  #pending: Promise<string> | undefined

  constructor (credentials: Credentials, issuer: string, timeoutMs: number, clock: Clock) {
    this.#credentials = credentials
    this.#issuer = issuer
    this.#timeoutMs = timeoutMs
    this.#clock = clock
    if (credentials.kind === 'client') this.#tokenEndpoint = credentials.tokenEndpoint
  }

  /** True when a refused token can be replaced by a new one (client credentials). */
  get isRenewable (): boolean {
    return this.#credentials.kind === 'client'
  }

  /** A token to use now. Throws TransmitterError. */
  async get (signal?: AbortSignal): Promise<string> {
    if (this.#credentials.kind === 'bearer') return this.#credentials.token
    if (this.#token !== undefined && this.#clock.now() < this.#token.renewAt) return this.#token.value
    this.#pending ??= this.#fetch(signal).finally(() => { this.#pending = undefined })
    return await this.#pending
  }

  /** Forgets `token` (the transmitter refused it), so the next get() asks for a new one. */
  invalidate (token: string): void {
    if (this.#token?.value === token) this.#token = undefined
  }

  async #fetch (signal: AbortSignal | undefined): Promise<string> {
    if (this.#credentials.kind !== 'client') throw new TransmitterError('no client credentials')
    const { clientId, clientSecret } = this.#credentials
    const endpoint = this.#tokenEndpoint ?? await this.#discover(signal)
    const answer = await request(endpoint, {
      method: 'POST',
      form: new URLSearchParams({ grant_type: 'client_credentials', scope: MANAGE_SCOPE }),
      authorization: `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`,
      timeoutMs: this.#timeoutMs,
      signal
    })
    const refusal = typeof answer.body === 'object' && answer.body !== null ? (answer.body as Record<string, unknown>).error : undefined
    if (answer.status === 400 && (refusal === 'invalid_scope' || refusal === 'unauthorized_client')) {
      throw new NotOfferedError(`${endpoint}: client ${clientId} may not have the scope ${MANAGE_SCOPE} (${refusal})`, 400)
    }
    const body = expectObject(endpoint, answer, [200])
    const { access_token: value, token_type: type, expires_in: expiresIn } = body
    // RFC 6749 5.1: access_token and token_type are required; the type is case-insensitive.
    if (typeof value !== 'string' || value === '' || typeof type !== 'string' || type.toLowerCase() !== 'bearer') {
      throw new TransmitterError(`${endpoint}: the answer has no bearer access_token`)
    }
    const now = this.#clock.now()
    const lifeMs = typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn * 1000 : Infinity
    this.#token = { value, renewAt: now + Math.max(0, lifeMs - Math.min(RENEW_MARGIN_MS, lifeMs / 2)) }
    return value
  }

  /**
   * OIDC Discovery 1.0 4 (`/.well-known/openid-configuration` appended to the issuer), else
   * RFC 8414 3 (`/.well-known/oauth-authorization-server` inserted before the path). Either
   * document must name the issuer exactly.
   */
  async #discover (signal: AbortSignal | undefined): Promise<string> {
    const issuer = this.#issuer
    const url = new URL(issuer)
    const candidates = [
      `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
      `${url.origin}/.well-known/oauth-authorization-server${url.pathname.replace(/\/+$/, '')}`
    ]
    let failure: unknown
    for (const candidate of candidates) {
      try {
        const document = expectObject(candidate, await request(candidate, { timeoutMs: this.#timeoutMs, signal }), [200])
        if (document.issuer !== issuer) throw new TransmitterError(`${candidate}: the document names another issuer`)
        this.#tokenEndpoint = urlMember(candidate, document, 'token_endpoint')
        return this.#tokenEndpoint
      } catch (err) {
        failure ??= err
        if (signal?.aborted === true) break
      }
    }
    throw failure
  }
}
