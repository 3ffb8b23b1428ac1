/**
 * Test harness: a real `redis-server` per test file, on a free loopback port.
 * Never a mock: the tests run against what production runs. `--save ''` and no AOF: nothing
 * touches disk.
 * The server dies with the test process, however that dies (child-reaper.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { reapOnExit } from './child-reaper.ts'

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** The running server's pid, or undefined when it is not running. */
  readonly pid: number | undefined
  /** True between {@link pause} and {@link resume}. */
  readonly isPaused: boolean
  /** SIGTERM and wait for exit (resumed first if paused). Safe to call twice. */
  stop (): Promise<void>
  /** SIGKILL (a crash) and wait for exit. */
  kill (): Promise<void>
  /** Start again on the same port, empty (nothing is persisted). */
  start (): Promise<void>
  /**
   * SIGSTOP: a stall. The sockets stay open and the kernel still accepts connections, but
   * nothing answers. Resolves once the process is stopped. `stop()` and `kill()` resume it.
   */
  pause (): Promise<void>
  /** SIGCONT after {@link pause}; a no-op otherwise. */
  resume (): void
}

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. ['--notify-keyspace-events', 'Ex']. */
  args?: string[]
  /** Fixed port; a free one is picked when omitted. */
  port?: number
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  server.close()
  await once(server, 'close')
  return port
}

async function waitForPing (port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      let data = ''
      socket.setTimeout(500)
      socket.on('connect', () => socket.write('PING\r\n'))
      socket.on('data', (chunk) => {
        data += chunk.toString()
        if (data.includes('\r\n')) {
          socket.destroy()
          resolve(data.startsWith('+PONG'))
        }
      })
      socket.on('error', () => resolve(false))
      socket.on('timeout', () => { socket.destroy(); resolve(false) })
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`redis-server on port ${port} did not answer PING in time`)
}

/** Servers stopped by pause(): killed if this process exits without resuming them. */
const pausedPids = new Set<number>()
process.once('exit', () => {
  for (const pid of pausedPids) {
    try { process.kill(pid, 'SIGKILL') } catch { /* gone already */ }
  }
})

/** Whether `pid` is stopped by a signal: state `T` in /proc (Linux); true where there is no /proc. */
function isStopped (pid: number): boolean {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return true
  }
  // `pid (comm) state ...`: comm may hold spaces and parentheses, the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')
}

/** Spawns `redis-server` (must be on PATH) and resolves once it answers PING. */
export async function startRedis (options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? await freePort()
  let child: ChildProcess | undefined
  let isPaused = false

  async function start (): Promise<void> {
    if (child !== undefined) return
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--loglevel', 'warning', ...(options.args ?? [])
    ]
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    // Killed if this process dies first, by any signal (redis-server rewrites its environment
    // area for its title, so the reaper's environment token cannot find it).
    reapOnExit(proc)
    child = proc
    let stderr = ''
    proc.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = once(proc, 'exit').then(() => {
      if (proc.pid !== undefined) pausedPids.delete(proc.pid)
      if (child === proc) child = undefined
      throw new Error(`redis-server exited early: ${stderr.trim()}`)
    })
    proc.on('error', () => { /* reported through 'exit' or the ping deadline */ })
    await Promise.race([waitForPing(port, Date.now() + 10_000), exited])
    exited.catch(() => {})
  }

  async function signal (sig: NodeJS.Signals): Promise<void> {
    const proc = child
    if (proc === undefined) return
    child = undefined
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    // A stopped process takes SIGTERM only once it runs again.
    if (isPaused) proc.kill('SIGCONT')
    isPaused = false
    if (proc.pid !== undefined) pausedPids.delete(proc.pid)
    proc.kill(sig)
    await exited
  }

  async function pause (): Promise<void> {
    const pid = child?.pid
    if (pid === undefined) throw new Error('redis-server is not running')
    process.kill(pid, 'SIGSTOP')
    isPaused = true
    pausedPids.add(pid)
    const deadline = Date.now() + 10_000
    while (!isStopped(pid)) {
      if (Date.now() > deadline) throw new Error(`redis-server ${pid} did not stop after SIGSTOP`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  function resume (): void {
    if (!isPaused) return
    isPaused = false
    const pid = child?.pid
    if (pid === undefined) return
    pausedPids.delete(pid)
    process.kill(pid, 'SIGCONT')
  }

  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child?.pid },
    get isPaused () { return isPaused },
    stop: async () => await signal('SIGTERM'),
    kill: async () => await signal('SIGKILL'),
    start,
    pause,
    resume
  }
}
