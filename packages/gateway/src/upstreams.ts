/**
 * Upstream health, per gateway instance: which upstreams of a route get traffic.
 *
 * - Passive checks (always on unless `failures: 0`): an upstream whose requests fail
 *   `failures` times in a row (connection refused or reset, connect or response timeout, a
 *   listed 5xx) is ejected for `backoff` seconds. Then one request is let through (half-open):
 *   answered, the upstream rejoins; failed, it is ejected again for twice as long, up to
 *   `maxBackoff`. A probe that never finishes (client gone) frees the slot after its timeouts.
 * - Active checks (optional): a GET of `path` every `interval` seconds; `unhealthy` failures
 *   in a row take the upstream out of rotation, `healthy` successes in a row bring it back.
 *   An active success does not lift a passive ejection (the half-open probe does): both must
 *   let an upstream through.
 *
 * The state lives in {@link UpstreamHealth}, keyed by route and upstream URL, outside the route
 * table: a reload builds a new table whose routes find the state of the upstreams they keep.
 * A state change is one log line; requests are counted in metrics, never logged one by one.
 *
 * Choices where the issue was silent are in docs/routes.md (Failover and health checks).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { FastifyBaseLogger } from 'fastify'
import type { HealthConfig } from './config.ts'
import { unavailable, type GatewayError } from './errors.ts'

/** One upstream base URL, split for cheap joining. */
export interface Upstream {
  /** `http://host:port` */
  origin: string
  /** The URL's path without its trailing slash: `''` or `/base`. */
  basePath: string
}

/** Why a request to an upstream failed. `connect`: nothing was sent (refused, unreachable, connect timeout). */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'status'

export const FAILURE_KINDS: readonly FailureKind[] = ['connect', 'timeout', 'reset', 'status']

type PassiveConfig = HealthConfig['passive']
type ActiveConfig = NonNullable<HealthConfig['active']>

/** Error codes of a request that never left the gateway: safe to send elsewhere, whatever its method. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED'])
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT'])

/** What went wrong, from reply-from's error (its `cause` is undici's). */
export function failureKind (error: Error): Exclude<FailureKind, 'status'> {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === undefined) continue
    if (NOT_SENT.has(code)) return 'connect'
    if (TIMEOUTS.has(code)) return 'timeout'
  }
  // reply-from names its timeout errors by status.
  return (error as { statusCode?: number }).statusCode === 504 ? 'timeout' : 'reset'
}

/** The health of one upstream of one route. */
export class UpstreamState {
  readonly upstream: Upstream
  /** The upstream as metrics and logs name it: origin and base path (never userinfo, never a query). */
  readonly label: string
  readonly route: string
  passive: PassiveConfig
  /** The active checks' settings while they run. */
  active: ActiveConfig | undefined
  /** Milliseconds a half-open probe may take before another request may probe. */
  probeTimeout: number

  /** Failures in a row (passive). */
  #consecutive = 0
  /** 0: in rotation; else when the ejection ends (ms since epoch). */
  #ejectedUntil = 0
  /** Ejections in a row: the back-off doubles with each. */
  #ejections = 0
  /** When the half-open probe was let through; 0 for none in flight. */
  #probeSince = 0
  #activeHealthy = true
  #activeRun = 0
  #checker: NodeJS.Timeout | undefined
  #closed = false
  readonly failures: Record<FailureKind, number> = { connect: 0, timeout: 0, reset: 0, status: 0 }
  ejectionsTotal = 0
  readonly #log: FastifyBaseLogger
  readonly #now: () => number

  constructor (route: string, upstream: Upstream, config: HealthConfig, probeTimeout: number, log: FastifyBaseLogger, now: () => number) {
    this.route = route
    this.upstream = upstream
    this.label = upstream.origin + upstream.basePath
    this.passive = config.passive
    this.probeTimeout = probeTimeout
    this.#log = log
    this.#now = now
  }

  /** Whether it gets traffic now (a half-open upstream: only when no probe is in flight). */
  get isUp (): boolean {
    return this.#activeHealthy && this.#ejectedUntil === 0
  }

  /** May this request go here? `claim`: a half-open upstream takes this request as its probe. */
  accepts (now: number, claim: boolean): boolean {
    if (!this.#activeHealthy) return false
    if (this.#ejectedUntil === 0) return true
    if (now < this.#ejectedUntil) return false
    if (this.#probeSince !== 0 && now - this.#probeSince < this.probeTimeout) return false
    if (claim) this.#probeSince = now
    return true
  }

  /** Milliseconds until it may take a request again (0: now). */
  waitFrom (now: number): number {
    if (!this.#activeHealthy) return (this.active?.interval ?? 1) * 1000
    return Math.max(0, this.#ejectedUntil - now)
  }

  /** A request it answered (with a status not counted as a failure). */
  succeeded (): void {
    this.#consecutive = 0
    if (this.#ejectedUntil !== 0) {
      this.#log.info({ route: this.route, upstream: this.label, ejections: this.#ejections }, 'upstream back in rotation: it answered its half-open probe')
      this.#ejectedUntil = 0
      this.#ejections = 0
      this.#probeSince = 0
    }
  }

  /** A request that failed here. */
  failed (kind: FailureKind): void {
    this.failures[kind]++
    const { failures, backoff, maxBackoff } = this.passive
    if (failures === 0) return
    const now = this.#now()
    this.#consecutive++
    const probing = this.#ejectedUntil !== 0
    if (!probing && this.#consecutive < failures) return
    // An ejected upstream's failure is its probe's (or a request let through before the ejection).
    if (probing && now < this.#ejectedUntil) return
    this.#ejections = Math.min(this.#ejections + 1, 30)
    const seconds = Math.min(maxBackoff, backoff * 2 ** (this.#ejections - 1))
    this.#ejectedUntil = now + seconds * 1000
    this.#probeSince = 0
    this.ejectionsTotal++
    this.#log.warn({ route: this.route, upstream: this.label, reason: kind, failures: this.#consecutive, backoff: seconds }, probing
      ? 'upstream ejected again: its half-open probe failed'
      : 'upstream ejected: it failed too many requests in a row')
  }

  /**
   * Runs the active checks with these settings (restarted when they differ from the ones
   * running; stopped for none). The results so far are kept.
   */
  configureChecks (active: ActiveConfig | undefined): void {
    if (JSON.stringify(active) === JSON.stringify(this.active)) return
    this.active = active
    if (this.#checker !== undefined) clearTimeout(this.#checker)
    this.#checker = undefined
    if (active === undefined) {
      if (!this.#activeHealthy) this.#log.info({ route: this.route, upstream: this.label }, 'upstream back in rotation: its active health checks were removed')
      this.#activeHealthy = true
      this.#activeRun = 0
      return
    }
    const run = (): void => {
      if (this.#closed || this.active !== active) return
      this.#check(active).then((ok) => {
        if (this.#closed || this.active !== active) return
        this.#record(ok, active)
        this.#checker = setTimeout(run, active.interval * 1000).unref()
      })
    }
    run()
  }

  /** Stops the active checks for good. */
  close (): void {
    this.#closed = true
    if (this.#checker !== undefined) clearTimeout(this.#checker)
    this.#checker = undefined
  }

  #record (ok: boolean, active: ActiveConfig): void {
    // #activeRun counts results in a row: > 0 successes, < 0 failures.
    this.#activeRun = ok ? Math.max(this.#activeRun, 0) + 1 : Math.min(this.#activeRun, 0) - 1
    if (this.#activeHealthy && -this.#activeRun >= active.unhealthy) {
      this.#activeHealthy = false
      this.#log.warn({ route: this.route, upstream: this.label, failures: -this.#activeRun, path: active.path }, 'upstream out of rotation: it failed its active health checks')
    } else if (!this.#activeHealthy && this.#activeRun >= active.healthy) {
      this.#activeHealthy = true
      this.#log.info({ route: this.route, upstream: this.label, successes: this.#activeRun, path: active.path }, 'upstream back in rotation: it passed its active health checks')
    }
  }

  /** One GET of the check path: a 2xx or 3xx answer within the timeout is healthy. */
  async #check (active: ActiveConfig): Promise<boolean> {
    const url = this.upstream.origin + this.upstream.basePath + active.path
    const send = url.startsWith('https:') ? httpsRequest : httpRequest
    return await new Promise<boolean>((resolve) => {
      let done = false
      const finish = (ok: boolean): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        resolve(ok)
      }
      const req = send(url, { method: 'GET', agent: false, headers: { 'user-agent': 'gatehouse-gateway health check', connection: 'close' } }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0
        res.resume()
        finish(status >= 200 && status < 400)
      })
      const timer = setTimeout(() => { req.destroy(); finish(false) }, active.timeout * 1000)
      req.on('error', () => { finish(false) })
      req.end()
    })
  }
}

/** A route's upstreams with their health: which one a request goes to. */
export class UpstreamPool {
  readonly states: readonly UpstreamState[]
  readonly #now: () => number
  #turn = 0

  constructor (states: UpstreamState[], now: () => number) {
    this.states = states
    this.#now = now
  }

  /**
   * The next upstream in turn that takes traffic, skipping `tried` ones; undefined when none
   * does. A half-open upstream picked takes the request as its probe.
   */
  pick (tried?: ReadonlySet<UpstreamState>): UpstreamState | undefined {
    const { states } = this
    const n = states.length
    const now = this.#now()
    for (let i = 0; i < n; i++) {
      const state = states[(this.#turn + i) % n]!
      if (tried?.has(state) === true) continue
      if (state.accepts(now, true)) {
        this.#turn = (this.#turn + i + 1) % n
        return state
      }
    }
    return undefined
  }

  /** The 503 when no upstream takes traffic: `Retry-After` is when the first may again. */
  unavailable (): GatewayError {
    const now = this.#now()
    const wait = Math.min(...this.states.map((s) => s.waitFrom(now)))
    return unavailable('no upstream of this route is available (all failed their health checks)', Math.max(1, Math.ceil(wait / 1000)))
  }
}

/** Everything a route needs to build its pool. */
export interface PoolSpec {
  route: string
  upstreams: readonly Upstream[]
  config: HealthConfig
  /** Milliseconds a request may take to get its answer's headers: connect and response timeouts. */
  probeTimeout: number
}

/**
 * The health of every route's upstreams, for the life of the gateway. Reloads ask it for pools:
 * an upstream a route keeps keeps its state (and its checks, with the new settings).
 */
export class UpstreamHealth {
  readonly #states = new Map<string, UpstreamState>()
  readonly #log: FastifyBaseLogger
  readonly #now: () => number

  constructor (log: FastifyBaseLogger, now: () => number = Date.now) {
    this.#log = log
    this.#now = now
  }

  /** The pool of one route; states are made or reused, not started (see {@link retain}). */
  pool ({ route, upstreams, config, probeTimeout }: PoolSpec): UpstreamPool {
    const states = upstreams.map((upstream) => {
      const key = `${route}\u0000${upstream.origin}${upstream.basePath}`
      let state = this.#states.get(key)
      if (state === undefined) {
        state = new UpstreamState(route, upstream, config, probeTimeout, this.#log, this.#now)
        this.#states.set(key, state)
      } else {
        state.passive = config.passive
        state.probeTimeout = probeTimeout
      }
      return state
    })
    return new UpstreamPool(states, this.#now)
  }

  /**
   * Once a table is in force: the states its pools use keep going (active checks started or
   * restarted when their settings changed); the others are dropped and their checks stopped.
   */
  retain (pools: Array<{ pool: UpstreamPool, config: HealthConfig }>): void {
    const kept = new Set<UpstreamState>()
    for (const { pool, config } of pools) {
      for (const state of pool.states) {
        kept.add(state)
        state.configureChecks(config.active)
      }
    }
    for (const [key, state] of this.#states) {
      if (!kept.has(state)) {
        state.close()
        this.#states.delete(key)
      }
    }
  }

  /** Every state, for metrics. */
  get states (): Iterable<UpstreamState> {
    return this.#states.values()
  }

  /** Stops every active check (the app closes). */
  close (): void {
    for (const state of this.#states.values()) state.close()
  }
}
