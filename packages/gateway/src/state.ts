/**
 * What a reload swaps, in one assignment: the config, its compiled route table and its
 * header rewriter. A request reads the state once and uses that object to the end.
 */
import type { GatewayConfig } from './config.ts'
import { requestHeaderRewriter } from './forward-headers.ts'
import { buildRouteTable, type LimiterFactory, type RouteTable } from './route-table.ts'
import type { UpstreamHealth } from './upstreams.ts'

export interface GatewayState {
  readonly config: GatewayConfig
  readonly table: RouteTable
  readonly rewriteHeaders: ReturnType<typeof requestHeaderRewriter>
}

/** Compiles a config into a state; throws only on a bug (the config is already validated). */
export function buildState (config: GatewayConfig, makeLimiter: LimiterFactory, health: UpstreamHealth): GatewayState {
  return Object.freeze({
    config,
    table: buildRouteTable(config, makeLimiter, health),
    rewriteHeaders: requestHeaderRewriter(config)
  })
}

/** The top-level keys that differ between two configs, but which a reload cannot apply. */
export function restartOnlyChanges (before: GatewayConfig, after: GatewayConfig): string[] {
  const reloadable = new Set(['routes', 'identityHeaders'])
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  return [...keys].filter((k) => !reloadable.has(k) &&
    JSON.stringify((before as Record<string, unknown>)[k]) !== JSON.stringify((after as Record<string, unknown>)[k]))
}
