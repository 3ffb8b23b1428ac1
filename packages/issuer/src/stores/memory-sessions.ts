/**
 * SSO sessions and consents in process memory (the embedded default). Same behaviour as
 * `redis-sessions.ts`; the contract suites run against both.
 */
import { systemClock, type Clock } from '../clock.ts'
import { ExpiringMap } from './memory.ts'
import { checkConsentTtl } from './policy.ts'
import type { ConsentStore, SessionRecord, SessionStore } from './types.ts'

interface StoredSession {
  session: SessionRecord
  clients: Set<string>
  families: Set<string>
  /** Ended by `end`: kept until it would have expired, as a marker. */
  ended: boolean
}

/**
 * Sessions in a Map, by sid. `create` takes no `now`: the session's `createdAt` is that moment.
 * `addClient`, `addFamily` and `end` take no `now` either, so, like Redis before it evicts a
 * key, they still see a session that has expired but not been dropped: logout then still
 * reaches its clients.
 */
export class MemorySessionStore implements SessionStore {
  readonly #sessions: ExpiringMap<StoredSession>

  constructor (clock: Clock = systemClock) {
    this.#sessions = new ExpiringMap(clock)
  }

  async create (session: SessionRecord): Promise<void> {
    if (session.expiresAt <= session.createdAt) return
    this.#sessions.set(session.sid, { session: { ...session }, clients: new Set(), families: new Set(), ended: false }, session.expiresAt)
  }

  async get (sid: string, now: number): Promise<SessionRecord | null> {
    const stored = this.#sessions.get(sid, now)
    return stored === undefined || stored.ended ? null : { ...stored.session }
  }

  async addClient (sid: string, clientId: string): Promise<void> {
    this.#live(sid)?.clients.add(clientId)
  }

  async addFamily (sid: string, familyId: string): Promise<boolean> {
    const stored = this.#live(sid)
    stored?.families.add(familyId)
    return stored !== undefined
  }

  async end (sid: string): Promise<{ session: SessionRecord, clients: string[], families: string[] } | null> {
    const stored = this.#live(sid)
    if (stored === undefined) return null
    const ended = { session: { ...stored.session }, clients: [...stored.clients], families: [...stored.families] }
    this.#sessions.set(sid, { ...stored, clients: new Set(), families: new Set(), ended: true }, stored.session.expiresAt)
    return ended
  }

  async hasEnded (sid: string): Promise<boolean> {
    return this.#sessions.peek(sid)?.ended === true
  }

  #live (sid: string): StoredSession | undefined {
    const stored = this.#sessions.peek(sid)
    return stored?.ended === false ? stored : undefined
  }
}

/**
 * Consents in a Map, by subject and client: scope -> expiresAt. Each scope is granted until
 * `ttlMs` after the grant that last included it: a grant never extends scopes the user did not
 * confirm again.
 */
export class MemoryConsentStore implements ConsentStore {
  readonly #consents: ExpiringMap<Map<string, number>>

  constructor (clock: Clock = systemClock) {
    this.#consents = new ExpiringMap(clock)
  }

  async get (subject: string, clientId: string, now: number): Promise<string[]> {
    const granted = this.#consents.get(consentKey(subject, clientId), now) ?? new Map<string, number>()
    return [...granted].filter(([, expiresAt]) => expiresAt > now).map(([scope]) => scope)
  }

  async grant (subject: string, clientId: string, scopes: string[], ttlMs: number, now: number): Promise<void> {
    checkConsentTtl(ttlMs)
    const key = consentKey(subject, clientId)
    const granted = this.#consents.get(key, now) ?? new Map<string, number>()
    for (const [scope, expiresAt] of granted) {
      if (expiresAt <= now) granted.delete(scope)
    }
    for (const scope of scopes) granted.set(scope, now + ttlMs)
    if (granted.size > 0) this.#consents.set(key, granted, Math.max(...granted.values()))
  }
}

/** Unambiguous for any two strings. */
function consentKey (subject: string, clientId: string): string {
  return JSON.stringify([subject, clientId])
}
