/**
 * Signing keys on local disk: the embedded default, so tokens stay valid across restarts
 * without Redis. One JSON file, `<dataDir>/signing-keys.json`, holding private keys, and one
 * file per shared secret, `<dataDir>/secret-<name>`: the directory is created 0700 and the
 * files 0600.
 */
import { existsSync, watch as watchDir, type FSWatcher } from 'node:fs'
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { UnusableStoreError } from '@gatehouse/shared/store-error'
import { checkSecretName, newSecret } from './policy.ts'
import type { KeyStore, SigningKeyRecord } from './types.ts'

const FILE_NAME = 'signing-keys.json'
/** A lock this old was left by a crashed process: every holder is done in milliseconds. */
const STALE_LOCK_MS = 10_000
/** Waiting longer than this for the lock means something is wrong; fail instead of hanging. */
const LOCK_WAIT_MS = 20_000

interface KeyFile {
  keys: SigningKeyRecord[]
}

/**
 * Keys persisted as JSON in `<dataDir>/signing-keys.json`.
 *
 * - Every write goes to a temp file in the same directory, is fsynced, then renamed over the
 *   file: a crash leaves the old file or the new one, never half of one.
 * - Writers (`add`, `addIfEmpty`, `remove`) read, change and write under a lock file created
 *   with O_EXCL (`wx`). So two processes starting on one directory agree on one first key,
 *   and a `keys rotate` CLI run cannot lose a key the server prunes at the same moment.
 * - `list` re-reads the file every time, so keys added by another process are seen.
 * - A shared secret is written to a temp file, then hard-linked to `secret-<name>`: `link`
 *   fails when the name exists, so of processes racing on a first start exactly one creates
 *   it, the others read the winner's, and nobody ever reads a half-written file.
 */
export class FileKeyStore implements KeyStore {
  readonly #dir: string
  readonly #file: string

  constructor (dataDir: string) {
    this.#dir = dataDir
    this.#file = join(dataDir, FILE_NAME)
  }

  /** Where the keys are kept. */
  get path (): string {
    return this.#file
  }

  /**
   * Calls `listener` soon after the keys file changes (a `keys rotate` run by another process):
   * the directory is watched, since every write renames a new file over the old one. Returns
   * the stop function. Watching is best effort: the periodic re-read stays the backstop.
   */
  watch (listener: () => void): () => void {
    let watcher: FSWatcher | undefined
    try {
      watcher = watchDir(this.#dir, { persistent: false }, (_event, name) => {
        // A file that is gone is a directory being removed, not a rotation: the periodic re-read
        // handles a lost file (and puts the keys back).
        if ((name === null || name === FILE_NAME) && existsSync(this.#file)) listener()
      })
      watcher.on('error', () => { watcher?.close() })
    } catch {
      return () => {}
    }
    return () => { watcher?.close() }
  }

  async list (): Promise<SigningKeyRecord[]> {
    return (await this.#read()).keys
  }

  async add (record: SigningKeyRecord): Promise<void> {
    await this.#update((keys) => [...keys.filter((k) => k.kid !== record.kid), record])
  }

  async addIfEmpty (record: SigningKeyRecord): Promise<boolean> {
    let isAdded = false
    await this.#update((keys) => {
      if (keys.length > 0) return undefined
      isAdded = true
      return [record]
    })
    return isAdded
  }

  async remove (kids: string[]): Promise<void> {
    if (kids.length === 0) return
    const gone = new Set(kids)
    await this.#update((keys) => keys.some((k) => gone.has(k.kid)) ? keys.filter((k) => !gone.has(k.kid)) : undefined)
  }

  async sharedSecret (name: string, create: () => string): Promise<string> {
    checkSecretName(name)
    const file = join(this.#dir, `secret-${name}`)
    const existing = await readSecret(file)
    if (existing !== undefined) return existing
    const value = newSecret(create)
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const temp = await this.#writeTemp(file, value)
    try {
      await link(temp, file)
      return value
    } catch (err) {
      if (!isCode(err, 'EEXIST')) throw err
    } finally {
      await rm(temp, { force: true })
    }
    const winner = await readSecret(file)
    if (winner === undefined) throw new Error(`${file} vanished right after it was created`)
    return winner
  }

  async #read (): Promise<KeyFile> {
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (err) {
      if (isCode(err, 'ENOENT')) return { keys: [] }
      throw err
    }
    // Never overwritten when unreadable: its keys may still verify live tokens. The operator
    // decides (restore it, or move it away to start over with a new key).
    const corrupt = (why: string): UnusableStoreError =>
      new UnusableStoreError(`signing keys file ${this.#file} ${why}; restore it from a backup, or move it away to start with a new key`)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw corrupt(`is not valid JSON (${(err as Error).message})`)
    }
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as KeyFile).keys)) {
      throw corrupt('is not a Gatehouse key file (expected {"keys": [...]})')
    }
    const keys = (parsed as KeyFile).keys as unknown[]
    const bad = keys.findIndex((record) => !isKeyRecord(record))
    if (bad >= 0) throw corrupt(`holds a malformed key at keys[${bad}]`)
    return parsed as KeyFile
  }

  /** Read, change, write, under the lock. `change` returns undefined to leave the file as is. */
  async #update (change: (keys: SigningKeyRecord[]) => SigningKeyRecord[] | undefined): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    await this.#withLock(async () => {
      const keys = change((await this.#read()).keys)
      if (keys !== undefined) await this.#write({ keys })
    })
  }

  async #write (content: KeyFile): Promise<void> {
    const temp = await this.#writeTemp(this.#file, JSON.stringify(content, null, 2) + '\n')
    try {
      await rename(temp, this.#file)
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
  }

  /** A new, fsynced temp file beside `file`, holding `text`; renamed or linked by the caller. */
  async #writeTemp (file: string, text: string): Promise<string> {
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    // 0600 at creation, so private keys and secrets are never readable by others, even briefly.
    const handle = await open(temp, 'wx', 0o600)
    try {
      try {
        await handle.writeFile(text)
        await handle.sync()
      } finally {
        await handle.close()
      }
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
    return temp
  }

  async #withLock (fn: () => Promise<void>): Promise<void> {
    const lock = `${this.#file}.lock`
    const deadline = Date.now() + LOCK_WAIT_MS
    for (;;) {
      try {
        await (await open(lock, 'wx', 0o600)).close()
        break
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err
      }
      if (await isStale(lock)) {
        await rm(lock, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lock}`)
      await sleep(5 + Math.random() * 20)
    }
    try {
      await fn()
    } finally {
      await rm(lock, { force: true })
    }
  }
}

async function isStale (lock: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(lock)).mtimeMs > STALE_LOCK_MS
  } catch (err) {
    if (isCode(err, 'ENOENT')) return false // released meanwhile: try again
    throw err
  }
}

/** The fields a stored key needs (the JWKs themselves are checked by jose when imported). */
function isKeyRecord (value: unknown): value is SigningKeyRecord {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  return typeof r.kid === 'string' && r.kid !== '' && typeof r.alg === 'string' &&
    typeof r.privateJwk === 'object' && r.privateJwk !== null && typeof r.publicJwk === 'object' && r.publicJwk !== null &&
    Number.isFinite(r.createdAt) && Number.isFinite(r.activatesAt) && (r.revokedAt === undefined || Number.isFinite(r.revokedAt))
}

/** The secret in `file`, or undefined when there is none yet. */
async function readSecret (file: string): Promise<string | undefined> {
  let value: string
  try {
    value = await readFile(file, 'utf8')
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined
    throw err
  }
  if (value === '') throw new UnusableStoreError(`secret file ${file} is empty; delete it to have a new secret created`)
  return value
}

function isCode (err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code
}
