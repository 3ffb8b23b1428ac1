/**
 * Prometheus metrics with prom-client (the maintained client and its exposition format),
 * shared by the issuer and the gateway: one registry per service instance with the default
 * process and Node.js metrics, `gatehouse_build_info`, and a cache of labelled children so
 * that a request costs a Map lookup, never a label hash.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'

/** Request durations, seconds: from a cache hit (~0.1 ms) to a slow upstream. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The exposition's content type (text format 0.0.4). */
export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

/** A fresh registry: process and Node.js runtime metrics, and `gatehouse_build_info`. */
export function serviceRegistry (service: 'issuer' | 'gateway', version: string): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // Gauges prom-client names with _total (promtool's lint refuses them); their per-type
  // siblings nodejs_active_handles, nodejs_active_requests, nodejs_active_resources stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
  const info = new Gauge({ name: 'gatehouse_build_info', help: 'Always 1: the service, its version and the Node.js running it.', labelNames: ['service', 'version', 'nodejs'], registers: [registry] })
  info.set({ service, version, nodejs: process.version }, 1)
  return registry
}

/** Children of a labelled metric, made once per label combination (`labels()` hashes each time). */
export class Children<T> {
  readonly #made = new Map<string, T>()
  readonly #make: (...values: string[]) => T
  /** Past this many combinations (made-up label values), new ones share one child. */
  readonly #max: number

  constructor (make: (...values: string[]) => T, max = 2000) {
    this.#make = make
    this.#max = max
  }

  #other: T | undefined

  get (...values: string[]): T {
    const key = values.join('\u0000')
    let child = this.#made.get(key)
    if (child === undefined) {
      if (this.#made.size >= this.#max) return (this.#other ??= this.#make(...values.map(() => '(other)')))
      child = this.#make(...values)
      this.#made.set(key, child)
    }
    return child
  }
}
