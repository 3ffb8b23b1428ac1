/**
 * The issuer's Prometheus metrics, on prom-client: the default process and Node.js metrics,
 * `gatehouse_build_info`, requests by route and status, their duration by endpoint and grant,
 * token responses by grant, password checks by result, sessions ended, published signing keys.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { Children, DURATION_BUCKETS, serviceRegistry } from '@gatehouse/shared/metrics'

/** A counter with at most one label, counted through cached children. */
export class LabelledCounter {
  readonly #children: Children<Counter.Internal>

  constructor (counter: Counter<string>, label: boolean) {
    this.#children = new Children((value) => label ? counter.labels(value) : counter.labels())
  }

  inc (labelValue = '', by = 1): void {
    this.#children.get(labelValue).inc(by)
  }
}

export class IssuerMetrics {
  readonly registry: Registry
  readonly #requests: Children<Counter.Internal>
  readonly #durations: Children<Histogram.Internal<string>>
  readonly #signingKeys: Gauge
  readonly tokens: LabelledCounter
  readonly signIns: LabelledCounter
  readonly sessionsEnded: LabelledCounter

  constructor (version = '0.0.0') {
    const registry = this.registry = serviceRegistry('issuer', version)
    const registers = [registry]
    const requests = new Counter({ name: 'gatehouse_issuer_requests_total', help: 'Requests answered, by route and HTTP status ((none) when no route matched).', labelNames: ['route', 'status'], registers })
    this.#requests = new Children((route, status) => requests.labels(route, status))
    const durations = new Histogram({ name: 'gatehouse_issuer_request_duration_seconds', help: 'Time from a request\'s arrival to its response, by endpoint (route) and, at the token endpoint, grant type.', labelNames: ['route', 'grant_type'], buckets: DURATION_BUCKETS, registers })
    this.#durations = new Children((route, grant) => durations.labels(route, grant))
    this.tokens = new LabelledCounter(new Counter({ name: 'gatehouse_issuer_tokens_issued_total', help: 'Token endpoint responses with tokens, by grant type.', labelNames: ['grant_type'], registers }), true)
    this.signIns = new LabelledCounter(new Counter({ name: 'gatehouse_issuer_sign_ins_total', help: 'Username and password checks (login page and password grant), by result.', labelNames: ['result'], registers }), true)
    this.sessionsEnded = new LabelledCounter(new Counter({ name: 'gatehouse_issuer_sessions_ended_total', help: 'SSO sessions ended (logout at the issuer or through a gateway).', registers }), false)
    this.#signingKeys = new Gauge({ name: 'gatehouse_issuer_signing_keys', help: 'Signing keys published in the JWKS (more than one during a rotation).', registers })
  }

  /**
   * One finished request: `route` is the route's pattern, or `(none)`; `grant` the token
   * endpoint's grant type (one it knows, else `other`), `''` elsewhere.
   */
  countRequest (route: string, status: number, seconds?: number, grant = ''): void {
    this.#requests.get(route, String(status)).inc()
    if (seconds !== undefined) this.#durations.get(route, grant).observe(seconds)
  }

  async render (gauges: { signingKeys: number }): Promise<string> {
    this.#signingKeys.set(gauges.signingKeys)
    return await this.registry.metrics()
  }
}
