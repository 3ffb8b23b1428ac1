/**
 * The embedded `SignalStore`: the log and streams in memory (memory-signals.ts), kept in
 * `dataDir` so an issuer restart loses nothing.
 *
 * - `ssf-events.jsonl`: one event per line, appended and fsynced before `append` resolves (and
 *   before any receiver can see the event). Rewritten whole (temp file, fsync, rename) once
 *   pruning has left it mostly dead lines, or when a crash left a torn last line.
 * - `ssf-streams.json`: the streams and what each acknowledged, written whole the same way.
 *   A stream created, changed or deleted is written before the request answers;
 *   acknowledgements and activity at most once a second and at close, so after a crash a few
 *   events may be delivered again, never lost.
 *
 * One process per data directory: the files are this process's state, not shared.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { MemorySignals, type StreamState } from './memory-signals.ts'
import type { SignalEvent, SignalEventInput, SignalPollRequest, SignalPollResult, SignalStore, StreamRecord } from './types.ts'

export const EVENTS_FILE = 'ssf-events.jsonl'
export const STREAMS_FILE = 'ssf-streams.json'

/** At most one write of acknowledgements a second. */
const FLUSH_INTERVAL_MS = 1000

interface StreamsFile {
  head: number
  streams: Array<{ record: StreamRecord, cursor: number, acked: number[] }>
}

type Log = Pick<FastifyBaseLogger, 'warn'>

export class FileSignalStore implements SignalStore {
  readonly #dir: string
  readonly #eventsFile: string
  readonly #streamsFile: string
  readonly #log: Log | undefined
  readonly #state = new MemorySignals()
  readonly #listeners = new Set<() => void>()
  readonly #leases = new Map<string, { owner: string, until: number }>()
  #opening: Promise<void> | undefined
  #appender: FileHandle | undefined
  /** Lines in the events file, live or pruned. */
  #lines = 0
  /** File writes, one at a time and in order. */
  #writes: Promise<unknown> = Promise.resolve()
  #flushTimer: NodeJS.Timeout | undefined
  #isDirty = false
  #isClosed = false

  constructor (dataDir: string, log?: Log) {
    this.#dir = dataDir
    this.#eventsFile = join(dataDir, EVENTS_FILE)
    this.#streamsFile = join(dataDir, STREAMS_FILE)
    this.#log = log
  }

  async open (): Promise<void> {
    this.#opening ??= this.#load()
    await this.#opening
  }

  async append (inputs: readonly SignalEventInput[], _keepUntil: number, _now: number): Promise<void> {
    if (inputs.length === 0) return
    const events = this.#state.number(inputs)
    await this.#serial(async () => {
      const appender = this.#appender ?? await this.#openAppender()
      await appender.write(events.map((e) => JSON.stringify(e) + '\n').join(''))
      await appender.datasync()
      this.#lines += events.length
    })
    this.#state.commit(events)
    for (const listener of this.#listeners) listener()
  }

  async createStream (stream: StreamRecord, maxPerClient: number, now: number): Promise<boolean> {
    if (!this.#state.createStream(stream, maxPerClient, now)) return false
    try {
      await this.#writeStreams()
    } catch (err) {
      this.#state.deleteStream(stream.id)
      throw err
    }
    return true
  }

  async getStream (id: string, now: number): Promise<StreamRecord | null> {
    return this.#state.getStream(id, now)
  }

  async listStreams (clientId: string | undefined, now: number): Promise<StreamRecord[]> {
    return this.#state.listStreams(clientId, now)
  }

  async saveStream (stream: StreamRecord, options: { skipPending: boolean }, now: number): Promise<boolean> {
    if (!this.#state.saveStream(stream, options.skipPending, now)) return false
    await this.#writeStreams()
    return true
  }

  async deleteStream (id: string, _clientId: string): Promise<boolean> {
    if (!this.#state.deleteStream(id)) return false
    this.#leases.delete(id)
    await this.#writeStreams()
    return true
  }

  async poll (id: string, request: SignalPollRequest): Promise<SignalPollResult | null> {
    const result = this.#state.poll(id, request)
    if (result !== null) this.#markDirty()
    return result
  }

  async prune (before: number, now: number): Promise<void> {
    const pruned = this.#state.prune(before, now)
    if (pruned.streams > 0) await this.#writeStreams()
    // Rewritten once most of the file is dead lines.
    if (pruned.events > 0 && this.#lines > 2 * this.#state.events.length + 100) await this.#serial(async () => { await this.#rewriteEvents() })
  }

  onAppend (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  async lease (streamId: string, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.#leases.get(streamId)
    const now = performance.now()
    if (held !== undefined && held.owner !== owner && held.until > now) return false
    this.#leases.set(streamId, { owner, until: now + ttlMs })
    return true
  }

  async releaseLease (streamId: string, owner: string): Promise<void> {
    if (this.#leases.get(streamId)?.owner === owner) this.#leases.delete(streamId)
  }

  /** Writes what is pending and closes the files. */
  async close (): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    clearTimeout(this.#flushTimer)
    this.#listeners.clear()
    if (this.#opening === undefined) return
    await this.#opening.catch(() => {})
    if (this.#isDirty) await this.#writeStreams().catch((err: unknown) => this.#log?.warn({ err }, 'shared signals: could not write the streams at close'))
    await this.#serial(async () => { await this.#appender?.close() }).catch(() => {})
    this.#appender = undefined
  }

  async #load (): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const saved = await this.#readStreams()
    const { events, isClean } = await this.#readEvents()
    const streams: StreamState[] = saved.streams.map((s) => ({ record: s.record, cursor: s.cursor, acked: new Set(s.acked) }))
    this.#state.restore(saved.head, streams, events)
    this.#lines = events.length
    // A crash may have torn the last line: rewrite, so the next append starts a fresh line.
    if (!isClean) await this.#serial(async () => { await this.#rewriteEvents() })
  }

  async #readStreams (): Promise<StreamsFile> {
    let text: string
    try {
      text = await readFile(this.#streamsFile, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { head: 0, streams: [] }
      throw err
    }
    try {
      const parsed = JSON.parse(text) as StreamsFile
      if (Number.isSafeInteger(parsed.head) && Array.isArray(parsed.streams)) return parsed
    } catch {}
    // Streams are cheap to lose: their receivers create new ones, which replay the log.
    const aside = `${this.#streamsFile}.unreadable-${Date.now()}`
    await rename(this.#streamsFile, aside)
    this.#log?.warn({ file: aside }, 'shared signals: the streams file is unreadable; moved aside, starting without streams')
    return { head: 0, streams: [] }
  }

  async #readEvents (): Promise<{ events: SignalEvent[], isClean: boolean }> {
    let text: string
    try {
      text = await readFile(this.#eventsFile, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], isClean: true }
      throw err
    }
    const events: SignalEvent[] = []
    let bad = 0
    for (const line of text.split('\n')) {
      if (line === '') continue
      try {
        const event = JSON.parse(line) as SignalEvent
        if (Number.isSafeInteger(event.seq) && event.seq > (events.at(-1)?.seq ?? 0) && typeof event.jti === 'string') events.push(event)
        else bad++
      } catch {
        bad++
      }
    }
    if (bad > 0) this.#log?.warn({ file: this.#eventsFile, lines: bad }, 'shared signals: skipped unreadable lines of the event log')
    return { events, isClean: bad === 0 && (text === '' || text.endsWith('\n')) }
  }

  async #openAppender (): Promise<FileHandle> {
    this.#appender = await open(this.#eventsFile, 'a', 0o600)
    return this.#appender
  }

  /** The live events to a temp file, fsynced, renamed over the log. Runs inside `#serial`. */
  async #rewriteEvents (): Promise<void> {
    const events = this.#state.events
    await writeAtomically(this.#eventsFile, events.map((e) => JSON.stringify(e) + '\n').join(''))
    await this.#appender?.close()
    this.#appender = undefined
    this.#lines = events.length
  }

  #markDirty (): void {
    this.#isDirty = true
    if (this.#flushTimer !== undefined || this.#isClosed) return
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined
      if (this.#isDirty) this.#writeStreams().catch((err: unknown) => this.#log?.warn({ err }, 'shared signals: could not write the streams'))
    }, FLUSH_INTERVAL_MS)
    this.#flushTimer.unref()
  }

  async #writeStreams (): Promise<void> {
    await this.#serial(async () => {
      // Taken inside the queue: the snapshot is the latest state when the write starts.
      this.#isDirty = false
      const content: StreamsFile = {
        head: this.#state.head,
        streams: [...this.#state.streams.values()].map((s) => ({ record: s.record, cursor: s.cursor, acked: [...s.acked] }))
      }
      try {
        await writeAtomically(this.#streamsFile, JSON.stringify(content) + '\n')
      } catch (err) {
        this.#isDirty = true
        throw err
      }
    })
  }

  async #serial<T> (write: () => Promise<T>): Promise<T> {
    const result = this.#writes.then(write)
    this.#writes = result.catch(() => {})
    return await result
  }
}

/** `text` to a temp file beside `file` (0600), fsynced, then renamed over it. */
async function writeAtomically (file: string, text: string): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'wx', 0o600)
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, file)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
}
