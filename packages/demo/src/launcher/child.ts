/**
 * One service of the demo as a child process: its output relayed line by line with a prefix,
 * readiness polled over HTTP, signals sent to its whole process group.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { prefixLine, type Color, type painter } from './log-lines.ts'

export interface ServiceSpec {
  name: string
  color: Color
  /** Arguments to `node`. */
  args: string[]
  /** Polled until it answers 2xx. */
  healthUrl: string
}

export interface ChildOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  paint: ReturnType<typeof painter>
  write: (line: string) => void
}

export class Child {
  readonly spec: ServiceSpec
  readonly #process: ChildProcess
  /** Resolves when the process has exited and its output is drained. */
  readonly closed: Promise<{ code: number | null, signal: NodeJS.Signals | null }>

  constructor (spec: ServiceSpec, options: ChildOptions) {
    this.spec = spec
    // Its own process group: a terminal's Ctrl-C reaches only the launcher, which forwards it
    // once (a second SIGINT would kill a service that is still shutting down cleanly).
    this.#process = spawn(process.execPath, spec.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    for (const stream of [this.#process.stdout, this.#process.stderr]) {
      if (stream === null) continue
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        options.write(prefixLine(spec.name, line, options.paint, spec.color))
      })
    }
    this.closed = new Promise((resolve) => {
      this.#process.once('close', (code, signal) => { resolve({ code, signal }) })
      this.#process.once('error', (err) => {
        options.write(prefixLine(spec.name, `could not start: ${err.message}`, options.paint, spec.color))
        resolve({ code: 1, signal: null })
      })
    })
  }

  get hasExited (): boolean {
    return this.#process.exitCode !== null || this.#process.signalCode !== null
  }

  /** Sends `signal` to the child's process group; quiet when it is already gone. */
  signal (signal: NodeJS.Signals): void {
    const pid = this.#process.pid
    if (pid === undefined || this.hasExited) return
    try {
      process.kill(-pid, signal)
    } catch {
      try { this.#process.kill(signal) } catch { /* already gone */ }
    }
  }

  /** Polls the health URL until it answers 2xx; throws when the child exits or time runs out. */
  async waitReady (timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.hasExited) throw new Error(`${this.spec.name} exited before it was ready`)
      try {
        const res = await fetch(this.spec.healthUrl, { signal: AbortSignal.timeout(1000) })
        await res.body?.cancel()
        if (res.ok) return
      } catch { /* not listening yet */ }
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    throw new Error(`${this.spec.name} did not answer ${this.spec.healthUrl} within ${Math.round(timeoutMs / 1000)} s`)
  }
}
