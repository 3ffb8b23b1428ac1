/**
 * Test harness: a real `redis-server` per test file, on a free loopback port.
 * Never a mock (STYLE.md, Tests). `--save ''` and no AOF: nothing touches disk.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { once } from 'node:events'

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** SIGTERM and wait for exit. Safe to call twice. */
  stop (): Promise<void>
  /** SIGKILL (a crash) and wait for exit. */
  kill (): Promise<void>
  /** Start again on the same port, empty (nothing is persisted). */
  start (): Promise<void>
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

/** Spawns `redis-server` (must be on PATH) and resolves once it answers PING. */
export async function startRedis (options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? await freePort()
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    if (child !== undefined) return
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--loglevel', 'warning', ...(options.args ?? [])
    ]
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    child = proc
    let stderr = ''
    proc.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = once(proc, 'exit').then(() => {
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
    proc.kill(sig)
    await exited
  }

  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => await signal('SIGTERM'),
    kill: async () => await signal('SIGKILL'),
    start
  }
}
