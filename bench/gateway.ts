/**
 * The gateway on loopback: the upstream hit directly, bare @fastify/http-proxy (the ceiling),
 * Gatehouse's gateway (local validation + Redis revocation mirror) and @fastify/jwt +
 * @fastify/http-proxy, in one run, interleaved. See bench/README.md.
 *
 *   pnpm bench:gateway [--rounds 3] [--duration 5] [--warmup 3] [--connections 50]
 *                      [--tokens 20000] [--revocations 1000000] [--samples 200]
 *                      [--scenarios a,b,c,d,e,f] [--max-other 10] [--retry-budget 60] [--settle 2]
 *                      [--gateway-root DIR] [--baseline-root DIR] [--tracing] [--cpu-prof]
 *
 * --baseline-root DIR adds gatehouse-baseline: the gateway of another (built) work tree, started
 * as gatehouse is (issue 13: no loss with tracing off). --tracing adds gatehouse-traced: the
 * gateway with OTLP tracing on, exporting every span to a counting sink (bench/peers/otlp-sink.ts).
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { rssMegabytes } from './lib/cpu.ts'
import {
  PATH, seedRevocations, startBareProxy, startGateway, startJwtProxy, startOtlpSink, startRedis, startUpstream, tempFile, tracingEnv, type Proc
} from './lib/gateway-servers.ts'
import {
  BARE, GATEWAY, GATEWAY_1M, GATEWAY_BASELINE, GATEWAY_TRACED, HAPROXY, JWT, render, type Extras, type GatewaySettings, type Scenario, type ServerRounds
} from './lib/gateway-report.ts'
import { bearer, send } from './lib/http.ts'
import { median, machine } from './lib/report.ts'
import { measureRevocationDelay, summarise } from './lib/revocation-delay.ts'
import { measureIssuerLogoutDelay, userSessions } from './lib/ssf-delay.ts'
import { startGatehouse, runBenchmark } from './lib/servers.ts'
import { mintTokens, tamper } from './lib/tokens.ts'
import { checkWrk, isClean, wrk, type WrkLoad, type WrkResult } from './lib/wrk.ts'
import { checkHaproxy, startHaproxy } from './lib/haproxy.ts'

const BENCH = fileURLToPath(new URL('.', import.meta.url))
const RESULTS = join(BENCH, 'results')
const CPU = { server: 0, load: 1 }
const SCENARIOS = ['a', 'b', 'c', 'd', 'e', 'f'] as const
type ScenarioId = typeof SCENARIOS[number]

interface Options extends GatewaySettings {
  scenarios: Set<ScenarioId>
  /** (c): seconds of the same paced load, not measured, before each round (see runRounds). */
  settle: number
  cpuProf: boolean
  /** Leave HAProxy out (a machine without it). */
  skipHaproxy: boolean
}

function readSettings (): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      tokens: { type: 'string', default: '20000' },
      revocations: { type: 'string', default: '1000000' },
      samples: { type: 'string', default: '200' },
      'max-other': { type: 'string', default: '10' },
      'retry-budget': { type: 'string', default: '60' },
      settle: { type: 'string', default: '2' },
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      'gateway-root': { type: 'string', default: join(BENCH, '..') },
      'baseline-root': { type: 'string' },
      tracing: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'skip-haproxy': { type: 'boolean', default: false }
    }
  })
  const positive = (name: 'rounds' | 'duration' | 'warmup' | 'connections' | 'tokens' | 'revocations' | 'samples'): number => {
    const n = Number(values[name])
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`)
    return n
  }
  const nonNegative = (name: 'max-other' | 'retry-budget' | 'settle'): number => {
    const n = Number(values[name])
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0`)
    return n
  }
  const scenarios = new Set(values.scenarios.split(',').map((s) => s.trim()))
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`--scenarios: unknown "${s}" (${SCENARIOS.join(',')})`)
  // (c) is paced at half the bare proxy's (a) rate, (d) compares with the gateway's (a) rounds.
  if (scenarios.has('c') || scenarios.has('d')) scenarios.add('a')
  const baselineRoot = values['baseline-root'] === undefined ? undefined : resolve(values['baseline-root'])
  if (baselineRoot !== undefined && !existsSync(join(baselineRoot, 'packages/gateway/dist'))) {
    throw new Error(`--baseline-root: ${baselineRoot}/packages/gateway/dist is missing (build that tree: npx tsc -b tsconfig.build.json)`)
  }
  return {
    rounds: positive('rounds'),
    duration: positive('duration'),
    warmup: positive('warmup'),
    connections: positive('connections'),
    tokens: positive('tokens'),
    revocations: positive('revocations'),
    samples: positive('samples'),
    maxOther: nonNegative('max-other'),
    retryBudget: nonNegative('retry-budget'),
    settle: nonNegative('settle'),
    serverCpu: CPU.server,
    loadCpu: CPU.load,
    gatewayRoot: resolve(values['gateway-root']),
    ...(baselineRoot === undefined ? {} : { baselineRoot }),
    tracing: values.tracing,
    scenarios: scenarios as Set<ScenarioId>,
    cpuProf: values['cpu-prof'],
    skipHaproxy: values['skip-haproxy']
  }
}

/** `haproxy -v`'s first line, once checked. */
let haproxyVersion: string | undefined

function checkMachine (settings: Options): string {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
  } catch {
    throw new Error('taskset not found: install util-linux')
  }
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
  } catch {
    throw new Error('redis-server not found: apt-get install redis-server')
  }
  const wrkVersion = checkWrk()
  if (!settings.skipHaproxy) haproxyVersion = checkHaproxy()
  if (cpus().length < 2) throw new Error('needs at least 2 CPUs (servers on CPU 0, load on CPU 1)')
  execFileSync('taskset', ['-a', '-p', '-c', String(settings.loadCpu), String(process.pid)], { stdio: 'ignore' })
  return wrkVersion
}

/** Moves a running process (all its threads) to `cpu`. */
function pin (pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
}

async function versionOf (packageJson: string): Promise<string> {
  return (JSON.parse(await readFile(packageJson, 'utf8')) as { version: string }).version
}

/** The package version and the commit of a work tree (`-dirty` with uncommitted changes). */
async function gatewayVersion (root: string): Promise<string> {
  let commit = '?'
  try {
    commit = execFileSync('git', ['-C', root, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim()
  } catch { /* not a git work tree */ }
  return `${await versionOf(join(root, 'packages/gateway/package.json'))} (${commit})`
}

const describe = (r: WrkResult): string =>
  `${Math.round(r.requestsPerSecond)} req/s (${Math.round(r.cpuPerRequest)} µs CPU each), p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, RSS ${Math.round(r.rss)} MB, ` +
  `non-2xx ${r.non2xx}, errors ${r.errors + r.timeouts}; CPU ${CPU.server}: server ${Math.round(r.cpu.server)}%, other ${Math.round(r.cpu.other)}%; ` +
  `CPU ${CPU.load}: wrk ${Math.round(r.loadCpu.generator)}%, bench ${Math.round(r.loadCpu.bench)}%, other ${Math.round(r.loadCpu.other)}%`

/**
 * Nothing fast-but-wrong is measured: each proxy returns the upstream's exact body with a
 * valid token; the ones that check tokens refuse a wrongly signed one and a missing one.
 */
async function validate (proc: Proc, checksTokens: boolean, upstreamBody: string, tokens: string[]): Promise<void> {
  for (const token of tokens) {
    const ok = await send(proc.url + PATH, { headers: bearer(token) })
    if (ok.status !== 200 || ok.body !== upstreamBody) {
      throw new Error(`${proc.name}: a valid token got HTTP ${ok.status} ${ok.body.slice(0, 300)} (expected 200 and the upstream's body)`)
    }
  }
  if (!checksTokens) return
  const first = tokens[0] ?? ''
  for (const [what, headers] of [['a wrongly signed token', bearer(tamper(first))], ['no token', {}], ['a token that is not a JWT', bearer('abc.def.ghi')]] as const) {
    const bad = await send(proc.url + PATH, { headers })
    if (bad.status !== 401) throw new Error(`${proc.name}: ${what} got HTTP ${bad.status} ${bad.body.slice(0, 300)} (expected 401)`)
  }
}

interface Target {
  proc: Proc
  /** The load of this server in scenario (a), (b) */
  name: string
}

/** Other load on either CPU during a round, %: what a shared machine took from the run. */
const disturbance = (r: WrkResult): number => Math.max(r.cpu.other, r.loadCpu.other)

/** Seconds left for re-running disturbed rounds, shared by the whole run. */
interface RetryBudget { seconds: number, maxOther: number, used: number }

/**
 * Where each server is in the token file: every run goes on from where the last one stopped
 * (with a margin for the requests in flight at its end), so a token comes back only after all
 * the others, long after it left the verified-token caches (10,000 and 1,000 entries).
 */
type TokenCursor = Map<string, number>

/** Requests each server answered under wrk (warm-ups, rounds, re-runs), by name: the traced gateway's spans per request. */
const answered = new Map<string, number>()

/**
 * `settle`: seconds of the round's own load, not measured, before each round and each re-run.
 * In (c) a server has sat idle while the others ran (20 s and more): V8 has shrunk its young
 * generation and the first second of load goes into growing it back (40-50 scavenges instead of
 * 6, a p99 of 15-18 ms against 3-7 ms in the seconds after, for every peer). A gateway at half
 * load in production is not idle between requests, so (c) measures the steady state.
 */
async function runRounds (title: string, targets: Target[], rounds: number, warmup: number, budget: RetryBudget, load: (t: Target, duration: number) => WrkLoad, cursor?: TokenCursor, settle = 0): Promise<ServerRounds[]> {
  const results = targets.map((t) => ({ name: t.name, rounds: [] as WrkResult[] }))
  const run = async (t: Target, spec: WrkLoad): Promise<WrkResult> => {
    if (settle > 0) {
      const s = await wrk({ ...spec, duration: settle })
      answered.set(t.name, (answered.get(t.name) ?? 0) + s.requests)
      if (!isClean(s)) throw new Error(`${t.name} failed requests while settling before a round: ${describe(s)}`)
    }
    const r = await wrk(spec)
    answered.set(t.name, (answered.get(t.name) ?? 0) + r.requests)
    cursor?.set(t.name, (cursor.get(t.name) ?? 0) + r.requests + 2 * spec.connections)
    return r
  }
  if (warmup > 0) {
    for (const t of targets) {
      const r = await run(t, load(t, warmup))
      console.log(`${title} warm-up ${t.name}: ${describe(r)}`)
      if (!isClean(r)) throw new Error(`${t.name} failed requests during the warm-up: ${describe(r)}`)
    }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const [i, t] of targets.entries()) {
      const spec = load(t, 0)
      let r = await run(t, spec)
      console.log(`${title} round ${round}/${rounds} ${t.name}: ${describe(r)}`)
      // A round another process took a share of is run again, while the budget lasts; the
      // least disturbed run counts. A failed request is never retried away.
      while (isClean(r) && disturbance(r) > budget.maxOther && budget.seconds >= spec.duration) {
        budget.seconds -= spec.duration
        budget.used++
        const again = await run(t, load(t, 0))
        console.log(`${title} round ${round}/${rounds} ${t.name} again (other load ${Math.round(disturbance(r))}%): ${describe(again)}`)
        if (!isClean(again) || disturbance(again) < disturbance(r)) r = again
      }
      results[i]?.rounds.push(r)
    }
  }
  return results
}

async function main (): Promise<number> {
  const settings = readSettings()
  // Every server inherits the bench's environment: tracing is on only where the bench turns it on.
  for (const name of Object.keys(process.env)) if (name.startsWith('OTEL_')) delete process.env[name]
  const host = machine()
  const wrkVersion = checkMachine(settings)
  const began = performance.now()
  const elapsed = (): string => `${((performance.now() - began) / 1000).toFixed(0)} s`
  const has = (s: ScenarioId): boolean => settings.scenarios.has(s)
  const profileDir = join(RESULTS, 'profiles')
  // One directory per server: bench/results/profiles/<name>/CPU.*.0.001.cpuprofile is its main thread.
  const profile = (name: string): string[] => settings.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)] : []

  // Redis and the issuer first: the tokens and the seeded list exist before any gateway starts.
  const redis = await startRedis('redis', CPU.load)
  const redis1M = has('d') ? await startRedis('redis-1M', CPU.load) : undefined
  // The issuer mints on CPU 0 (nothing else runs yet), then moves to CPU 1 for good.
  const issuer = await startGatehouse(CPU.server, [], settings.gatewayRoot, join(BENCH, 'fixtures/gateway-issuer.yaml'))
  const wanted = 1 + (has('b') ? settings.tokens : 0) + (has('e') ? settings.samples : 0)
  const tokens = await mintTokens(issuer.tokenUrl, wanted)
  pin(issuer.pid, CPU.load)
  const token = tokens[0] ?? ''
  const manyTokens = has('b') ? tokens.slice(1, 1 + settings.tokens) : []
  const logoutTokens = has('e') ? tokens.slice(1 + manyTokens.length) : []
  const tokenFile = has('b') ? await tempFile('tokens.txt', manyTokens.join('\n') + '\n') : undefined
  const sessions = has('f') ? await userSessions(issuer.tokenUrl, settings.samples) : []
  console.log(`${elapsed()}: minted ${wanted} tokens at ${issuer.url}`)
  if (redis1M !== undefined) {
    await seedRevocations(redis1M.redisUrl, settings.revocations)
    console.log(`${elapsed()}: seeded ${settings.revocations} revocations into ${redis1M.redisUrl}`)
  }

  const upstream = await startUpstream(CPU.load)
  const bare = await startBareProxy(CPU.server, upstream.url, profile(BARE))
  const jwt = await startJwtProxy(CPU.server, upstream.url, issuer.url, profile(JWT))
  const haproxy = settings.skipHaproxy ? undefined : await startHaproxy(CPU.server, upstream.url, issuer.url)
  const gateway = await startGateway(GATEWAY, CPU.server, { issuer: issuer.url, upstream: upstream.url, redisUrl: redis.redisUrl }, profile(GATEWAY), settings.gatewayRoot)
  // The baseline shares the gateway's Redis: it is off the per-request path (the mirror is in
  // memory), so the two run in the same conditions, and a second server would only add noise.
  const baseline = settings.baselineRoot === undefined
    ? undefined
    : await startGateway(GATEWAY_BASELINE, CPU.server, { issuer: issuer.url, upstream: upstream.url, redisUrl: redis.redisUrl }, profile(GATEWAY_BASELINE), settings.baselineRoot)
  // The spans go to a real receiver on the load CPU, as they would to a collector on another host.
  const sink = settings.tracing ? await startOtlpSink(CPU.load) : undefined
  const traced = sink === undefined
    ? undefined
    : await startGateway(GATEWAY_TRACED, CPU.server, { issuer: issuer.url, upstream: upstream.url, redisUrl: redis.redisUrl, env: tracingEnv(sink.url) }, profile(GATEWAY_TRACED), settings.gatewayRoot)
  const gateway1M = redis1M === undefined
    ? undefined
    : await startGateway(GATEWAY_1M, CPU.server, { issuer: issuer.url, upstream: upstream.url, redisUrl: redis1M.redisUrl }, profile(GATEWAY_1M), settings.gatewayRoot)
  const gateways = [gateway, baseline, traced, gateway1M].filter((g) => g !== undefined)
  const extras: Extras = {
    rssAtStart: Object.fromEntries(gateways.map((g) => [g.name, rssMegabytes(g.pid)])),
    startMs: Object.fromEntries(gateways.map((g) => [g.name, g.startMs])),
    versions: {
      gatehouse: await gatewayVersion(settings.gatewayRoot),
      ...(settings.baselineRoot === undefined ? {} : { [GATEWAY_BASELINE]: await gatewayVersion(settings.baselineRoot) }),
      '@fastify/http-proxy': await versionOf(join(BENCH, 'node_modules/@fastify/http-proxy/package.json')),
      '@fastify/jwt': await versionOf(join(BENCH, 'node_modules/@fastify/jwt/package.json')),
      ...(haproxyVersion === undefined ? {} : { haproxy: haproxyVersion.match(/version (\S+)/)?.[1] ?? haproxyVersion }),
      wrk: wrkVersion.replace(/^wrk\s+/, '').replace(/\s.*$/, ''),
      redis: execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1] ?? '?'
    },
    ...(redis1M === undefined ? {} : { revocationsSeeded: settings.revocations })
  }
  console.log(`${elapsed()}: servers up (${GATEWAY} ready in ${(gateway.startMs / 1000).toFixed(1)} s` +
    `${gateway1M === undefined ? '' : `, ${GATEWAY_1M} in ${(gateway1M.startMs / 1000).toFixed(1)} s`})`)

  const upstreamBody = (await send(upstream.url + PATH)).body
  const sample = [token, ...manyTokens.filter((_, i) => i % Math.max(1, Math.floor(manyTokens.length / 20)) === 0)]
  await validate(bare, false, upstreamBody, [token])
  for (const proc of [gateway, baseline, traced, gateway1M, jwt, haproxy]) if (proc !== undefined) await validate(proc, true, upstreamBody, sample)
  console.log(`${elapsed()}: validated: every proxy returns the upstream's body for a valid token, and the gateways and ${JWT} refuse bad ones`)

  const targets: Target[] = [
    { proc: upstream, name: 'upstream' },
    { proc: bare, name: BARE },
    { proc: gateway, name: GATEWAY },
    ...(baseline === undefined ? [] : [{ proc: baseline, name: GATEWAY_BASELINE }]),
    ...(traced === undefined ? [] : [{ proc: traced, name: GATEWAY_TRACED }]),
    { proc: jwt, name: JWT },
    ...(haproxy === undefined ? [] : [{ proc: haproxy, name: HAPROXY }]),
    ...(gateway1M === undefined ? [] : [{ proc: gateway1M, name: GATEWAY_1M }])
  ]
  const loadCpuPids = [upstream.pid, redis.pid, issuer.pid, ...[redis1M, sink].filter((p) => p !== undefined).map((p) => p.pid)]
  const base = (t: Target, duration: number): WrkLoad => ({
    url: t.proc.url + PATH,
    connections: settings.connections,
    duration: duration > 0 ? duration : settings.duration,
    cpu: CPU.load,
    server: { pid: t.proc.pid, cpu: CPU.server },
    loadCpuPids
  })
  const budget: RetryBudget = { seconds: settings.retryBudget, maxOther: settings.maxOther, used: 0 }
  const scenarios: Scenario[] = []
  if (has('a')) {
    const servers = await runRounds('(a)', targets, settings.rounds, settings.warmup, budget, (t, d) => ({ ...base(t, d), token }))
    scenarios.push({ id: 'a', title: 'one valid token repeated (verified-token cache hits)', servers })
  }
  if (has('b') && tokenFile !== undefined) {
    const cursor: TokenCursor = new Map()
    const servers = await runRounds('(b)', targets.filter((t) => t.name !== GATEWAY_1M), settings.rounds, settings.warmup, budget,
      (t, d) => ({ ...base(t, d), tokenFile, tokenOffset: cursor.get(t.name) ?? 0 }), cursor)
    scenarios.push({ id: 'b', title: `every request a different valid token (${settings.tokens.toLocaleString('en-US')} in turn: no cache hits)`, servers })
  }
  if (has('c')) {
    const bareA = scenarios.find((s) => s.id === 'a')?.servers.find((s) => s.name === BARE)
    const rate = median(bareA?.rounds.map((r) => r.requestsPerSecond) ?? []) / 2
    // Each connection: one request, then a pause; the latency (~0.3 ms here) is allowed for.
    const delayMs = Math.max(0, settings.connections * 1000 / rate - 0.3)
    const servers = await runRounds('(c)', targets.filter((t) => t.name !== GATEWAY_1M), settings.rounds, 0, budget, (t, d) => ({ ...base(t, d), token, delayMs }), undefined, settings.settle)
    scenarios.push({ id: 'c', title: 'one valid token, paced at half the bare proxy\'s (a) rate: latency added', servers, pace: { rate, delayMs } })
  }
  if (has('e')) {
    // A second instance on the same Redis; A is the gateway measured above.
    const gatewayB = await startGateway(`${GATEWAY}-B`, CPU.server, { issuer: issuer.url, upstream: upstream.url, redisUrl: redis.redisUrl }, [], settings.gatewayRoot)
    extras.revocation = await measureRevocationDelay(gateway.url, gatewayB.url, PATH, logoutTokens)
    const s = summarise(extras.revocation.samples)
    console.log(`(e) ${extras.revocation.samples.length} logouts on A enforced by B: p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, max ${s.max.toFixed(2)} ms, failures ${extras.revocation.failures}`)
    await gatewayB.stop()
  }
  if (has('f')) {
    // A gateway with no Redis: the issuer's Shared Signals stream is how it learns of the logout.
    const alone = await startGateway(`${GATEWAY}-no-redis`, CPU.server, { issuer: issuer.url, upstream: upstream.url }, [], settings.gatewayRoot)
    extras.issuerLogout = await measureIssuerLogoutDelay(issuer.url, alone.url, PATH, sessions)
    const s = summarise(extras.issuerLogout.samples)
    console.log(`(f) ${extras.issuerLogout.samples.length} logouts at the issuer enforced by a gateway without Redis (Shared Signals): p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, max ${s.max.toFixed(2)} ms, failures ${extras.issuerLogout.failures}`)
    await alone.stop()
  }
  // Still right at the end.
  await validate(bare, false, upstreamBody, [token])
  for (const proc of [gateway, baseline, traced, gateway1M, jwt, haproxy]) if (proc !== undefined) await validate(proc, true, upstreamBody, [token])
  console.log(`${elapsed()}: validated again after the rounds`)
  if (traced !== undefined && sink !== undefined) {
    // Stopping flushes the spans still in the batch, so the count covers every request.
    await traced.stop()
    extras.tracing = { sink: await sink.stats(), requests: answered.get(GATEWAY_TRACED) ?? 0 }
    const { sink: got, requests } = extras.tracing
    console.log(`${elapsed()}: ${GATEWAY_TRACED} exported ${got.spans} spans in ${got.requests} requests (${(got.bytes / 1e6).toFixed(1)} MB) for ${requests} requests under load`)
  }

  const isValid = scenarios.every((s) => s.servers.every((x) => x.rounds.every(isClean))) && (extras.revocation?.failures ?? 0) === 0 && (extras.issuerLogout?.failures ?? 0) === 0 &&
    (extras.tracing === undefined || extras.tracing.sink.spans > 0)
  extras.retries = budget.used
  const report = render(scenarios, extras, settings, host, new Date())
  await mkdir(RESULTS, { recursive: true })
  await writeFile(join(RESULTS, 'gateway.md'), report)
  console.log('\n' + report)
  console.log(`written to ${join(RESULTS, 'gateway.md')} (${elapsed()})`)
  return isValid ? 0 : 1
}

await runBenchmark(main)
