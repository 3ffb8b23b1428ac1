/**
 * GET /healthz (the process answers), GET /readyz (the issuer's keys were loaded at least once
 * and the revocation mirror is within its staleness bound) and the Prometheus text endpoint.
 */
import type { FastifyInstance } from 'fastify'
import { CONTENT_TYPE } from '@gatehouse/shared/metrics'
import type { TokenVerifier } from '@gatehouse/fastify-auth'
import type { RevocationList } from '@gatehouse/fastify-auth/revocation'
import type { GatewayConfig } from './config.ts'
import type { GatewayMetrics } from './metrics.ts'
import type { SignalSource } from './revocations.ts'
import type { UpstreamHealth } from './upstreams.ts'
import type { WebSocketProxy } from './websocket.ts'

export interface HealthDeps {
  config: GatewayConfig
  verifier: TokenVerifier
  revocations: RevocationList
  metrics: GatewayMetrics
  /** The Shared Signals streams feeding the list. */
  signals: SignalSource[]
  websockets: WebSocketProxy
  health: UpstreamHealth
}

/** Least milliseconds between two key loads tried by /readyz while no key was ever loaded. */
const KEY_RETRY_MS = 5000

/** Tracks "the JWKS was loaded once", retrying in the background of /readyz until it is. */
export class KeyReadiness {
  readonly #verifier: TokenVerifier
  #isLoaded = false
  #failure: unknown
  #triedAt = -Infinity
  #pending: Promise<boolean> | undefined

  constructor (verifier: TokenVerifier) {
    this.#verifier = verifier
  }

  get isLoaded (): boolean {
    return this.#isLoaded
  }

  /** Why the last try failed (undefined once loaded). */
  get failure (): unknown {
    return this.#failure
  }

  /** Tries to load the keys (joining a try in flight); resolves to isLoaded, never rejects. */
  async load (): Promise<boolean> {
    if (this.#isLoaded) return true
    this.#triedAt = Date.now()
    this.#pending ??= this.#verifier.ready().then(() => {
      this.#isLoaded = true
      this.#failure = undefined
    }, (err: unknown) => { this.#failure = err }).then(() => {
      this.#pending = undefined
      return this.#isLoaded
    })
    return await this.#pending
  }

  /** Like load(), at most once per KEY_RETRY_MS. */
  async check (): Promise<boolean> {
    if (this.#isLoaded || Date.now() - this.#triedAt < KEY_RETRY_MS) return this.#isLoaded
    return await this.load()
  }
}

export function healthRoutes (deps: HealthDeps, keys: KeyReadiness) {
  const maxStaleness = deps.config.revocation.maxStaleness * 1000
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (_request, reply) => {
      const problems: string[] = []
      if (!await keys.check()) problems.push('the issuer\'s signing keys have not been loaded')
      // A fail-open gateway serves with a stale list by choice; only fail-closed ones go unready.
      if (deps.revocations.staleness > maxStaleness && !deps.config.revocation.failOpen) {
        const stale = deps.signals.filter((s) => s.receiver.staleness > maxStaleness)
        for (const s of stale) problems.push(`the revocations from ${s.transmitter} (Shared Signals) are stale: transmitter unreachable?`)
        if (stale.length === 0) problems.push('the revocation list is stale (Redis unreachable?)')
      }
      if (problems.length > 0) return await reply.code(503).header('cache-control', 'no-store').send({ status: 'unavailable', problems })
      return await reply.header('cache-control', 'no-store').send({ status: 'ready' })
    })
    app.get(deps.config.metrics.path, async (_request, reply) => {
      const text = await deps.metrics.render({
        revocationListSize: () => deps.revocations.size,
        revocationStaleness: () => deps.revocations.staleness,
        revocationPendingWrites: () => deps.revocations.pendingWrites ?? 0,
        revocationsWrittenBack: () => deps.revocations.writtenBack ?? 0,
        signals: () => deps.signals.map((s) => ({ transmitter: s.transmitter, staleness: s.receiver.staleness, ...s.receiver.stats })),
        verifier: () => deps.verifier.stats,
        websockets: () => ({ open: deps.websockets.size, closedInvalid: deps.websockets.closedInvalid }),
        upstreams: () => deps.health.states
      })
      return await reply.header('content-type', CONTENT_TYPE).header('cache-control', 'no-store').send(text)
    })
  }
}
