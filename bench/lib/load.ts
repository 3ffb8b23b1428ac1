/**
 * The request under test (client_credentials, client_secret_basic), its validation, and the
 * load: autocannon's CLI pinned to its own CPU, read back as JSON.
 */
import { createRequire } from 'node:module'
import { watchCpu, type CpuShare } from './cpu.ts'
import { BENCH_CLIENT, runPinned, type Server } from './servers.ts'

const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')

export const TOKEN_REQUEST = {
  body: 'grant_type=client_credentials&scope=api:read',
  headers: {
    'content-type': 'application/x-www-form-urlencoded',
    // RFC 6749 2.3.1: id and secret are form-urlencoded, then Basic-encoded.
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(BENCH_CLIENT.id)}:${encodeURIComponent(BENCH_CLIENT.secret)}`).toString('base64')}`
  }
} as const

function decodeSegment (segment: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'))
}

/**
 * One token request: it must be a 200 with an ES256 `at+jwt` access token for the client,
 * scope api:read, aud demo-api. Throws, naming the server, otherwise.
 */
export async function validate (server: Server): Promise<{ header: Record<string, unknown>, claims: Record<string, unknown> }> {
  const response = await fetch(server.tokenUrl, { method: 'POST', headers: TOKEN_REQUEST.headers, body: TOKEN_REQUEST.body })
  const text = await response.text()
  const fail = (why: string): never => { throw new Error(`${server.name}: ${why}\n  HTTP ${response.status} ${text.slice(0, 500)}`) }
  if (response.status !== 200) fail('the token request did not return 200')
  let body: { access_token?: unknown, token_type?: unknown }
  try { body = JSON.parse(text) } catch { return fail('the token response is not JSON') }
  if (typeof body.access_token !== 'string') return fail('no access_token')
  const [h, p, signature] = body.access_token.split('.')
  if (signature === undefined || signature === '') return fail('the access token is not a signed JWT')
  const header = decodeSegment(h)
  const claims = decodeSegment(p)
  if (header.alg !== 'ES256') fail(`the access token is signed ${String(header.alg)}, not ES256`)
  if (header.typ !== 'at+jwt') fail(`the access token has typ ${String(header.typ)}, not at+jwt (RFC 9068)`)
  if (String(body.token_type).toLowerCase() !== 'bearer') fail('token_type is not Bearer')
  if (claims.aud !== 'demo-api' || claims.scope !== 'api:read' || claims.client_id !== BENCH_CLIENT.id) {
    fail(`unexpected claims ${JSON.stringify(claims)}`)
  }
  return { header, claims }
}

export interface LoadSettings {
  connections: number
  /** seconds */
  duration: number
  /** CPU the load generator is pinned to */
  cpu: number
  /** CPU the server is pinned to (watched for other load) */
  serverCpu: number
}

export interface LoadResult {
  /** 2xx responses per second */
  tokensPerSecond: number
  /** Server CPU time per 2xx response, µs: barely moved by other load on a shared machine */
  cpuPerToken: number
  p50: number
  p99: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  /** Use of the server's CPU during the run */
  cpu: CpuShare
}

interface AutocannonJson {
  duration: number
  '2xx': number
  non2xx: number
  errors: number
  timeouts: number
  latency: { p50: number, p99: number }
}

/** Runs autocannon against the server's token endpoint and summarises the run. */
export async function load (server: Server, settings: LoadSettings): Promise<LoadResult> {
  const args = [
    AUTOCANNON,
    '--connections', String(settings.connections),
    '--duration', String(settings.duration),
    '--method', 'POST',
    ...Object.entries(TOKEN_REQUEST.headers).flatMap(([k, v]) => ['--headers', `${k}=${v}`]),
    '--body', TOKEN_REQUEST.body,
    '--json',
    server.tokenUrl
  ]
  const stopWatching = watchCpu(settings.serverCpu, server.pid)
  const { code, stdout, stderr } = await runPinned(settings.cpu, 'node', args)
  const cpu = stopWatching()
  if (code !== 0) throw new Error(`autocannon exited ${code}:\n${stderr}`)
  const r = JSON.parse(stdout) as AutocannonJson
  return {
    tokensPerSecond: r['2xx'] / r.duration,
    cpuPerToken: cpu.serverMicros / Math.max(1, r['2xx']),
    p50: r.latency.p50,
    p99: r.latency.p99,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    cpu
  }
}
