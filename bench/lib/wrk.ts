/**
 * The load of bench/gateway.ts: wrk (C, one thread, pinned to the load CPU with the upstream)
 * with bench/fixtures/gateway.lua, read back from its `BENCH_JSON` line. wrk costs a fraction
 * of autocannon's CPU per request, which matters when the load generator shares its CPU with
 * the upstream every proxy forwards to.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { rssMegabytes, watchCpu, watchLoadCpu, type CpuShare, type LoadCpuShare } from './cpu.ts'
import { runPinned } from './servers.ts'

const SCRIPT = fileURLToPath(new URL('../fixtures/gateway.lua', import.meta.url))

/** Throws unless wrk is installed. */
export function checkWrk (): string {
  try {
    return execFileSync('wrk', ['-v'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'wrk'
  } catch (err) {
    // `wrk -v` prints its version and exits 1.
    const out = String((err as { stdout?: unknown }).stdout ?? '')
    if (out.startsWith('wrk')) return out.split('\n')[0]?.trim() ?? 'wrk'
    throw new Error('wrk not found: apt-get install wrk')
  }
}

export interface WrkLoad {
  /** Full URL */
  url: string
  connections: number
  /** seconds */
  duration: number
  /** CPU wrk is pinned to */
  cpu: number
  /** The server under test: its CPU time, RSS and its CPU's other load are measured */
  server: { pid: number, cpu: number }
  /** Bench processes on the load CPU (upstream, Redis, issuer): their CPU time is not "other load" */
  loadCpuPids?: number[]
  /** One token on every request */
  token?: string
  /** A file of tokens, one per line, used in turn */
  tokenFile?: string
  /** Where in the token file to start (a count of requests already sent) */
  tokenOffset?: number
  /** Mean pause before each request of a connection, ms (paced load) */
  delayMs?: number
}

export interface WrkResult {
  /** Completed requests per second (wrk counts any status) */
  requestsPerSecond: number
  /** Server CPU time per request, µs: barely moved by other load on a shared machine */
  cpuPerRequest: number
  /** ms */
  p50: number
  p90: number
  p99: number
  max: number
  requests: number
  /** Responses with a status >= 400 (what wrk counts) */
  non2xx: number
  /** Socket errors (connect, read, write) */
  errors: number
  timeouts: number
  /** Use of the server's CPU */
  cpu: CpuShare
  /** Who used the load CPU: wrk, the bench's processes, anything else */
  loadCpu: LoadCpuShare
  /** Server RSS at the end of the run, MB */
  rss: number
}

interface WrkJson {
  requests: number
  durationUs: number
  connect: number
  read: number
  write: number
  status: number
  timeout: number
  p50Us: number
  p90Us: number
  p99Us: number
  maxUs: number
}

export async function wrk (load: WrkLoad): Promise<WrkResult> {
  const env: Record<string, string> = {}
  if (load.token !== undefined) env.BENCH_TOKEN = load.token
  if (load.tokenFile !== undefined) env.BENCH_TOKEN_FILE = load.tokenFile
  if (load.tokenOffset !== undefined) env.BENCH_TOKEN_OFFSET = String(load.tokenOffset)
  if (load.delayMs !== undefined) env.BENCH_DELAY_MS = String(load.delayMs)
  const args = ['-t', '1', '-c', String(load.connections), '-d', `${load.duration}s`, '--timeout', '5s', '-s', SCRIPT, load.url]
  const stopServerCpu = watchCpu(load.server.cpu, load.server.pid)
  const stopLoadCpu = watchLoadCpu(load.cpu, load.loadCpuPids ?? [])
  const { code, stdout, stderr } = await runPinned(load.cpu, 'wrk', args, { ...process.env, ...env })
  const cpu = stopServerCpu()
  const loadCpu = stopLoadCpu()
  const rss = rssMegabytes(load.server.pid)
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if (code !== 0 || line === undefined) throw new Error(`wrk exited ${code}:\n${stderr}\n${stdout}`)
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkJson
  return {
    requestsPerSecond: r.requests / (r.durationUs / 1e6),
    cpuPerRequest: cpu.serverMicros / Math.max(1, r.requests),
    p50: r.p50Us / 1000,
    p90: r.p90Us / 1000,
    p99: r.p99Us / 1000,
    max: r.maxUs / 1000,
    requests: r.requests,
    non2xx: r.status,
    errors: r.connect + r.read + r.write,
    timeouts: r.timeout,
    cpu,
    loadCpu,
    rss
  }
}

export const isClean = (r: WrkResult): boolean => r.non2xx === 0 && r.errors === 0 && r.timeouts === 0
