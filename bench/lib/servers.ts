/**
 * The two servers under test, each its own process pinned to one CPU with `taskset`, and
 * stopped on every way out (normal end, error, Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

/** The one client of both servers (bench/fixtures/issuer.yaml holds its secretHash). */
export const BENCH_CLIENT = { id: 'bench-service', secret: 'bench-service-secret-not-for-production' }

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ISSUER_CONFIG = join(ROOT, 'bench/fixtures/issuer.yaml')
const PEER = join(ROOT, 'bench/peers/oidc-provider.ts')

export interface Server {
  name: string
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string
  tokenUrl: string
  pid: number
  stop: () => Promise<void>
}

const running = new Set<ChildProcess>()
const cleanups: Array<() => Promise<void>> = []

/** Runs `cleanup` in {@link stopAll}, after every process has stopped (temporary files, ...). */
export function onStopAll (cleanup: () => Promise<void>): void {
  cleanups.push(cleanup)
}

/** Stopped by {@link stopAll} (and killed if this process exits first). */
export function track (child: ChildProcess): void {
  running.add(child)
  child.once('exit', () => running.delete(child))
}

/**
 * Runs a load generator pinned to `cpu` (`taskset -c CPU command args...`) to completion:
 * its exit code, its stdout, and the last 4 KB of its stderr. Tracked, so a Ctrl-C stops it.
 */
export async function runPinned (cpu: number, command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn('taskset', ['-c', String(cpu), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env }) })
  track(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    // 'close', not 'exit': the output streams are read to their end first.
    child.once('close', resolve)
  })
  return { code, stdout, stderr }
}

/** A port that was free a moment ago (the kernel picks it). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => { typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')) })
    })
  })
}

/** Spawns `command` under `taskset -c cpu`; stdout goes to /dev/null, stderr is kept for errors. */
export function spawnPinned (cpu: number, command: string[], env: Record<string, string>): { child: ChildProcess, stderr: () => string } {
  const child = spawn('taskset', ['-c', String(cpu), ...command], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  track(child)
  return { child, stderr: () => stderr }
}

export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
  if (!killed) {
    child.kill('SIGKILL')
    await exited
  }
}

/** Polls `url` until it answers 200; fails as soon as the process dies. */
export async function waitReady (name: string, url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited before it was ready (${child.exitCode ?? child.signalCode}):\n${stderr()}`)
    }
    try {
      const response = await fetch(url)
      await response.arrayBuffer()
      if (response.status === 200) return
    } catch { /* not listening yet */ }
    await sleep(100)
  }
  throw new Error(`${name} was not ready at ${url} within 30 s:\n${stderr()}`)
}

async function start (name: string, cpu: number, command: string[], env: Record<string, string>, base: string, readyPath: string, tokenPath: string): Promise<Server> {
  const { child, stderr } = spawnPinned(cpu, command, env)
  const stop = async (): Promise<void> => { await stopChild(child) }
  try {
    await waitReady(name, base + readyPath, child, stderr)
  } catch (err) {
    await stop()
    throw err
  }
  return { name, url: base, tokenUrl: base + tokenPath, pid: child.pid ?? -1, stop }
}

/**
 * Gatehouse's issuer as shipped (bin/gatehouse-issuer.js) on bench/fixtures/issuer.yaml, with a
 * fresh temporary dataDir where it generates its ES256 key. `nodeFlags` e.g. `--cpu-prof`;
 * `root` is the work tree whose issuer runs (another checkout, to compare a change); `config`
 * another YAML using the same ${BENCH_*} variables (bench/fixtures/gateway-issuer.yaml).
 */
export async function startGatehouse (cpu: number, nodeFlags: string[] = [], root = ROOT, config = ISSUER_CONFIG): Promise<Server> {
  const port = await freePort()
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-bench-'))
  cleanups.push(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const base = `http://127.0.0.1:${port}`
  return await start('gatehouse', cpu, ['node', ...nodeFlags, join(root, 'packages/issuer/bin/gatehouse-issuer.js'), '--config', config], {
    BENCH_PORT: String(port),
    BENCH_ISSUER_URL: base,
    BENCH_DATA_DIR: dataDir
  }, base, '/readyz', '/oauth2/token')
}

/** A fresh ES256 private JWK (never written to disk). */
function newSigningJwk (): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' }
}

/** bench/peers/oidc-provider.ts, with a signing key generated here and passed in the environment. */
export async function startOidcProvider (cpu: number, nodeFlags: string[] = []): Promise<Server> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  return await start('oidc-provider', cpu, ['node', ...nodeFlags, '--import', 'tsx', PEER], {
    BENCH_PORT: String(port),
    BENCH_ISSUER_URL: base,
    BENCH_SIGNING_JWK: JSON.stringify(newSigningJwk()),
    BENCH_CLIENT_ID: BENCH_CLIENT.id,
    BENCH_CLIENT_SECRET: BENCH_CLIENT.secret
  }, base, '/.well-known/openid-configuration', '/token')
}

/** Stops every server (and load generator) still running and removes temporary data. Safe to call twice. */
export async function stopAll (): Promise<void> {
  await Promise.all([...running].map(stopChild))
  for (const cleanup of cleanups.splice(0)) await cleanup()
}

/** Last resort when the process exits without `stopAll` (e.g. an uncaught error). */
process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })

/**
 * Runs a benchmark's `main` as the process's work: Ctrl-C or SIGTERM stops every server and
 * exits 130; an error is one line (not after Ctrl-C, when the run fails as its servers go);
 * the servers are stopped in every case.
 */
export async function runBenchmark (main: () => Promise<number>): Promise<void> {
  let isStopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (isStopping) return
      isStopping = true
      console.error(`\n${signal}: stopping the servers`)
      stopAll().finally(() => process.exit(130))
    })
  }
  try {
    process.exitCode = await main()
  } catch (err) {
    if (!isStopping) console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  } finally {
    await stopAll()
  }
}
