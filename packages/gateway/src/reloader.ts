/**
 * Reloads the routes from the config file on SIGHUP and when the file changes. A file that
 * does not load is logged, problem by problem (file:line:column), and the old routes keep
 * serving; a good one swaps the route table (see app.ts).
 */
import { readFileSync, unwatchFile, watch, watchFile, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { ConfigError, formatProblem } from '@gatehouse/shared/config'
import { parseGatewayConfig } from './load-config.ts'

export interface ReloaderOptions {
  /** Quiet time after the last change event before reading the file. Default 200 ms. */
  debounceMs?: number
  /** Polling interval, for file systems where fs.watch misses changes. Default 2000 ms. */
  pollMs?: number
  env?: Record<string, string | undefined>
}

/** Watches one config file and feeds `app.gateway.reload`. */
export class ConfigReloader {
  readonly #app: FastifyInstance
  readonly #file: string
  readonly #debounceMs: number
  readonly #pollMs: number
  readonly #env: Record<string, string | undefined> | undefined
  #lastText: string | undefined
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #isPolling = false

  constructor (app: FastifyInstance, file: string, options: ReloaderOptions = {}) {
    this.#app = app
    this.#file = file
    this.#debounceMs = options.debounceMs ?? 200
    this.#pollMs = options.pollMs ?? 2000
    this.#env = options.env
    try { this.#lastText = readFileSync(file, 'utf8') } catch { this.#lastText = undefined }
  }

  /**
   * Reads and applies the file. `force` (SIGHUP) reloads even an unchanged file.
   * @returns true when the new routes are serving
   */
  reload (reason: string, force = false): boolean {
    let text: string
    try {
      text = readFileSync(this.#file, 'utf8')
    } catch (err) {
      this.#app.log.error({ file: this.#file, reason, code: (err as NodeJS.ErrnoException).code }, 'config reload failed: cannot read the file; the old routes keep serving')
      return false
    }
    if (!force && text === this.#lastText) return false
    this.#lastText = text
    try {
      const config = parseGatewayConfig(text, this.#file, this.#env)
      const result = this.#app.gateway.reload(config)
      this.#app.log.info({ file: this.#file, reason, routes: result.routes }, 'config reloaded')
      return true
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const problem of err.problems) this.#app.log.error({ problem: formatProblem(problem) }, 'config problem')
      this.#app.log.error({ file: this.#file, reason, problems: err.problems.length }, 'config reload rejected; the old routes keep serving')
      return false
    }
  }

  /** Starts watching: fs.watch on the directory (editors replace files), plus polling. */
  watch (): void {
    const name = basename(this.#file)
    try {
      this.#watcher = watch(dirname(this.#file), (_event, changed) => {
        if (changed === null || changed === name) this.#schedule()
      })
      this.#watcher.on('error', () => { this.#watcher?.close(); this.#watcher = undefined })
      this.#watcher.unref()
    } catch (err) {
      this.#app.log.warn({ err }, 'fs.watch unavailable; polling the config file only')
    }
    watchFile(this.#file, { interval: this.#pollMs, persistent: false }, this.#onPoll)
    this.#isPolling = true
  }

  close (): void {
    clearTimeout(this.#timer)
    this.#watcher?.close()
    if (this.#isPolling) unwatchFile(this.#file, this.#onPoll)
    this.#isPolling = false
  }

  readonly #onPoll = (): void => { this.#schedule() }

  #schedule (): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      try {
        this.reload('file changed')
      } catch (err) {
        this.#app.log.error({ err }, 'config reload failed; the old routes keep serving')
      }
    }, this.#debounceMs)
    this.#timer.unref()
  }
}
