/** The route table as `gatehouse-gateway check` prints it. */
import type { GatewayConfig, RouteConfig } from './config.ts'

function scopes (route: RouteConfig): string {
  if (route.scopes === undefined) return '-'
  // Methods needing the same scopes share one entry: `GET,HEAD: api:read; *: api:write`.
  const groups = new Map<string, string[]>()
  for (const [method, needed] of Object.entries(route.scopes)) {
    const key = needed.join(' ') || '(none)'
    groups.set(key, [...(groups.get(key) ?? []), method])
  }
  return [...groups].map(([needed, methods]) => `${methods.join(',')}: ${needed}`).join('; ')
}

function upstreamPath (route: RouteConfig): string {
  if (route.rewritePrefix !== undefined) return `-> ${route.rewritePrefix}`
  return route.stripPrefix ? 'strip' : 'keep'
}

/** One row per route, in the order of the file, aligned in columns. */
export function formatRouteTable (config: GatewayConfig): string {
  const header = ['PREFIX', 'PATH', 'UPSTREAMS', 'AUTH', 'SCOPES', 'RATE LIMIT', 'TIMEOUT', 'LOGOUT']
  const rows = config.routes.map((r) => [
    r.prefix,
    upstreamPath(r),
    r.upstreams.join(' '),
    r.auth === 'none' ? 'none' : `${r.auth}${r.validation === 'introspect' ? ' (introspect)' : ''}${r.audience === undefined ? '' : ` aud=${r.audience}`}`,
    scopes(r),
    r.rateLimit === undefined ? '-' : `${r.rateLimit.max}/${r.rateLimit.window}s per ${r.rateLimit.key}`,
    `${r.timeout}s`,
    r.backchannelLogoutUri ?? '-'
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}
