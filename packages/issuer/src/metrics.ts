/**
 * The issuer's Prometheus metrics (GET `metrics.path`): requests by route and status, token
 * responses by grant, password checks by result, sessions ended, published signing keys.
 * Counted in Maps and written by hand (@gatehouse/shared/prometheus).
 */
import { Counter, Exposition } from '@gatehouse/shared/prometheus'

export class IssuerMetrics {
  readonly #requests = new Map<string, Map<number, number>>()
  readonly tokens = new Counter('gatehouse_issuer_tokens_issued_total', 'Token endpoint responses with tokens, by grant type.', 'grant_type')
  readonly signIns = new Counter('gatehouse_issuer_sign_ins_total', 'Username and password checks (login page and password grant), by result.', 'result')
  readonly sessionsEnded = new Counter('gatehouse_issuer_sessions_ended_total', 'SSO sessions ended (logout at the issuer or through a gateway).')

  /** One finished request: `route` is the route's pattern, or `(none)` when none matched. */
  countRequest (route: string, status: number): void {
    let byStatus = this.#requests.get(route)
    if (byStatus === undefined) this.#requests.set(route, byStatus = new Map())
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
  }

  render (gauges: { signingKeys: number }): string {
    const out = new Exposition()
    out.head('gatehouse_issuer_requests_total', 'counter', 'Requests answered, by route and HTTP status.')
    for (const [route, byStatus] of this.#requests) {
      for (const [status, n] of byStatus) out.sample('gatehouse_issuer_requests_total', n, { route, status })
    }
    this.tokens.writeTo(out)
    this.signIns.writeTo(out)
    this.sessionsEnded.writeTo(out)
    out.head('gatehouse_issuer_signing_keys', 'gauge', 'Signing keys published in the JWKS (more than one during a rotation).')
    out.sample('gatehouse_issuer_signing_keys', gauges.signingKeys)
    return out.toString()
  }
}
