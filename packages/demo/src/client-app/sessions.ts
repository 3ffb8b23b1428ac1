/**
 * The web app's sessions: kept in this process, found by an httpOnly cookie that holds only a
 * random id. The tokens stay here, on the server (the browser-based-apps BCP's "backend").
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

export const SESSION_COOKIE = 'demo_web_session'
/** The most sessions kept; the oldest goes first. */
const MAX_SESSIONS = 10_000
const IDLE_TIMEOUT_MS = 8 * 60 * 60 * 1000
const COOKIE_ID = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([A-Za-z0-9_-]{22})(?:;|$)`)

/** What the web app keeps for one browser. */
export interface WebSession {
  /** Goes in every form; a POST without it is refused (another site's form). Renewed at sign-in. */
  csrf: string
  lastSeen: number
  /** An authorization request on its way: PKCE verifier, state, nonce. */
  pending?: { verifier: string, state: string, nonce: string }
  signedIn?: SignedIn
  /** The last result of each action, shown on the page. */
  api?: { status: number, body: string }
  refreshed?: { count: number }
  logout?: { status: number, body: string }
  /** The `state` sent to the issuer's end_session_endpoint. */
  logoutState?: string
  error?: string
}

export interface SignedIn {
  accessToken: string
  /** ms since the epoch. */
  accessTokenExpiresAt: number
  refreshToken?: string
  idToken: string
  scope?: string
  /** The ID token's claims, as validated. */
  claims: Record<string, unknown>
}

const newId = (): string => randomBytes(16).toString('base64url')

export class WebSessions {
  readonly #sessions = new Map<string, WebSession>()
  readonly #cookieAttributes: string

  constructor (options: { secure: boolean }) {
    this.#cookieAttributes = `Path=/; HttpOnly; SameSite=Lax${options.secure ? '; Secure' : ''}`
  }

  /** The browser's session, or a new one (and its cookie). */
  of (request: FastifyRequest, reply: FastifyReply): WebSession {
    const id = COOKIE_ID.exec(request.headers.cookie ?? '')?.[1]
    const now = Date.now()
    const found = id === undefined ? undefined : this.#sessions.get(id)
    if (found !== undefined && id !== undefined && now - found.lastSeen < IDLE_TIMEOUT_MS) {
      found.lastSeen = now
      return found
    }
    if (id !== undefined) this.#sessions.delete(id)
    const session: WebSession = { csrf: newId(), lastSeen: now }
    this.#store(newId(), session, reply)
    return session
  }

  /** A new id and CSRF token for `session`, once signed in: what was known before the sign-in is worth nothing after it. */
  renew (request: FastifyRequest, reply: FastifyReply, session: WebSession): void {
    const old = COOKIE_ID.exec(request.headers.cookie ?? '')?.[1]
    if (old !== undefined && this.#sessions.get(old) === session) this.#sessions.delete(old)
    reply.removeHeader('set-cookie')
    // The CSRF token too: one a fixated session knew must not outlive the sign-in.
    session.csrf = newId()
    this.#store(newId(), session, reply)
  }

  #store (id: string, session: WebSession, reply: FastifyReply): void {
    this.#sessions.set(id, session)
    if (this.#sessions.size > MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next().value
      if (oldest !== undefined) this.#sessions.delete(oldest)
    }
    reply.header('set-cookie', `${SESSION_COOKIE}=${id}; ${this.#cookieAttributes}`)
  }
}

/** True when a form's `csrf` field is the session's. */
export function isCsrfValid (session: WebSession, given: unknown): boolean {
  if (typeof given !== 'string') return false
  const a = Buffer.from(given)
  const b = Buffer.from(session.csrf)
  return a.length === b.length && timingSafeEqual(a, b)
}
