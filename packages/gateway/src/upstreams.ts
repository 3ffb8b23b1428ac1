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
 * Choices where the issue was silent are in the README (Upstreams that fail).
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { FastifyBaseLogger } from 'fastify'
import { buildConnector } from 'undici'
import type { HealthConfig } from './config.ts'
import { quiet, unavailable, type GatewayError } from './errors.ts'

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

/** Marks an error raised while a connection was being opened: nothing was sent on it. */
const NOT_SENT = Symbol('gatehouse.notSent')

/**
 * The connector of the gateway's upstream connections (undici's, with the connect timeout and
 * certificate checks on): every error it reports (refused, unreachable, DNS, connect timeout,
 * TLS handshake) is marked, so a request that failed there is known to have sent nothing,
 * whatever the error's code. An error on an established connection is never marked.
 */
export function upstreamConnector (timeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs, rejectUnauthorized: true })
  return (options, callback) => connect(options, (err, socket) => {
    if (err !== null) {
      Object.defineProperty(err, NOT_SENT, { value: true })
      callback(err, null)
    } else {
      callback(null, socket)
    }
  })
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** What went wrong, from undici's error (or its cause: the connector's). */
export function failureKind (error: Error): Exclude<FailureKind, 'status'> {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if ((e as { [NOT_SENT]?: boolean })[NOT_SENT] === true) return 'connect'
    const code = (e as NodeJS.ErrnoException).code
    if (code !== undefined && TIMEOUTS.has(code)) return 'timeout'
  }
  return 'reset'
}

/** Whether a failed exchange ran out of time (connecting, or waiting for the answer): a 504 rather than a 502. */
export function timedOut (error: Error): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== undefined && (TIMEOUTS.has(code) || code === 'UND_ERR_CONNECT_TIMEOUT')) return true
  }
  return false
}

/**
 * What went wrong with a WebSocket upgrade (`ws` opens a new connection for each): `connect`
 * when the connection was never made, else `timeout` or `reset`.
 */
export function upgradeFailureKind (error: unknown): Exclude<FailureKind, 'status'> {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code !== undefined && ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code)) return 'connect'
  return /timed out/i.test((error as Error | undefined)?.message ?? '') ? 'timeout' : 'reset'
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
  /** The active check in flight, destroyed on close. */
  #checking: ClientRequest | undefined
  #closed = false
  /** The other upstreams of the route (set by its pool): the last one in rotation stays. */
  siblings: readonly UpstreamState[] = []
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

  /**
   * A request it answered (with a status not counted as a failure). Only once the ejection is
   * over (the half-open probe's answer) does it lift it: a slow answer to a request sent before
   * the ejection does not.
   */
  succeeded (): void {
    this.#consecutive = 0
    if (this.#ejectedUntil !== 0 && this.#now() >= this.#ejectedUntil) {
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
    // An upstream that answers (badly, late, or cutting the connection) is not the last to go:
    // its answers beat a 503 for every path of the route. One that takes no connection may.
    if (!probing && kind !== 'connect' && !this.siblings.some((s) => s !== this && s.isUp)) return
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
    this.#stopChecks()
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
    this.#stopChecks()
  }

  /** Passive checks turned off (`failures: 0`): an ejection in force ends now. */
  stopEjecting (): void {
    if (this.#ejectedUntil === 0) return
    this.#ejectedUntil = 0
    this.#ejections = 0
    this.#probeSince = 0
    this.#log.info({ route: this.route, upstream: this.label }, 'upstream back in rotation: passive health checks were turned off')
  }

  #stopChecks (): void {
    if (this.#checker !== undefined) clearTimeout(this.#checker)
    this.#checker = undefined
    this.#checking?.destroy()
    this.#checking = undefined
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
        // The status is all a check needs: the connection goes, whatever the body.
        req.destroy()
        if (this.#checking === req) this.#checking = undefined
        resolve(ok)
      }
      const req = send(url, { method: 'GET', agent: false, headers: { 'user-agent': 'gatehouse-gateway health check', connection: 'close' } }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0
        finish(status >= 200 && status < 400)
      })
      this.#checking = req
      const timer = setTimeout(() => { finish(false) }, active.timeout * 1000).unref()
      req.on('error', () => { finish(false) })
      req.on('close', () => { finish(false) })
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
    for (const state of states) state.siblings = states
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
    return this.#unavailable('no upstream of this route is available (all failed their health checks)')
  }

  /** The 503 when no upstream took this request's connection. */
  unreachable (): GatewayError {
    return this.#unavailable('no upstream of this route could be reached')
  }

  #unavailable (description: string): GatewayError {
    const now = this.#now()
    const wait = Math.min(...this.states.map((s) => s.waitFrom(now)))
    // Logged by the request's own line (503), not as an error of its own: during an outage the
    // log says it once per change (upstream ejected), not once per request.
    return quiet(unavailable(description, Math.max(1, Math.ceil(wait / 1000))))
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
      if (config.passive.failures === 0) state.stopEjecting()
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
