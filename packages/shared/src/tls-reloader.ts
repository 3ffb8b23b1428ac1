/**
 * Serves a renewed certificate without a restart. The files of `listen.tls` are watched
 * through their directories (editors, certbot and cert-manager replace a file by renaming a new
 * one over it, or swap a symlink, which a watch on the file itself would not follow) and
 * polled (for file systems where fs.watch misses changes), and re-read on SIGHUP. A good pair
 * goes to `server.setSecureContext`: the next new connection gets it, open ones keep theirs.
 * A pair that does not load (a half-written file, a key that does not match yet) is logged,
 * and the old certificate keeps serving.
 */
import { unwatchFile, watch, watchFile, type FSWatcher } from 'node:fs'
import type { Server as NetServer } from 'node:net'
import { basename, dirname } from 'node:path'
import { Server as TlsServer } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { checkTls, describeCertificate, readTlsFiles, secureContextOptions, TlsFileError, type TlsContents, type TlsMaterial } from './tls.ts'

export interface CertificateReloaderOptions {
  /** Quiet time after the last change event before reading the files. Default 200 ms. */
  debounceMs?: number
  /** Polling interval, for file systems where fs.watch misses changes. Default 2000 ms. */
  pollMs?: number
}

const isSame = (a: TlsContents, b: TlsContents): boolean =>
  a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca))

/** Watches one listener's certificate files and swaps its secure context. */
export class CertificateReloader {
  readonly #server: TlsServer
  readonly #log: Pick<FastifyBaseLogger, 'info' | 'warn'>
  readonly #debounceMs: number
  readonly #pollMs: number
  #material: TlsMaterial
  /** What the last attempt read, good or bad: a broken file is reported once, not per event. */
  #lastRead: TlsContents | undefined
  #watchers: FSWatcher[] = []
  #polled: string[] = []
  #timer: NodeJS.Timeout | undefined

  /** `server`: the listener built with `material` (Fastify's `app.server` with listen.tls). */
  constructor (server: NetServer, material: TlsMaterial, log: Pick<FastifyBaseLogger, 'info' | 'warn'>, options: CertificateReloaderOptions = {}) {
    if (!(server instanceof TlsServer)) throw new TypeError('CertificateReloader needs a TLS server (one built with listen.tls)')
    this.#server = server
    this.#material = material
    this.#lastRead = material
    this.#log = log
    this.#debounceMs = options.debounceMs ?? 200
    this.#pollMs = options.pollMs ?? 2000
  }

  /** The certificate and key new connections get. */
  get material (): TlsMaterial {
    return this.#material
  }

  /**
   * Reads the files and serves them when they changed since the last attempt (`force`, on
   * SIGHUP: even when unchanged).
   * @returns true when what was read is now serving
   */
  reload (reason: string, force = false): boolean {
    const { files } = this.#material
    let next: TlsMaterial
    try {
      const read = readTlsFiles(files)
      if (!force && this.#lastRead !== undefined && isSame(read, this.#lastRead)) return false
      this.#lastRead = read
      next = checkTls(files, read)
      this.#server.setSecureContext(secureContextOptions(next))
    } catch (err) {
      // A file missing for a moment (a rename under way) is read again at its next event.
      if (err instanceof TlsFileError && err.message.startsWith('cannot read')) this.#lastRead = undefined
      const field = err instanceof TlsFileError ? `listen.tls.${err.field}` : 'listen.tls'
      this.#log.warn({ reason, field, problem: (err as Error).message }, `TLS certificate not reloaded (${field}): the old one keeps serving`)
      return false
    }
    this.#material = next
    this.#log.info({ reason, ...describeCertificate(next) }, 'TLS certificate reloaded: new connections get it')
    return true
  }

  /** Starts watching: fs.watch on each file's directory, plus polling each file. */
  watch (): void {
    const { files } = this.#material
    const paths = [files.cert, files.key, ...(files.ca === undefined ? [] : [files.ca])]
    const names = new Set(paths.map((p) => basename(p)))
    for (const dir of new Set(paths.map((p) => dirname(p)))) {
      try {
        const watcher = watch(dir, (_event, changed) => {
          // `..data` and its siblings: a Kubernetes secret volume swaps them to update every file at once.
          if (changed === null || names.has(changed) || changed.startsWith('..')) this.#schedule()
        })
        watcher.on('error', () => { watcher.close() })
        watcher.unref()
        this.#watchers.push(watcher)
      } catch (err) {
        this.#log.warn({ dir, err: (err as Error).message }, 'fs.watch unavailable; polling the TLS files only')
      }
    }
    for (const path of new Set(paths)) {
      watchFile(path, { interval: this.#pollMs, persistent: false }, this.#onPoll)
      this.#polled.push(path)
    }
    this.#log.info({ files, ...describeCertificate(this.#material) }, 'serving TLS; the certificate is reloaded when its files change')
  }

  close (): void {
    clearTimeout(this.#timer)
    for (const watcher of this.#watchers) watcher.close()
    for (const path of this.#polled) unwatchFile(path, this.#onPoll)
    this.#watchers = []
    this.#polled = []
  }

  readonly #onPoll = (): void => { this.#schedule() }

  #schedule (): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.reload('files changed') }, this.#debounceMs)
    this.#timer.unref()
  }
}
