/** The machine, the settings and the results, as markdown. */
import { execFileSync } from 'node:child_process'
import { availableParallelism, cpus } from 'node:os'
import type { LoadResult } from './load.ts'

export interface Settings {
  rounds: number
  duration: number
  warmup: number
  connections: number
  serverCpu: number
  loadCpu: number
  /** Work tree whose issuer ran */
  issuerRoot: string
}

export interface ServerRounds {
  name: string
  version: string
  rounds: LoadResult[]
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

/** Call before pinning this process to one CPU: nproc honours the affinity mask. */
export function machine (): string {
  let nproc = String(availableParallelism())
  try { nproc = execFileSync('nproc', { encoding: 'utf8' }).trim() } catch { /* os count is fine */ }
  return `nproc ${nproc}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${process.platform} ${process.arch}`
}

const fixed = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

function row (s: ServerRounds): string {
  const med = (pick: (r: LoadResult) => number): number => median(s.rounds.map(pick))
  const sum = (pick: (r: LoadResult) => number): number => s.rounds.reduce((n, r) => n + pick(r), 0)
  return `| ${s.name} ${s.version} | **${fixed(med((r) => r.tokensPerSecond))}** | ${fixed(med((r) => r.p50), 1)} | ${fixed(med((r) => r.p99), 1)} | ` +
    `${fixed(med((r) => r.cpuPerToken))} | ${s.rounds.map((r) => fixed(r.tokensPerSecond)).join(', ')} | ` +
    `${sum((r) => r.non2xx)} | ${sum((r) => r.errors + r.timeouts)} | ${s.rounds.map((r) => fixed(r.cpu.other)).join(', ')} |`
}

function ratios (servers: ServerRounds[]): string[] {
  const gatehouse = servers.find((s) => s.name === 'gatehouse')
  const peer = servers.find((s) => s.name === 'oidc-provider')
  if (gatehouse === undefined || peer === undefined) return []
  const med = (s: ServerRounds, pick: (r: LoadResult) => number): number => median(s.rounds.map(pick))
  const ratio = med(gatehouse, (r) => r.tokensPerSecond) / med(peer, (r) => r.tokensPerSecond)
  const cpuRatio = med(peer, (r) => r.cpuPerToken) / med(gatehouse, (r) => r.cpuPerToken)
  return [
    `**gatehouse / oidc-provider: ${fixed(ratio, 2)}x tokens/s** (target >= 2x: ${ratio >= 2 ? 'met' : 'NOT met'}); ` +
      `by CPU time per token: ${fixed(cpuRatio, 2)}x`,
    ''
  ]
}

export function render (servers: ServerRounds[], settings: Settings, host: string, when: Date): string {
  const lines = [
    `# Token issuance: client_credentials, ES256 JWT access tokens (${when.toISOString()})`,
    '',
    `| server | tokens/s (median) | p50 ms | p99 ms | CPU µs/token | rounds, tokens/s | non-2xx | errors | CPU ${settings.serverCpu} other load, % |`,
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |',
    ...servers.map(row),
    '',
    ...ratios(servers),
    `- machine: ${host}`,
    `- settings: ${settings.rounds} interleaved rounds of ${settings.duration} s per server after a ${settings.warmup} s warm-up each; ` +
      `${settings.connections} connections; servers pinned to CPU ${settings.serverCpu}, autocannon to CPU ${settings.loadCpu}`,
    `- gatehouse from ${settings.issuerRoot}`,
    '- request: `POST grant_type=client_credentials&scope=api:read`, client_secret_basic; every column is the median over rounds',
    '- CPU µs/token: the server process\'s CPU time (all threads, /proc) per 2xx response',
    `- other load: share of CPU ${settings.serverCpu} used by anything but the server in each round (other processes on a shared machine, ` +
      'interrupts); past a few % the round\'s tokens/s is depressed, CPU µs/token much less so'
  ]
  return lines.join('\n') + '\n'
}
