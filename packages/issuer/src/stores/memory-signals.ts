/**
 * The Shared Signals log and streams in this process: the state and rules of the embedded
 * `SignalStore`, without any I/O (file-signals.ts persists it). Records are cloned on the way
 * in and out, so a caller never shares an object with the store.
 */
import type { SignalEvent, SignalEventInput, SignalPollRequest, SignalPollResult, StreamRecord } from './types.ts'

/** One stream: its record and what it has acknowledged. */
export interface StreamState {
  record: StreamRecord
  /** Every event up to this `seq` is acknowledged or not for this stream. */
  cursor: number
  /** Acknowledged events after the cursor (acknowledgements may come in any order). */
  acked: Set<number>
}

/** Whether `event` goes to `stream` at all (acknowledged or not). */
export function isForStream (event: SignalEvent, stream: StreamRecord, since: number): boolean {
  if (event.at < since) return false
  return event.streamId === undefined ? stream.eventsDelivered.includes(event.type) : event.streamId === stream.id
}

export class MemorySignals {
  /** Oldest first, by `seq`. */
  #events: SignalEvent[] = []
  readonly #byJti = new Map<string, SignalEvent>()
  readonly #streams = new Map<string, StreamState>()
  /** The last `seq` given. */
  #head = 0

  get head (): number {
    return this.#head
  }

  get events (): readonly SignalEvent[] {
    return this.#events
  }

  get streams (): ReadonlyMap<string, StreamState> {
    return this.#streams
  }

  /** Numbers the events (not in the log yet: see `commit`). */
  number (inputs: readonly SignalEventInput[]): SignalEvent[] {
    return inputs.map((input) => ({ ...structuredClone(input), seq: ++this.#head }))
  }

  /** Puts numbered events in the log (in the order they were numbered). */
  commit (events: readonly SignalEvent[]): void {
    for (const event of events) {
      this.#events.push(event)
      this.#byJti.set(event.jti, event)
    }
  }

  /** Restores saved state: the streams and the last `seq`, then the log. */
  restore (head: number, streams: Iterable<StreamState>, events: readonly SignalEvent[]): void {
    this.#head = Math.max(head, events.at(-1)?.seq ?? 0)
    for (const state of streams) this.#streams.set(state.record.id, state)
    this.commit(events)
  }

  createStream (stream: StreamRecord, maxPerClient: number, now: number): boolean {
    const count = [...this.#streams.values()].filter((s) => s.record.clientId === stream.clientId && this.#isLive(s, now)).length
    if (count >= maxPerClient) return false
    // A new stream starts before every event still in the log (docs/shared-signals.md).
    this.#streams.set(stream.id, { record: structuredClone(stream), cursor: 0, acked: new Set() })
    return true
  }

  getStream (id: string, now: number): StreamRecord | null {
    const state = this.#live(id, now)
    return state === undefined ? null : structuredClone(state.record)
  }

  listStreams (clientId: string | undefined, now: number): StreamRecord[] {
    return [...this.#streams.values()]
      .filter((s) => (clientId === undefined || s.record.clientId === clientId) && this.#isLive(s, now))
      .map((s) => structuredClone(s.record))
  }

  saveStream (stream: StreamRecord, skipPending: boolean, now: number): boolean {
    const state = this.#live(stream.id, now)
    if (state === undefined) return false
    state.record = structuredClone(stream)
    if (skipPending) {
      state.cursor = this.#head
      state.acked.clear()
    }
    return true
  }

  deleteStream (id: string): boolean {
    return this.#streams.delete(id)
  }

  poll (id: string, request: SignalPollRequest): SignalPollResult | null {
    const state = this.#live(id, request.now)
    if (state === undefined) return null
    for (const jti of request.ack) {
      const seq = this.#byJti.get(jti)?.seq
      if (seq !== undefined && seq > state.cursor) state.acked.add(seq)
    }
    if (request.activeUntil !== undefined) state.record.expiresAt = request.activeUntil
    // A paused or disabled stream gets nothing (a paused one keeps its events for later).
    if (state.record.status !== 'enabled') return { events: [], more: false }
    const events: SignalEvent[] = []
    let more = false
    // The cursor moves over what is acknowledged or not for this stream, up to the first
    // event still to deliver, so the acknowledged set stays small.
    let isCompacting = true
    for (let i = this.#firstAfter(state.cursor); i < this.#events.length; i++) {
      const event = this.#events[i]!
      const isAcked = state.acked.has(event.seq)
      if (isAcked || !isForStream(event, state.record, request.since)) {
        if (isCompacting) {
          state.cursor = event.seq
          state.acked.delete(event.seq)
        }
        continue
      }
      isCompacting = false
      if (events.length >= request.max) {
        more = true
        break
      }
      events.push(structuredClone(event))
    }
    return { events, more }
  }

  /** Drops events appended before `before` and streams expired at `now`; true when anything went. */
  prune (before: number, now: number): { events: number, streams: number } {
    const kept = this.#events.filter((e) => e.at >= before)
    const events = this.#events.length - kept.length
    if (events > 0) {
      for (const e of this.#events) if (e.at < before) this.#byJti.delete(e.jti)
      this.#events = kept
    }
    let streams = 0
    for (const [id, state] of this.#streams) {
      if (!this.#isLive(state, now)) {
        this.#streams.delete(id)
        streams++
      }
    }
    return { events, streams }
  }

  #isLive (state: StreamState, now: number): boolean {
    return state.record.expiresAt > now
  }

  #live (id: string, now: number): StreamState | undefined {
    const state = this.#streams.get(id)
    return state !== undefined && this.#isLive(state, now) ? state : undefined
  }

  /** Index of the first event with a `seq` above `seq` (binary search: the log is ordered). */
  #firstAfter (seq: number): number {
    let low = 0
    let high = this.#events.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.#events[mid]!.seq <= seq) low = mid + 1
      else high = mid
    }
    return low
  }
}
