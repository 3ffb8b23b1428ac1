/**
 * The issuer's Prometheus metrics, on prom-client: the default process and Node.js metrics,
 * `gatehouse_build_info`, requests by route and status, their duration by endpoint and grant,
 * token responses by grant, password checks by result, sessions ended, published signing keys.
 */
import { Gauge, type Registry } from 'prom-client'
import { DURATION_BUCKETS, RequestCounter, RequestHistogram, serviceRegistry } from '@gatehouse/shared/metrics'

/** A counter with at most one label. */
export class LabelledCounter {
  readonly #counter: RequestCounter
  readonly #label: boolean

  constructor (counter: RequestCounter, label: boolean) {
    this.#counter = counter
    this.#label = label
  }

  inc (labelValue = '', by = 1): void {
    (this.#label ? this.#counter.child(labelValue) : this.#counter.child()).inc(by)
  }
}

export class IssuerMetrics {
  readonly registry: Registry
  readonly #requests: RequestCounter
  readonly #durations: RequestHistogram
  readonly #signingKeys: Gauge
  readonly tokens: LabelledCounter
  readonly signIns: LabelledCounter
  readonly sessionsEnded: LabelledCounter

  constructor (version = '0.0.0') {
    const registry = this.registry = serviceRegistry('issuer', version)
    const registers = [registry]
    this.#requests = new RequestCounter(registry, { name: 'gatehouse_issuer_requests_total', help: 'Requests answered, by route and HTTP status ((none) when no route matched).', labelNames: ['route', 'status'] })
    this.#durations = new RequestHistogram(registry, { name: 'gatehouse_issuer_request_duration_seconds', help: 'Time from a request\'s arrival to its response, by endpoint (route) and, at the token endpoint, grant type.', labelNames: ['route', 'grant_type'], buckets: DURATION_BUCKETS })
    this.tokens = new LabelledCounter(new RequestCounter(registry, { name: 'gatehouse_issuer_tokens_issued_total', help: 'Token endpoint responses with tokens, by grant type.', labelNames: ['grant_type'] }), true)
    this.signIns = new LabelledCounter(new RequestCounter(registry, { name: 'gatehouse_issuer_sign_ins_total', help: 'Username and password checks (login page and password grant), by result.', labelNames: ['result'] }), true)
    this.sessionsEnded = new LabelledCounter(new RequestCounter(registry, { name: 'gatehouse_issuer_sessions_ended_total', help: 'SSO sessions ended (logout at the issuer or through a gateway).' }), false)
    this.#signingKeys = new Gauge({ name: 'gatehouse_issuer_signing_keys', help: 'Signing keys published in the JWKS (more than one during a rotation).', registers })
  }

  /**
   * One finished request: `route` is the route's pattern, or `(none)`; `grant` the token
   * endpoint's grant type (one it knows, else `other`), `''` elsewhere.
   */
  countRequest (route: string, status: number, seconds?: number, grant = ''): void {
    this.#requests.child(route, String(status)).inc()
    if (seconds !== undefined) this.#durations.child(route, grant).observe(seconds)
  }

  async render (gauges: { signingKeys: number }): Promise<string> {
    this.#signingKeys.set(gauges.signingKeys)
    return await this.registry.metrics()
  }
}
