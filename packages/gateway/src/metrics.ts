/**
 * The gateway's Prometheus metrics, on prom-client: the default process and Node.js metrics,
 * `gatehouse_build_info`, request durations per route and status, the time spent in token
 * checks and upstream calls, and the counts and gauges below (read from their sources at scrape
 * time). The per-request ones are counted in plain numbers (@gatehouse/shared/metrics): a
 * request costs a Map lookup per metric and no label hashing.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { VerifierStats } from '@gatehouse/fastify-auth'
import { DURATION_BUCKETS, RequestCounter, RequestHistogram, serviceRegistry, type CounterChild, type HistogramChild } from '@gatehouse/shared/metrics'

/** Gauges read at scrape time. */
export interface GaugeSources {
  revocationListSize (): number
  /** Milliseconds; Infinity before the first sync. */
  revocationStaleness (): number
  /** Revocations queued while Redis is unreachable (0 without Redis). */
  revocationPendingWrites (): number
  /** Entries written back into Redis after it lost them. */
  revocationsWrittenBack (): number
  /** Each Shared Signals stream: its staleness (ms) and its receiver's counters. */
  signals (): Array<{ transmitter: string, staleness: number, applied: number, refused: number, polls: number, failures: number }>
  /** The token verifier's own counters (cache hits, signature checks, JWKS fetches, introspections). */
  verifier (): VerifierStats
  /** WebSocket connections open through the gateway, and those closed because their token no longer holds. */
  websockets (): { open: number, closedInvalid: number }
  /** Every route's upstreams: in rotation or not, failures by kind, ejections. */
  upstreams (): Iterable<{ route: string, label: string, isUp: boolean, failures: Record<string, number>, ejectionsTotal: number }>
}

/** The gateway's metrics, and their exposition. */
export class GatewayMetrics {
  readonly registry: Registry
  readonly #requests: RequestCounter
  readonly #durations: RequestHistogram
  readonly #upstream: RequestHistogram
  readonly #tokenChecks: RequestHistogram
  readonly #authFailures: RequestCounter
  readonly #logouts: RequestCounter
  readonly #retries: RequestCounter
  /** The children of the last route and status counted: most requests repeat them. */
  #last: { route: string, status: number, count: CounterChild, duration: HistogramChild } | undefined
  /** Sources read at scrape time: set from them, then exposed. */
  readonly #scraped: {
    revocationListSize: Gauge,
    revocationStaleness: Gauge,
    pendingWrites: Gauge,
    writtenBack: Counter,
    ssfEvents: Counter<string>,
    ssfPollFailures: Counter<string>,
    ssfStaleness: Gauge<string>,
    cacheHits: Counter,
    signatureChecks: Counter,
    jwksFetches: Counter,
    introspections: Counter,
    websockets: Gauge,
    websocketRevokedCloses: Counter,
    upstreamUp: Gauge<string>,
    upstreamFailures: Counter<string>,
    upstreamEjections: Counter<string>
  }

  constructor (version = '0.0.0') {
    const registry = this.registry = serviceRegistry('gateway', version)
    const registers = [registry]
    this.#requests = new RequestCounter(registry, { name: 'gatehouse_gateway_requests_total', help: 'Requests answered, by route and HTTP status (route: the route\'s name, the gateway\'s own path, or (none) when no route matched).', labelNames: ['route', 'status'] })
    this.#durations = new RequestHistogram(registry, { name: 'gatehouse_gateway_request_duration_seconds', help: 'Time from a request\'s arrival to its response, by route and HTTP status.', labelNames: ['route', 'status'], buckets: DURATION_BUCKETS })
    this.#upstream = new RequestHistogram(registry, { name: 'gatehouse_gateway_upstream_duration_seconds', help: 'Time from forwarding a request to the upstream\'s response headers, by route.', labelNames: ['route'], buckets: DURATION_BUCKETS })
    this.#tokenChecks = new RequestHistogram(registry, { name: 'gatehouse_gateway_token_check_duration_seconds', help: 'Time spent checking the token of a request (cache, signature, revocation, scopes; introspection when configured), by route.', labelNames: ['route'], buckets: DURATION_BUCKETS })
    this.#authFailures = new RequestCounter(registry, { name: 'gatehouse_gateway_auth_failures_total', help: 'Requests refused by token validation, by reason.', labelNames: ['reason'] })
    this.#logouts = new RequestCounter(registry, { name: 'gatehouse_gateway_logouts_total', help: 'Logouts through the gateway, by result.', labelNames: ['result'] })
    this.#retries = new RequestCounter(registry, { name: 'gatehouse_gateway_upstream_retries_total', help: 'Requests sent again after an upstream failed them, by route and reason (not_sent: the connection failed, so another upstream got it; idempotent: a retry of a bodyless idempotent request).', labelNames: ['route', 'reason'] })
    this.#scraped = {
      revocationListSize: new Gauge({ name: 'gatehouse_gateway_revocation_list_size', help: 'Live entries (jti and sid) in the local revocation mirror.', registers }),
      revocationStaleness: new Gauge({ name: 'gatehouse_gateway_revocation_staleness_seconds', help: 'Seconds since the revocation mirror last heard from its sources (0 in memory; +Inf before the first sync).', registers }),
      pendingWrites: new Gauge({ name: 'gatehouse_gateway_revocation_pending_writes', help: 'Revocations this gateway holds that Redis has not taken yet (queued while it is unreachable).', registers }),
      writtenBack: new Counter({ name: 'gatehouse_gateway_revocations_written_back_total', help: 'Revocations this gateway wrote back into Redis after Redis lost them (restart without persistence, flush, failover).', registers }),
      ssfEvents: new Counter({ name: 'gatehouse_gateway_ssf_events_total', help: 'Security Event Tokens received on Shared Signals streams, by transmitter and result (applied, refused).', labelNames: ['transmitter', 'result'], registers }),
      ssfPollFailures: new Counter({ name: 'gatehouse_gateway_ssf_poll_failures_total', help: 'Polls of a Shared Signals transmitter that failed (unreachable, timeout, error status).', labelNames: ['transmitter'], registers }),
      ssfStaleness: new Gauge({ name: 'gatehouse_gateway_ssf_staleness_seconds', help: 'Seconds since the Shared Signals stream last answered (0 while a poll is held open; +Inf before the first catch-up).', labelNames: ['transmitter'], registers }),
      cacheHits: new Counter({ name: 'gatehouse_gateway_token_cache_hits_total', help: 'Requests whose token was found in the verified-token cache (no signature check).', registers }),
      signatureChecks: new Counter({ name: 'gatehouse_gateway_token_signature_checks_total', help: 'Access token signatures checked locally.', registers }),
      jwksFetches: new Counter({ name: 'gatehouse_gateway_jwks_fetches_total', help: 'Fetches of the issuer\'s JWK Set.', registers }),
      introspections: new Counter({ name: 'gatehouse_gateway_introspection_requests_total', help: 'Requests sent to the issuer\'s introspection endpoint (routes with validation: introspect).', registers }),
      websockets: new Gauge({ name: 'gatehouse_gateway_websocket_connections', help: 'WebSocket connections open through the gateway.', registers }),
      websocketRevokedCloses: new Counter({ name: 'gatehouse_gateway_websocket_revoked_closes_total', help: 'WebSocket connections closed because their session or token was revoked or their token expired.', registers }),
      upstreamUp: new Gauge({ name: 'gatehouse_gateway_upstream_up', help: 'Whether an upstream of a route is in rotation (1) or ejected by its health checks (0), on this gateway instance.', labelNames: ['route', 'upstream'], registers }),
      upstreamFailures: new Counter({ name: 'gatehouse_gateway_upstream_failures_total', help: 'Requests an upstream failed, by route, upstream and kind (connect: refused or unreachable, nothing sent; timeout; reset; status: a 5xx listed in health.passive.statuses).', labelNames: ['route', 'upstream', 'kind'], registers }),
      upstreamEjections: new Counter({ name: 'gatehouse_gateway_upstream_ejections_total', help: 'Times an upstream was ejected from rotation by passive health checks, by route and upstream.', labelNames: ['route', 'upstream'], registers })
    }
  }

  /** One answered request: its route label, status and, when known, its duration. */
  countRequest (route: string, status: number, seconds?: number): void {
    let last = this.#last
    if (last === undefined || last.route !== route || last.status !== status) {
      const labels = [route, String(status)]
      last = this.#last = { route, status, count: this.#requests.child(...labels), duration: this.#durations.child(...labels) }
    }
    last.count.inc()
    if (seconds !== undefined) last.duration.observe(seconds)
  }

  countAuthFailure (reason: string): void {
    this.#authFailures.child(reason).inc()
  }

  countLogout (result: string): void {
    this.#logouts.child(result).inc()
  }

  countUpstreamRetry (route: string, reason: 'not_sent' | 'idempotent'): void {
    this.#retries.child(route, reason).inc()
  }

  /** Time to the upstream's response headers. */
  observeUpstream (route: string, seconds: number): void {
    this.#upstream.child(route).observe(seconds)
  }

  /** Time spent on a request's token. */
  observeTokenCheck (route: string, seconds: number): void {
    this.#tokenChecks.child(route).observe(seconds)
  }

  /** The whole exposition (text format 0.0.4), with the scraped values read now. */
  async render (gauges: GaugeSources): Promise<string> {
    const m = this.#scraped
    m.revocationListSize.set(gauges.revocationListSize())
    m.revocationStaleness.set(gauges.revocationStaleness() / 1000)
    m.pendingWrites.set(gauges.revocationPendingWrites())
    setTotal(m.writtenBack, gauges.revocationsWrittenBack())
    m.ssfEvents.reset()
    m.ssfPollFailures.reset()
    m.ssfStaleness.reset()
    for (const s of gauges.signals()) {
      m.ssfEvents.inc({ transmitter: s.transmitter, result: 'applied' }, s.applied)
      m.ssfEvents.inc({ transmitter: s.transmitter, result: 'refused' }, s.refused)
      m.ssfPollFailures.inc({ transmitter: s.transmitter }, s.failures)
      m.ssfStaleness.set({ transmitter: s.transmitter }, s.staleness / 1000)
    }
    const stats = gauges.verifier()
    setTotal(m.cacheHits, stats.cacheHits)
    setTotal(m.signatureChecks, stats.signatureChecks)
    setTotal(m.jwksFetches, stats.jwksFetches)
    setTotal(m.introspections, stats.introspections)
    const websockets = gauges.websockets()
    m.websockets.set(websockets.open)
    setTotal(m.websocketRevokedCloses, websockets.closedInvalid)
    m.upstreamUp.reset()
    m.upstreamFailures.reset()
    m.upstreamEjections.reset()
    for (const u of gauges.upstreams()) {
      const labels = { route: u.route, upstream: u.label }
      m.upstreamUp.set(labels, u.isUp ? 1 : 0)
      for (const [kind, count] of Object.entries(u.failures)) m.upstreamFailures.inc({ ...labels, kind }, count)
      m.upstreamEjections.inc(labels, u.ejectionsTotal)
    }
    return await this.registry.metrics()
  }
}

/** A counter kept by its source: exposed as the source's total. */
function setTotal (counter: Counter, total: number): void {
  counter.reset()
  counter.inc(total)
}
