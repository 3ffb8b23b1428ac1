/** The results of bench/gateway.ts, as markdown: one table per scenario, then the targets. */
import type { SinkStats } from '../peers/otlp-sink.ts'
import { median } from './report.ts'
import { summarise, type DelayResult } from './revocation-delay.ts'
import { isClean, type WrkResult } from './wrk.ts'

export interface GatewaySettings {
  rounds: number
  duration: number
  warmup: number
  connections: number
  tokens: number
  revocations: number
  samples: number
  /** A round with more other load than this (%, either CPU) is run again, within the budget */
  maxOther: number
  /** Seconds the whole run may spend re-running disturbed rounds */
  retryBudget: number
  /** (c): seconds of the paced load, not measured, before each round */
  settle: number
  serverCpu: number
  loadCpu: number
  /** Work tree whose gateway ran */
  gatewayRoot: string
  /** Work tree of gatehouse-baseline, when it ran */
  baselineRoot?: string
  /** gatehouse-traced ran */
  tracing: boolean
}

export interface ServerRounds {
  name: string
  rounds: WrkResult[]
}

export interface Scenario {
  id: 'a' | 'b' | 'c'
  title: string
  servers: ServerRounds[]
  /** Paced scenarios: the rate asked for, req/s, and the mean pause per connection, ms */
  pace?: { rate: number, delayMs: number }
}

export interface Extras {
  /** RSS right after start, MB, by server name */
  rssAtStart: Record<string, number>
  /** ms from spawn to /readyz 200, by gateway name */
  startMs: Record<string, number>
  revocation?: DelayResult
  /** (f): logouts at the issuer enforced by a gateway without Redis (Shared Signals) */
  issuerLogout?: DelayResult
  /** Rounds re-run because other processes disturbed them */
  retries?: number
  /** Entries seeded into the 1M gateway's Redis */
  revocationsSeeded?: number
  /** What the traced gateway exported, and the requests it answered under wrk */
  tracing?: { sink: SinkStats, requests: number }
  versions: Record<string, string>
}

export const BARE = 'http-proxy'
export const GATEWAY = 'gatehouse'
export const GATEWAY_1M = 'gatehouse-1M'
export const GATEWAY_BASELINE = 'gatehouse-baseline'
export const GATEWAY_TRACED = 'gatehouse-traced'
export const JWT = 'fastify-jwt'
export const HAPROXY = 'haproxy'

const fixed = (n: number, digits = 0): string => Number.isFinite(n)
  ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
  : 'n/a'

const med = (s: ServerRounds | undefined, pick: (r: WrkResult) => number): number => s === undefined ? NaN : median(s.rounds.map(pick))

/** (max - min) / median of the rounds' req/s. */
export function spread (s: ServerRounds | undefined): number {
  if (s === undefined || s.rounds.length === 0) return NaN
  const rates = s.rounds.map((r) => r.requestsPerSecond)
  return (Math.max(...rates) - Math.min(...rates)) / median(rates)
}

function table (scenario: Scenario, settings: GatewaySettings): string[] {
  const bare = scenario.servers.find((s) => s.name === BARE)
  const bareRate = med(bare, (r) => r.requestsPerSecond)
  const bareCpu = med(bare, (r) => r.cpuPerRequest)
  const rows = scenario.servers.map((s) => {
    const rate = med(s, (r) => r.requestsPerSecond)
    const cpu = med(s, (r) => r.cpuPerRequest)
    const sum = (pick: (r: WrkResult) => number): number => s.rounds.reduce((n, r) => n + pick(r), 0)
    const ratio = s.name === 'upstream' ? '' : fixed(rate / bareRate, 2)
    const cpuRatio = s.name === 'upstream' ? '' : fixed(bareCpu / cpu, 2)
    return `| ${s.name} | **${fixed(rate)}** | ${ratio} | ${fixed(med(s, (r) => r.p50), 2)} | ${fixed(med(s, (r) => r.p99), 2)} | ` +
      `${fixed(cpu)} | ${cpuRatio} | ${s.name === 'upstream' ? '' : fixed(med(s, (r) => r.cpu.server))} | ${fixed(med(s, (r) => r.rss))} | ${s.rounds.map((r) => fixed(r.requestsPerSecond)).join(', ')} | ` +
      `${sum((r) => r.non2xx)} | ${sum((r) => r.errors + r.timeouts)} | ${s.rounds.map((r) => fixed(r.cpu.other)).join(', ')} | ` +
      `${s.rounds.map((r) => fixed(r.loadCpu.other)).join(', ')} |`
  })
  return [
    `### (${scenario.id}) ${scenario.title}`,
    '',
    ...(scenario.pace === undefined
      ? []
      : [`Paced: ${fixed(scenario.pace.rate)} req/s asked for (${settings.connections} connections, each pausing ${fixed(scenario.pace.delayMs, 2)} ms on average before each request).`, '']),
    `| server | req/s | × ${BARE} | p50 ms | p99 ms | CPU µs/req | × ${BARE} by CPU | server CPU % | RSS MB | rounds, req/s | non-2xx | errors | CPU ${settings.serverCpu} other load, % | CPU ${settings.loadCpu} other load, % |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |',
    ...rows,
    ''
  ]
}

const verdict = (ok: boolean): string => ok ? 'met' : '**NOT met**'

function targets (scenarios: Scenario[], extras: Extras): string[] {
  const find = (id: Scenario['id'], name: string): ServerRounds | undefined => scenarios.find((s) => s.id === id)?.servers.find((s) => s.name === name)
  const rate = (id: Scenario['id'], name: string): number => med(find(id, name), (r) => r.requestsPerSecond)
  const cpu = (id: Scenario['id'], name: string): number => med(find(id, name), (r) => r.cpuPerRequest)
  const lines: string[] = ['## Targets', '']
  // Issue 14: (a) at least the bare proxy (0.95x the least acceptable) and above HAProxy; (b) 0.40x.
  for (const [id, target] of [['a', 1.0], ['b', 0.4]] as const) {
    if (find(id, GATEWAY) === undefined || find(id, BARE) === undefined) continue
    const ratio = rate(id, GATEWAY) / rate(id, BARE)
    const jwt = find(id, JWT) === undefined ? '' : `; ${JWT}: ${fixed(rate(id, JWT) / rate(id, BARE), 2)}x`
    const haproxy = find(id, HAPROXY) === undefined ? '' : `; ${HAPROXY}: ${fixed(rate(id, HAPROXY) / rate(id, BARE), 2)}x`
    lines.push(`- (${id}) ${GATEWAY} / ${BARE} req/s: **${fixed(ratio, 2)}x** (target >= ${target}x${id === 'a' ? ', at least 0.95x' : ''}: ${verdict(ratio >= target)}); ` +
      `by CPU time per request: ${fixed(cpu(id, BARE) / cpu(id, GATEWAY), 2)}x${jwt}${haproxy}`)
    if (id === 'a' && find(id, HAPROXY) !== undefined) {
      const over = rate(id, GATEWAY) / rate(id, HAPROXY)
      lines.push(`- (a) ${GATEWAY} / ${HAPROXY} (jwt_verify) req/s: **${fixed(over, 2)}x** (target > 1: ${verdict(over > 1)}); by CPU time: ${fixed(cpu(id, HAPROXY) / cpu(id, GATEWAY), 2)}x`)
    }
  }
  const memory = find('a', GATEWAY)
  if (memory !== undefined && find('a', BARE) !== undefined) {
    const rss = med(memory, (r) => r.rss) / med(find('a', BARE), (r) => r.rss)
    lines.push(`- memory: ${GATEWAY} RSS after (a) ${fixed(med(memory, (r) => r.rss))} MB vs ${BARE} ${fixed(med(find('a', BARE), (r) => r.rss))} MB: **${fixed(rss, 2)}x** (target <= 1.2x: ${verdict(rss <= 1.2)})`)
  }
  const paced = scenarios.find((s) => s.id === 'c')
  if (paced !== undefined && find('c', GATEWAY) !== undefined && find('c', BARE) !== undefined) {
    const p99 = (name: string): number => med(find('c', name), (r) => r.p99)
    const p50 = (name: string): number => med(find('c', name), (r) => r.p50)
    const added = p99(GATEWAY) - p99(BARE)
    lines.push(`- (c) p99 added over ${BARE} at ${fixed(paced.pace?.rate ?? NaN)} req/s (half its peak): **${fixed(added, 2)} ms** ` +
      `(${GATEWAY} ${fixed(p99(GATEWAY), 2)} ms, ${BARE} ${fixed(p99(BARE), 2)} ms; target <= 1 ms: ${verdict(added <= 1)}); ` +
      `p50 added ${fixed(p50(GATEWAY) - p50(BARE), 2)} ms`)
  }
  lines.push(...observabilityCost(scenarios, extras))
  const withList = find('a', GATEWAY_1M)
  const without = find('a', GATEWAY)
  if (withList !== undefined && without !== undefined) {
    const ratio = rate('a', GATEWAY_1M) / rate('a', GATEWAY)
    const noise = Math.max(0.03, spread(withList), spread(without))
    const growth = med(withList, (r) => r.rss) - med(without, (r) => r.rss)
    lines.push(`- (d) scenario (a) with ${fixed(extras.revocationsSeeded ?? NaN)} revoked jtis in the mirror: ${GATEWAY_1M} / ${GATEWAY} req/s ` +
      `**${fixed(ratio, 3)}x**, CPU µs/req ${fixed(cpu('a', GATEWAY_1M))} vs ${fixed(cpu('a', GATEWAY))} (unchanged within noise, ±${fixed(noise * 100, 1)}% = the larger round spread, at least 3%: ` +
      `${verdict(Math.abs(ratio - 1) <= noise)}); RSS growth **${fixed(growth)} MB** (${fixed(med(withList, (r) => r.rss))} vs ${fixed(med(without, (r) => r.rss))} MB after the (a) rounds; ` +
      `${fixed(extras.rssAtStart[GATEWAY_1M] ?? NaN)} vs ${fixed(extras.rssAtStart[GATEWAY] ?? NaN)} MB at start; target <= 200 MB: ${verdict(growth <= 200)}); ` +
      `start to ready with the list: ${fixed((extras.startMs[GATEWAY_1M] ?? NaN) / 1000, 1)} s (without: ${fixed((extras.startMs[GATEWAY] ?? NaN) / 1000, 1)} s)`)
  }
  const e = extras.revocation
  if (e !== undefined) {
    const s = summarise(e.samples)
    const l = summarise(e.logoutMs)
    lines.push(`- (e) logout on gateway A enforced by gateway B (same Redis), ${e.samples.length} samples: p50 ${fixed(s.p50, 2)} ms, **p99 ${fixed(s.p99, 2)} ms**, max ${fixed(s.max, 2)} ms ` +
      `(target p99 <= 50 ms: ${verdict(s.p99 <= 50 && e.failures === 0)}); not enforced within 2 s: ${e.failures}; ` +
      `A's logout answer (incl. the issuer's session end): p50 ${fixed(l.p50, 2)} ms, p99 ${fixed(l.p99, 2)} ms; ${fixed(e.pollsPerSample, 1)} polls of B per sample`)
  }
  const f = extras.issuerLogout
  if (f !== undefined) {
    const s = summarise(f.samples)
    const l = summarise(f.logoutMs)
    lines.push(`- (f) logout at the issuer (RP-initiated) enforced by a gateway without Redis (Shared Signals), ${f.samples.length} samples: p50 ${fixed(s.p50, 2)} ms, **p99 ${fixed(s.p99, 2)} ms**, max ${fixed(s.max, 2)} ms ` +
      `(target p99 < 1000 ms: ${verdict(s.p99 < 1000 && f.failures === 0)}); not enforced within 5 s: ${f.failures}; ` +
      `the issuer's logout answer: p50 ${fixed(l.p50, 2)} ms, p99 ${fixed(l.p99, 2)} ms; ${fixed(f.pollsPerSample, 1)} polls of the gateway per sample`)
  }
  lines.push('')
  return lines
}

/**
 * Issue 13: with tracing off, the gateway's (a) req/s may not drop against the baseline (the
 * work tree before the observability work) by more than the run-to-run spread; with tracing on,
 * the cost is reported.
 */
function observabilityCost (scenarios: Scenario[], extras: Extras): string[] {
  const find = (id: Scenario['id'], name: string): ServerRounds | undefined => scenarios.find((s) => s.id === id)?.servers.find((s) => s.name === name)
  const rate = (id: Scenario['id'], name: string): number => med(find(id, name), (r) => r.requestsPerSecond)
  const cpu = (id: Scenario['id'], name: string): number => med(find(id, name), (r) => r.cpuPerRequest)
  // Each ratio > 1 when `name` is the faster (req/s) or the cheaper (CPU per request).
  const versus = (id: Scenario['id'], name: string, other: string): string =>
    `(${id}) **${fixed(rate(id, name) / rate(id, other), 3)}x**, by CPU time ${fixed(cpu(id, other) / cpu(id, name), 3)}x (${fixed(cpu(id, name))} vs ${fixed(cpu(id, other))} µs/req)`
  const lines: string[] = []
  const gateway = find('a', GATEWAY)
  const baseline = find('a', GATEWAY_BASELINE)
  if (gateway !== undefined && baseline !== undefined) {
    const ratio = rate('a', GATEWAY) / rate('a', GATEWAY_BASELINE)
    const noise = Math.max(spread(gateway), spread(baseline))
    const hasSpread = Math.min(gateway.rounds.length, baseline.rounds.length) > 1
    const others = (['b', 'c'] as const).filter((id) => find(id, GATEWAY_BASELINE) !== undefined).map((id) => `; ${versus(id, GATEWAY, GATEWAY_BASELINE)}`).join('')
    lines.push(`- issue 13, tracing off: ${GATEWAY} / ${GATEWAY_BASELINE} req/s ${versus('a', GATEWAY, GATEWAY_BASELINE)} ` +
      `(a drop of at most the run-to-run spread, ${fixed(noise * 100, 1)}% = the larger of the two servers' round spreads: ` +
      `${hasSpread ? verdict(ratio >= 1 - noise) : 'n/a, one round has no spread'})${others}`)
  }
  const traced = extras.tracing
  if (traced !== undefined) {
    const ids = (['a', 'b', 'c'] as const).filter((id) => find(id, GATEWAY_TRACED) !== undefined && find(id, GATEWAY) !== undefined)
    const { sink, requests } = traced
    const received = sink.spans > 0
      ? `the sink received ${fixed(sink.spans)} spans in ${fixed(sink.requests)} exports (${fixed(sink.bytes / 1e6, 1)} MB), ${fixed(sink.spans / Math.max(1, requests), 2)} per request answered under load`
      : `**the sink received no spans (${fixed(sink.requests)} exports, ${fixed(sink.bytes)} bytes): the traced rows are INVALID**`
    lines.push(`- issue 13, tracing on (reported, no target): ${GATEWAY_TRACED} / ${GATEWAY} req/s ${ids.map((id) => versus(id, GATEWAY_TRACED, GATEWAY)).join('; ')}; ${received}`)
  }
  return lines
}

export function render (scenarios: Scenario[], extras: Extras, settings: GatewaySettings, host: string, when: Date): string {
  const versions = Object.entries(extras.versions).map(([k, v]) => `${k} ${v}`).join(', ')
  const invalid = scenarios.some((s) => s.servers.some((x) => !x.rounds.every(isClean)))
  const noSpans = extras.tracing !== undefined && extras.tracing.sink.spans === 0
  const lines = [
    `# Gateway: Gatehouse vs bare @fastify/http-proxy vs @fastify/jwt (${when.toISOString()})`,
    '',
    ...targets(scenarios, extras),
    ...(invalid ? ['**INVALID: some requests failed during the rounds (see non-2xx and errors).**', ''] : []),
    ...(noSpans ? [`**INVALID: ${GATEWAY_TRACED} exported no spans.**`, ''] : []),
    '## Scenarios',
    '',
    ...scenarios.flatMap((s) => table(s, settings)),
    '## Settings',
    '',
    `- machine: ${host}`,
    `- versions: ${versions}`,
    `- ${settings.rounds} interleaved rounds of ${settings.duration} s per server and scenario, after a ${settings.warmup} s warm-up each in (a) and (b), and in (c) ${settings.settle} s of the same paced load, not measured, right before each round; ` +
      `wrk, 1 thread, ${settings.connections} connections; every column is the median over rounds`,
    `- a round with more than ${settings.maxOther} % other load on either CPU was run again (the least disturbed run counts), within ${settings.retryBudget} s for the whole run: ` +
      `${extras.retries ?? 0} re-runs`,
    `- servers pinned to CPU ${settings.serverCpu} (one under load at a time, the others idle); wrk, the upstream, Redis and the issuer on CPU ${settings.loadCpu}`,
    '- request: `GET /api/hello` with `Authorization: Bearer <ES256 at+jwt>` (client_credentials, scope api:read, aud demo-api, from the real issuer); ' +
      'the proxies strip `/api` and forward to the upstream (node:http, a small JSON body); "upstream" is that server hit directly (its row shares CPU ' + settings.loadCpu + ' with wrk)',
    `- ${GATEWAY}: packages/gateway/bin/gatehouse-gateway.js from ${settings.gatewayRoot}, run as a program (its launcher, on the one CPU: node --single-threaded-gc), route auth required + aud demo-api + scope api:read, local validation ` +
      '(verified-token cache: default 10,000), revocation mirror on Redis, request log at info to /dev/null, no rate limit; ' +
      `${GATEWAY_1M}: the same with ${fixed(settings.revocations)} jti entries seeded into Redis before it started`,
    ...(settings.baselineRoot === undefined
      ? []
      : [`- ${GATEWAY_BASELINE}: the gateway of ${settings.baselineRoot}, started as ${GATEWAY} is (same YAML, same Redis), to compare with a version before a change`]),
    ...(settings.tracing
      ? [`- ${GATEWAY_TRACED}: ${GATEWAY} with tracing on (\`OTEL_TRACES_EXPORTER=otlp\`, \`OTEL_EXPORTER_OTLP_ENDPOINT\`; protocol http/json, the gateway's default; ` +
          'sampler parentbased_always_on: every request a sampled root span; the SDK\'s default batch), exporting to an OTLP/HTTP sink on CPU ' + settings.loadCpu +
          ' (bench/peers/otlp-sink.ts: counts, keeps nothing)']
      : []),
    `- ${HAPROXY}: HAProxy (Debian's package), nbthread 1, config generated by bench/lib/haproxy.ts: \`jwt_verify\` ES256 on every request (no cache), typ, iss, aud, exp, nbf, scope checks, identity headers, ` +
      'Authorization dropped, keep-alive to the upstream (`http-reuse always`); no revocation list, no logging',
    `- ${BARE}: @fastify/http-proxy, no auth, no logging; ${JWT}: @fastify/jwt (fast-jwt cache: true = 1,000 entries; ES256, typ at+jwt, iss, aud; scope check; identity headers) + @fastify/http-proxy, ` +
      'no revocation list, no logging; all three use undici with 256 connections to the upstream',
    `- (b) cycles through ${fixed(settings.tokens)} distinct tokens (more than either cache holds: every request is a signature check)`,
    '- (c) is paced with wrk\'s per-connection pause (wrk2 is not packaged): each connection has at most one request in flight; the rate reached is in the req/s column',
    `- (e) ${settings.samples} samples, each a fresh token; see bench/lib/revocation-delay.ts`,
    `- (f) ${settings.samples} samples, each a fresh user session (password grant); the gateway has no Redis; see bench/lib/ssf-delay.ts`,
    '- non-2xx: responses with a status >= 400 (what wrk counts); any, or any socket error, invalidates the run',
    `- CPU µs/req: the server process's CPU time (all threads, /proc) per request; server CPU %: its share of CPU ${settings.serverCpu} (below ~95 %, something else set the pace); ` +
      'other load: the share of each CPU used by anything but the bench\'s own processes (server; wrk, upstream, Redis, issuer): other processes on a shared machine, interrupts. ' +
      'Past a few % a round\'s req/s and latencies are depressed; CPU µs/req much less so',
    '- RSS: VmRSS at the end of each round'
  ]
  return lines.join('\n') + '\n'
}
