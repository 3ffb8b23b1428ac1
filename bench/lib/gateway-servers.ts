/**
 * The processes of bench/gateway.ts, each pinned with `taskset` and stopped by `stopAll()`:
 * Redis, the upstream, the bare @fastify/http-proxy, the @fastify/jwt proxy, Gatehouse
 * gateways (bin/gatehouse-gateway.js on a generated YAML) and the OTLP sink of a traced one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import type { SinkStats } from '../peers/otlp-sink.ts'
import { freePort, onStopAll, spawnPinned, stopChild, waitReady } from './servers.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The gateways' client at the bench issuer (bench/fixtures/gateway-issuer.yaml holds its secretHash). */
export const GATEWAY_CLIENT = { id: 'bench-gateway', secret: 'bench-gateway-secret-not-for-production' }

/** The audience of the bench tokens (scope api:read) and of the gateway's route. */
export const AUDIENCE = 'demo-api'

/** What every load generator requests: the proxies forward it to the upstream as `/hello`. */
export const PATH = '/api/hello'

/** Redis key of the jti revocations (packages/fastify-auth/src/revocation/redis.ts). */
export const JTI_KEY = 'gatehouse:{revocations}:jti'

export interface Proc {
  name: string
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string
  pid: number
  stop: () => Promise<void>
}

/** Spawns a pinned process and waits until `url + readyPath` answers 200. */
export async function startPinned (name: string, cpu: number, command: string[], env: Record<string, string>, url: string, readyPath: string): Promise<Proc> {
  const { child, stderr } = spawnPinned(cpu, command, env)
  const stop = async (): Promise<void> => { await stopChild(child) }
  try {
    await waitReady(name, url + readyPath, child, stderr)
  } catch (err) {
    await stop()
    throw err
  }
  return { name, url, pid: child.pid ?? -1, stop }
}

let tempDir: string | undefined
async function temp (): Promise<string> {
  if (tempDir === undefined) {
    const dir = tempDir = await mkdtemp(join(tmpdir(), 'gatehouse-gateway-bench-'))
    onStopAll(async () => { await rm(dir, { recursive: true, force: true }) })
  }
  return tempDir
}

/** A file in this run's temporary directory (removed by stopAll). */
export async function tempFile (name: string, content: string): Promise<string> {
  const file = join(await temp(), name)
  await writeFile(file, content)
  return file
}

export interface RedisProc extends Proc {
  /** redis://127.0.0.1:PORT */
  redisUrl: string
}

/** A throwaway redis-server (no persistence) on a free port. */
export async function startRedis (name: string, cpu: number): Promise<RedisProc> {
  const port = await freePort()
  const { child, stderr } = spawnPinned(cpu, ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {})
  const redisUrl = `redis://127.0.0.1:${port}`
  const stop = async (): Promise<void> => { await stopChild(child) }
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited at start:\n${stderr()}`)
    const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      if (await probe.ping() === 'PONG') break
    } catch { /* not listening yet */ } finally { probe.disconnect() }
    if (Date.now() > deadline) { await stop(); throw new Error(`${name} did not answer PING:\n${stderr()}`) }
    await sleep(50)
  }
  return { name, url: redisUrl, redisUrl, pid: child.pid ?? -1, stop }
}

/**
 * `count` jti revocations written straight into the sorted set, as the issuer would (random
 * 22-character base64url ids, expiries an hour and more ahead), in pipelined batches of
 * multi-member ZADDs. No PUBLISH: a gateway started afterwards loads them in its first sync.
 */
export async function seedRevocations (redisUrl: string, count: number): Promise<void> {
  const redis = new Redis(redisUrl)
  try {
    const random = randomBytes(count * 16)
    const base = Date.now() + 3_600_000
    const perCommand = 1000
    const perPipeline = 50
    for (let start = 0; start < count; start += perCommand * perPipeline) {
      const pipeline = redis.pipeline()
      for (let c = start; c < Math.min(count, start + perCommand * perPipeline); c += perCommand) {
        const args: Array<string | number> = []
        for (let i = c; i < Math.min(count, c + perCommand); i++) {
          args.push(base + i, random.subarray(i * 16, i * 16 + 16).toString('base64url'))
        }
        pipeline.zadd(JTI_KEY, ...args)
      }
      const results = await pipeline.exec()
      const failed = results?.find(([err]) => err !== null)
      if (failed !== undefined) throw failed[0]
    }
    // Every key of the list has a TTL at least as far out as its highest score.
    await redis.pexpireat(JTI_KEY, base + count + 60_000)
    const size = await redis.zcard(JTI_KEY)
    if (size !== count) throw new Error(`seeded ${size} revocations, not ${count}`)
  } finally {
    redis.disconnect()
  }
}

/** bench/peers/upstream.ts: node:http answering a small JSON. */
export async function startUpstream (cpu: number): Promise<Proc> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  return await startPinned('upstream', cpu, ['node', '--import', 'tsx', join(ROOT, 'bench/peers/upstream.ts')], { BENCH_PORT: String(port) }, url, '/healthz')
}

/** bench/peers/http-proxy.ts: bare @fastify/http-proxy, the ceiling. */
export async function startBareProxy (cpu: number, upstream: string, nodeFlags: string[]): Promise<Proc> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  return await startPinned('http-proxy', cpu, ['node', ...nodeFlags, '--import', 'tsx', join(ROOT, 'bench/peers/http-proxy.ts')], {
    BENCH_PORT: String(port),
    BENCH_UPSTREAM: upstream
  }, url, '/healthz')
}

/** bench/peers/jwt-proxy.ts: @fastify/jwt (cache on) + @fastify/http-proxy. */
export async function startJwtProxy (cpu: number, upstream: string, issuer: string, nodeFlags: string[]): Promise<Proc> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  return await startPinned('fastify-jwt', cpu, ['node', ...nodeFlags, '--import', 'tsx', join(ROOT, 'bench/peers/jwt-proxy.ts')], {
    BENCH_PORT: String(port),
    BENCH_UPSTREAM: upstream,
    BENCH_ISSUER_URL: issuer,
    BENCH_AUDIENCE: AUDIENCE
  }, url, '/healthz')
}

export interface GatewaySetup {
  issuer: string
  upstream: string
  /** The revocation mirror's Redis; without it the gateway learns revocations by Shared Signals only. */
  redisUrl?: string
  /** pino level of the gateway's log; default info (the request log line) */
  logLevel?: string
  /** More environment for the process, e.g. {@link tracingEnv} */
  env?: Record<string, string>
}

/**
 * The gateway's YAML: one route `/api` (prefix stripped), auth required, aud demo-api, scope
 * api:read for GET (api:write otherwise), no rate limit; local validation with the default
 * verified-token cache; the revocation mirror on Redis (when given) and the issuer's Shared Signals
 * stream; request logs at info (to /dev/null); the gateway's client, for logout and the stream.
 */
export function gatewayYaml (port: number, setup: GatewaySetup): string {
  return `# Generated by bench/lib/gateway-servers.ts
listen: { host: 127.0.0.1, port: ${port} }
issuer: ${setup.issuer}
client: { id: ${GATEWAY_CLIENT.id}, secret: ${GATEWAY_CLIENT.secret} }
${setup.redisUrl === undefined ? '' : `redis: { url: '${setup.redisUrl}' }\n`}log: { level: ${setup.logLevel ?? 'info'} }
routes:
  - name: api
    prefix: /api
    upstreams: ['${setup.upstream}']
    auth: required
    audience: ${AUDIENCE}
    scopes:
      GET: [api:read]
      HEAD: [api:read]
      '*': [api:write]
`
}

/**
 * packages/gateway/bin/gatehouse-gateway.js as shipped, run as a program (the installed bin);
 * ready once /readyz says the keys are loaded and the revocation mirror synced (so a
 * 1M-entry list is loaded before it serves). `root` is the work tree whose gateway runs.
 * Pinned to one CPU, the bin's launcher starts node with --single-threaded-gc (docs/operations.md,
 * "One CPU"). node flags (--cpu-prof: not allowed in NODE_OPTIONS) need node on the command
 * line: the flag is then given here, as the launcher would.
 */
export async function startGateway (name: string, cpu: number, setup: GatewaySetup, nodeFlags: string[], root = ROOT): Promise<Proc & { startMs: number }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const config = await tempFile(`${name}.yaml`, gatewayYaml(port, setup))
  const started = performance.now()
  const bin = join(root, 'packages/gateway/bin/gatehouse-gateway.js')
  const command = nodeFlags.length === 0 ? [bin] : ['node', '--single-threaded-gc', ...nodeFlags, bin]
  const proc = await startPinned(name, cpu, [...command, '--config', config], setup.env ?? {}, url, '/readyz')
  return { ...proc, startMs: performance.now() - started }
}

export interface OtlpSink extends Proc {
  /** What the sink has received so far */
  stats: () => Promise<SinkStats>
}

/** bench/peers/otlp-sink.ts: an OTLP/HTTP receiver that counts what it gets and keeps nothing. */
export async function startOtlpSink (cpu: number): Promise<OtlpSink> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = await startPinned('otlp-sink', cpu, ['node', '--import', 'tsx', join(ROOT, 'bench/peers/otlp-sink.ts')], { BENCH_PORT: String(port) }, url, '/healthz')
  const stats = async (): Promise<SinkStats> => {
    const response = await fetch(url + '/stats')
    if (response.status !== 200) throw new Error(`otlp-sink: /stats got HTTP ${response.status}`)
    return await response.json() as SinkStats
  }
  return { ...proc, stats }
}

/**
 * Tracing on, through the standard variables the gateway reads (packages/shared/src/tracing.ts
 * `tracingSettings`): the OTLP exporter to `sink` (it adds `/v1/traces`), over the gateway's
 * default protocol (http/json); the SDK's default sampler (parentbased_always_on: wrk sends no
 * `traceparent`, so every request is a sampled root) and batch processor.
 */
export function tracingEnv (sink: string): Record<string, string> {
  return { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: sink }
}
