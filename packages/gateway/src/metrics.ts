/**
 * Prometheus metrics, written by hand (text exposition format 0.0.4). The gateway needs a few
 * counters, two gauges and one histogram; a hand-written registry costs a Map lookup per
 * request and no dependency, where prom-client would bring label hashing and a registry we
 * do not need on the hot path.
 */
import type { VerifierStats } from '@gatehouse/fastify-auth'
import { escapeLabel, sampleValue as number } from '@gatehouse/shared/prometheus'

/** Upper bounds of the upstream latency histogram, seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

interface Histogram {
  counts: number[]
  sum: number
  count: number
}

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
}

/** The gateway's counters, gauges and histogram, and their text rendering. */
export class GatewayMetrics {
  readonly #requests = new Map<string, Map<number, number>>()
  readonly #authFailures = new Map<string, number>()
  readonly #upstream = new Map<string, Histogram>()
  readonly #logouts = new Map<string, number>()

  /** One finished request: `route` is the route id, or `(none)` (no route, or the gateway's own paths). */
  countRequest (route: string, status: number): void {
    let byStatus = this.#requests.get(route)
    if (byStatus === undefined) this.#requests.set(route, byStatus = new Map())
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
  }

  countAuthFailure (reason: string): void {
    this.#authFailures.set(reason, (this.#authFailures.get(reason) ?? 0) + 1)
  }

  countLogout (result: string): void {
    this.#logouts.set(result, (this.#logouts.get(result) ?? 0) + 1)
  }

  /** Time to the upstream's response headers. */
  observeUpstream (route: string, seconds: number): void {
    let h = this.#upstream.get(route)
    if (h === undefined) this.#upstream.set(route, h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 })
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++
    h.sum += seconds
    h.count++
  }

  /** The whole exposition, `text/plain; version=0.0.4`. */
  render (gauges: GaugeSources): string {
    const out: string[] = []
    const head = (name: string, type: string, help: string): void => { out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`) }
    head('gatehouse_gateway_requests_total', 'counter', 'Requests answered, by route and HTTP status.')
    for (const [route, byStatus] of this.#requests) {
      for (const [status, n] of byStatus) out.push(`gatehouse_gateway_requests_total{route="${escapeLabel(route)}",status="${status}"} ${n}`)
    }
    head('gatehouse_gateway_auth_failures_total', 'counter', 'Requests refused by token validation, by reason.')
    for (const [reason, n] of this.#authFailures) out.push(`gatehouse_gateway_auth_failures_total{reason="${escapeLabel(reason)}"} ${n}`)
    head('gatehouse_gateway_logouts_total', 'counter', 'Logouts through the gateway, by result.')
    for (const [result, n] of this.#logouts) out.push(`gatehouse_gateway_logouts_total{result="${escapeLabel(result)}"} ${n}`)
    head('gatehouse_gateway_revocation_list_size', 'gauge', 'Live entries (jti and sid) in the local revocation mirror.')
    out.push(`gatehouse_gateway_revocation_list_size ${number(gauges.revocationListSize())}`)
    head('gatehouse_gateway_revocation_staleness_milliseconds', 'gauge', 'Milliseconds since the revocation mirror last heard from Redis (0 in memory).')
    out.push(`gatehouse_gateway_revocation_staleness_milliseconds ${number(gauges.revocationStaleness())}`)
    head('gatehouse_gateway_revocation_pending_writes', 'gauge', 'Revocations this gateway holds that Redis has not taken yet (queued while it is unreachable).')
    out.push(`gatehouse_gateway_revocation_pending_writes ${number(gauges.revocationPendingWrites())}`)
    head('gatehouse_gateway_revocations_written_back_total', 'counter', 'Revocations this gateway wrote back into Redis after Redis lost them (restart without persistence, flush, failover).')
    out.push(`gatehouse_gateway_revocations_written_back_total ${number(gauges.revocationsWrittenBack())}`)
    const signals = gauges.signals()
    head('gatehouse_gateway_ssf_events_total', 'counter', 'Security Event Tokens received on Shared Signals streams, by transmitter and result (applied, refused).')
    for (const s of signals) {
      out.push(`gatehouse_gateway_ssf_events_total{transmitter="${escapeLabel(s.transmitter)}",result="applied"} ${s.applied}`)
      out.push(`gatehouse_gateway_ssf_events_total{transmitter="${escapeLabel(s.transmitter)}",result="refused"} ${s.refused}`)
    }
    head('gatehouse_gateway_ssf_poll_failures_total', 'counter', 'Polls of a Shared Signals transmitter that failed (unreachable, timeout, error status).')
    for (const s of signals) out.push(`gatehouse_gateway_ssf_poll_failures_total{transmitter="${escapeLabel(s.transmitter)}"} ${s.failures}`)
    head('gatehouse_gateway_ssf_staleness_seconds', 'gauge', 'Seconds since the Shared Signals stream last answered (0 while a poll is held open; +Inf before the first catch-up).')
    for (const s of signals) out.push(`gatehouse_gateway_ssf_staleness_seconds{transmitter="${escapeLabel(s.transmitter)}"} ${number(s.staleness / 1000)}`)
    const stats = gauges.verifier()
    head('gatehouse_gateway_token_cache_hits_total', 'counter', 'Requests whose token was found in the verified-token cache (no signature check).')
    out.push(`gatehouse_gateway_token_cache_hits_total ${stats.cacheHits}`)
    head('gatehouse_gateway_token_signature_checks_total', 'counter', 'Access token signatures checked locally.')
    out.push(`gatehouse_gateway_token_signature_checks_total ${stats.signatureChecks}`)
    head('gatehouse_gateway_jwks_fetches_total', 'counter', 'Fetches of the issuer\'s JWK Set.')
    out.push(`gatehouse_gateway_jwks_fetches_total ${stats.jwksFetches}`)
    head('gatehouse_gateway_introspection_requests_total', 'counter', 'Requests sent to the issuer\'s introspection endpoint (routes with validation: introspect).')
    out.push(`gatehouse_gateway_introspection_requests_total ${stats.introspections}`)
    const websockets = gauges.websockets()
    head('gatehouse_gateway_websocket_connections', 'gauge', 'WebSocket connections open through the gateway.')
    out.push(`gatehouse_gateway_websocket_connections ${websockets.open}`)
    head('gatehouse_gateway_websocket_revoked_closes_total', 'counter', 'WebSocket connections closed because their session or token was revoked or their token expired.')
    out.push(`gatehouse_gateway_websocket_revoked_closes_total ${websockets.closedInvalid}`)
    head('gatehouse_gateway_upstream_duration_seconds', 'histogram', 'Time from forwarding a request to the upstream\'s response headers, by route.')
    for (const [route, h] of this.#upstream) {
      const label = `route="${escapeLabel(route)}"`
      BUCKETS.forEach((le, i) => out.push(`gatehouse_gateway_upstream_duration_seconds_bucket{${label},le="${le}"} ${h.counts[i]!}`))
      out.push(`gatehouse_gateway_upstream_duration_seconds_bucket{${label},le="+Inf"} ${h.count}`)
      out.push(`gatehouse_gateway_upstream_duration_seconds_sum{${label}} ${h.sum}`)
      out.push(`gatehouse_gateway_upstream_duration_seconds_count{${label}} ${h.count}`)
    }
    return `${out.join('\n')}\n`
  }
}
