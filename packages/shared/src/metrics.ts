/**
 * Prometheus metrics with prom-client (the maintained client and its exposition format),
 * shared by the issuer and the gateway: one registry per service instance with the default
 * process and Node.js metrics and `gatehouse_build_info`.
 *
 * The per-request counters and histograms are our own ({@link RequestCounter},
 * {@link RequestHistogram}): prom-client hashes the label values on every `inc()` and
 * `observe()`, even through `labels()` children, while ours keep plain numbers per label
 * combination, found once and held by the caller. They join the same registry and prom-client
 * writes them out at scrape time, so the exposition stays prom-client's.
 */
import { collectDefaultMetrics, Gauge, Registry, type Metric } from 'prom-client'

/** Request durations, seconds: from a cache hit (~0.1 ms) to a slow upstream. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The exposition's content type (text format 0.0.4). */
export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

/** Past this many label combinations (made-up values), new ones share one `(other)` child. */
const MAX_CHILDREN = 2000

let processMetrics: Registry | undefined

/**
 * The process and Node.js runtime metrics, collected once per process: their monitors (event
 * loop delay, GC observer) run for the life of the process, so every registry shares the one
 * set rather than start its own with each app and never stop it.
 */
function defaultMetrics (): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry()
    collectDefaultMetrics({ register: processMetrics })
    // Gauges prom-client names with _total (promtool's lint refuses them); their per-type
    // siblings nodejs_active_handles, nodejs_active_requests, nodejs_active_resources stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) processMetrics.removeSingleMetric(name)
  }
  return processMetrics
}

/** A fresh registry: process and Node.js runtime metrics, and `gatehouse_build_info`. */
export function serviceRegistry (service: 'issuer' | 'gateway', version: string): Registry {
  const registry = new Registry()
  for (const metric of defaultMetrics().getMetricsAsArray()) registry.registerMetric(metric as unknown as Metric)
  const info = new Gauge({ name: 'gatehouse_build_info', help: 'Always 1: the service, its version and the Node.js running it.', labelNames: ['service', 'version', 'nodejs'], registers: [registry] })
  info.set({ service, version, nodejs: process.version }, 1)
  return registry
}

/** One line of the exposition, as prom-client's registry reads it from `get()`. */
interface Value { metricName?: string, labels: Record<string, string | number>, value: number }

/** What `get()` gives the registry. */
export interface Collected { name: string, help: string, type: 'counter' | 'histogram', aggregator: 'sum', values: Value[] }

interface Definition { name: string, help: string, labelNames?: readonly string[] }

/** What prom-client's registry needs of a metric: its name, type and values at scrape time. */
abstract class OwnMetric<Child> {
  readonly name: string
  readonly help: string
  abstract readonly type: 'counter' | 'histogram'
  readonly aggregator = 'sum' as const
  readonly #labelNames: readonly string[]
  /** By the label values joined with NUL; each child keeps its labels for the exposition. */
  protected readonly children = new Map<string, { labels: Record<string, string>, child: Child }>()

  constructor (registry: Registry, { name, help, labelNames = [] }: Definition) {
    this.name = name
    this.help = help
    this.#labelNames = labelNames
    registry.registerMetric(this as unknown as Metric)
  }

  protected abstract make (): Child

  /** The child for these label values (in `labelNames` order): look it up once, keep it. */
  child (...values: string[]): Child {
    if (values.length !== this.#labelNames.length) throw new TypeError(`${this.name}: ${this.#labelNames.length} label values expected, ${values.length} given`)
    const key = values.join('\u0000')
    const known = this.children.get(key)
    if (known !== undefined) return known.child
    const full = this.children.size >= MAX_CHILDREN
    const labelValues = full ? values.map(() => '(other)') : values
    const otherKey = labelValues.join('\u0000')
    const other = full ? this.children.get(otherKey) : undefined
    if (other !== undefined) return other.child
    const labels = Object.fromEntries(this.#labelNames.map((n, i) => [n, labelValues[i] ?? '']))
    const made = { labels, child: this.make() }
    this.children.set(otherKey, made)
    return made.child
  }

  abstract get (): Promise<Collected>
}

/** A counter child: plain number. */
export interface CounterChild { value: number, inc: (by?: number) => void }

/** A labelled counter counted in plain numbers (see the module's comment). */
export class RequestCounter extends OwnMetric<CounterChild> {
  readonly type = 'counter' as const

  constructor (registry: Registry, definition: Definition) {
    super(registry, definition)
    // Without labels, exposed from the start (as 0), as prom-client's own counter is.
    if ((definition.labelNames ?? []).length === 0) this.child()
  }

  protected make (): CounterChild {
    return {
      value: 0,
      inc (by = 1) { this.value += by }
    }
  }

  async get (): Promise<Collected> {
    const values = [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }))
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}

/** A histogram child: counts per bucket (not cumulative), sum and count. */
export interface HistogramChild { observe: (value: number) => void }

/** A labelled histogram counted in plain numbers (see the module's comment). */
export class RequestHistogram extends OwnMetric<HistogramChild> {
  readonly type = 'histogram' as const
  readonly #bounds: readonly number[]
  readonly #state = new WeakMap<HistogramChild, { counts: Float64Array, sum: number }>()

  constructor (registry: Registry, definition: Definition & { buckets: readonly number[] }) {
    super(registry, definition)
    this.#bounds = [...definition.buckets].sort((a, b) => a - b)
  }

  protected make (): HistogramChild {
    const bounds = this.#bounds
    // One slot per bound, and the last for +Inf.
    const state = { counts: new Float64Array(bounds.length + 1), sum: 0 }
    const child = {
      observe (value: number): void {
        if (!Number.isFinite(value)) return
        let i = 0
        while (i < bounds.length && value > bounds[i]!) i++
        state.counts[i]!++
        state.sum += value
      }
    }
    this.#state.set(child, state)
    return child
  }

  async get (): Promise<Collected> {
    const values: Value[] = []
    for (const { labels, child } of this.children.values()) {
      const { counts, sum } = this.#state.get(child)!
      let total = 0
      for (const [i, bound] of this.#bounds.entries()) {
        total += counts[i]!
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, ...labels }, value: total })
      }
      total += counts[this.#bounds.length]!
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: total })
      values.push({ metricName: `${this.name}_sum`, labels, value: sum })
      values.push({ metricName: `${this.name}_count`, labels, value: total })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}
