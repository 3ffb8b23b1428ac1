/**
 * One small interface per role. `memory.ts` (embedded default, per process) and
 * `redis.ts` (shared by every instance) implement them; no caller knows which is in use.
 * All times are milliseconds since the epoch, from the injected clock.
 */
import type { JWK } from 'jose'
import type { RevocationList } from '@gatehouse/fastify-auth/revocation'

export type SigningAlgorithm = 'ES256' | 'RS256' | 'EdDSA'

/** A signing key as stored. `privateJwk` never leaves the store and the key manager. */
export interface SigningKeyRecord {
  kid: string
  alg: SigningAlgorithm
  privateJwk: JWK
  publicJwk: JWK
  createdAt: number
  /** Signs from this time on (published at once, so JWKS caches learn it first). */
  activatesAt: number
  /**
   * Revoked at this time (an emergency rollover): out of the JWKS, never signs or verifies
   * again; kept in the store for good (its `privateJwk` emptied), so every instance learns it.
   */
  revokedAt?: number
}

export interface KeyStore {
  /** Every stored key, in no particular order. */
  list (): Promise<SigningKeyRecord[]>
  /** Adds a key (rotation). */
  add (record: SigningKeyRecord): Promise<void>
  /**
   * First start: stores `record` only when the store holds no key at all, atomically, so
   * that instances starting together agree on one key. True when it was stored.
   */
  addIfEmpty (record: SigningKeyRecord): Promise<boolean>
  /** Drops retired keys whose last token has expired. */
  remove (kids: string[]): Promise<void>
  /**
   * Calls `listener` soon after another process changed the keys (the embedded file store);
   * returns the stop function. Absent where changes are announced otherwise (Redis).
   */
  watch?: (listener: () => void) => () => void
  /**
   * A named random secret shared by every instance (e.g. the cookie-signing secret): created
   * with `create()` on first use, atomically, then always the same value.
   */
  sharedSecret (name: string, create: () => string): Promise<string>
}

/** A refresh token family: one grant, rotated along a chain of single-use tokens. */
export interface RefreshFamily {
  id: string
  clientId: string
  subject: string
  /** Space-separated scope granted; a refresh may narrow it per request, never widen it. */
  scope: string
  /** Audiences (RFC 8707 resources) the grant covers. */
  audience: string[]
  /** The issuer's SSO session, when the grant came from one (next issue). */
  sid?: string
  authTime?: number
  createdAt: number
  /** Absolute end of the family: no rotation extends it. */
  expiresAt: number
}

/** An access token issued from a family, kept so revoking the family can revoke it too. */
export interface IssuedAccessToken {
  jti: string
  expiresAt: number
}

/** One refresh token of a family. Only its hash is stored; the token itself is never kept. */
export interface RefreshTokenRecord {
  /** base64url SHA-256 of the opaque token. */
  hash: string
  familyId: string
  issuedAt: number
  expiresAt: number
}

export type RotateResult =
  /** `presented` is now used; `next` is the live token of the family. */
  | { status: 'rotated', family: RefreshFamily }
  /** `presented` had been used before: the family is now revoked (RFC 9700 4.14.2). */
  | { status: 'reused', family: RefreshFamily, accessTokens: IssuedAccessToken[] }
  /** Unknown, expired, or its family was revoked earlier. */
  | { status: 'invalid' }

export interface RefreshTokenStore {
  /** Stores a new family with its first token and the access token issued beside it. */
  create (family: RefreshFamily, first: RefreshTokenRecord, accessToken: IssuedAccessToken): Promise<void>
  /**
   * Atomically: when `presentedHash` is a live, unused token of a live family, marks it used,
   * stores `next` and records `accessToken`. When it was used already, revokes the family.
   * Two concurrent rotations of one token can never both answer 'rotated'.
   */
  rotate (familyId: string, presentedHash: string, next: RefreshTokenRecord, accessToken: IssuedAccessToken, now: number): Promise<RotateResult>
  /** A live, unused token and its live family, or null (introspection, revocation). */
  find (familyId: string, hash: string, now: number): Promise<{ family: RefreshFamily, token: RefreshTokenRecord } | null>
  /** Revokes the family. Returns its unexpired access tokens so they can be revoked too; null when unknown. */
  revokeFamily (familyId: string, now: number): Promise<{ family: RefreshFamily, accessTokens: IssuedAccessToken[] } | null>
}

/** A pending authorization code (RFC 6749 4.1.2), stored under the SHA-256 of the code. */
export interface AuthorizationCodeRecord {
  /** base64url SHA-256 of the code. */
  hash: string
  clientId: string
  redirectUri: string
  /** Whether redirect_uri was sent in the authorization request (then it is required at the token endpoint). */
  redirectUriGiven: boolean
  subject: string
  scope: string[]
  audience: string[]
  sid: string
  authTime: number
  nonce?: string
  codeChallenge?: string
  createdAt: number
  expiresAt: number
}

/** What a code was exchanged for, so a replay can revoke it (RFC 6749 4.1.2). */
export interface CodeIssued {
  familyId?: string
  accessToken: IssuedAccessToken
}

export type ConsumeResult =
  | { status: 'ok', code: AuthorizationCodeRecord }
  /** Used before: `issued` is what the first exchange produced (may be absent if it failed). */
  | { status: 'replayed', code: AuthorizationCodeRecord, issued?: CodeIssued }
  /** Unknown or expired. */
  | { status: 'invalid' }

export interface CodeStore {
  save (code: AuthorizationCodeRecord): Promise<void>
  /** Atomically marks the code used and returns it; a second call answers 'replayed'. */
  consume (hash: string, now: number): Promise<ConsumeResult>
  /** Records what the exchange issued (for revocation on replay). */
  recordIssued (hash: string, issued: CodeIssued): Promise<void>
}

/** The issuer's SSO session (or a cookie-less one for the password grant). */
export interface SessionRecord {
  sid: string
  subject: string
  /** Seconds since the epoch, when the user authenticated. */
  authTime: number
  createdAt: number
  expiresAt: number
}

export interface SessionStore {
  create (session: SessionRecord): Promise<void>
  /** The live session, or null. */
  get (sid: string, now: number): Promise<SessionRecord | null>
  /** Remembers that `clientId` got tokens in this session (back-channel logout goes to it). */
  addClient (sid: string, clientId: string): Promise<void>
  /**
   * Remembers a refresh token family of this session (revoked at logout). Atomic with `end`:
   * true when recorded; false when the session has ended (or expired), and then the caller
   * revokes the family, so a code exchange racing a logout never leaves a family alive.
   */
  addFamily (sid: string, familyId: string): Promise<boolean>
  /**
   * Atomically ends the session and returns it with its clients and families; null when it
   * was not there (already ended: logout is idempotent). An ended session leaves a marker
   * for the rest of its lifetime (see `hasEnded`).
   */
  end (sid: string): Promise<{ session: SessionRecord, clients: string[], families: string[] } | null>
  /**
   * True when `end` ended this session and its lifetime has not run out. An expired session is
   * not "ended": its refresh token families keep their own lifetimes.
   */
  hasEnded (sid: string): Promise<boolean>
}

export interface ConsentStore {
  /** Scopes `subject` has granted `clientId` (empty when none). */
  get (subject: string, clientId: string, now: number): Promise<string[]>
  /** Adds `scopes` to what was granted, for `ttlMs`. */
  grant (subject: string, clientId: string, scopes: string[], ttlMs: number, now: number): Promise<void>
}

/** What failed attempts are counted under: see `FailureCounter`. */
export type FailureKind = 'username' | 'login-ip' | 'client' | 'client-ip'

/** The failures of one window, which opens at the first failure and has a fixed end. */
export interface FailureCount {
  count: number
  /** When the window ends: from then on the count starts again from 0. */
  resetAt: number
}

/**
 * Failed attempts (wrong passwords, wrong client secrets) counted in fixed windows, so that
 * what failed too often can be locked until its window ends (checks/failure-limit.ts).
 */
export interface FailureCounter {
  /**
   * Atomically adds one failure. With no open window at `now`, it opens one that ends at
   * `now + windowMs`; later failures in it keep that end.
   */
  add (kind: FailureKind, id: string, windowMs: number, now: number): Promise<FailureCount>
  /** The failures of the window open at `now`, or null when there is none. */
  get (kind: FailureKind, id: string, now: number): Promise<FailureCount | null>
  /** Forgets the failures (after a successful sign-in). */
  clear (kind: FailureKind, id: string): Promise<void>
}

/**
 * Shared Signals (SSF 1.0, docs/shared-signals.md): one event as appended to the log, before it
 * is addressed to a stream and signed as a SET.
 */
export interface SignalEventInput {
  /** The SET's `jti`: unique per event, the same on every stream. */
  jti: string
  /** When it was appended (ms): the SET's `iat`, and what retention counts from. */
  at: number
  /** The SET's `txn`: shared by the events of one cause (one logout, one reuse). */
  txn: string
  /** The event type URI, the one member of the SET's `events`. */
  type: string
  /** The SET's `sub_id` (RFC 9493). */
  subject: Record<string, unknown>
  /** The event object: the value of `events[type]`. */
  payload: Record<string, unknown>
  /** Only this stream gets it (verification, stream-updated); without it, every stream does. */
  streamId?: string
}

/** An event in the log. */
export interface SignalEvent extends SignalEventInput {
  /** Its place in the log, given by the store on append: a later event has a larger number. */
  seq: number
}

export type StreamStatus = 'enabled' | 'paused' | 'disabled'

export type DeliveryMethod = 'urn:ietf:rfc:8936' | 'urn:ietf:rfc:8935'

/** A stream (SSF 1.0 8.1.1) as stored; what it has acknowledged is the store's own business. */
export interface StreamRecord {
  /** `stream_id`: letters, digits, `-` and `_`. */
  id: string
  /** The receiver client that created it: the SETs' `aud`. */
  clientId: string
  delivery: {
    method: DeliveryMethod
    /** Poll: the issuer's poll URL for the stream; push: where SETs are POSTed. */
    endpointUrl: string
    /** Push: sent as `Authorization` with every SET. */
    authorizationHeader?: string
  }
  eventsRequested?: string[]
  /** Event types the stream gets (its own verification and stream-updated events always). */
  eventsDelivered: string[]
  description?: string
  status: StreamStatus
  reason?: string
  createdAt: number
  /** The stream is gone from then on (ms), unless its receiver is active before. */
  expiresAt: number
  /** When the receiver last asked for a verification event (ms). */
  verifiedAt?: number
}

export interface SignalPollRequest {
  /** `jti`s this stream acknowledged: never delivered to it again. Unknown ones are ignored. */
  ack: readonly string[]
  /** At most this many events; 0 only acknowledges. */
  max: number
  /** Events appended before this (ms) are past retention: never returned. */
  since: number
  now: number
  /** The receiver was active (a poll): the stream now lives until then (ms). */
  activeUntil?: number
}

export interface SignalPollResult {
  /** Oldest first. */
  events: SignalEvent[]
  /** More events wait beyond `max`. */
  more: boolean
}

/**
 * The Shared Signals event log and its streams. The log is one ordered list shared by every
 * stream; each stream keeps which events it has acknowledged (in any order), and a new stream
 * starts before every event still in the log. Durable before it answers: an append that
 * resolved is never lost, an acknowledgement may be (the event is then delivered again).
 */
export interface SignalStore {
  /** Loads or subscribes what the store needs; called once before any other method. */
  open (): Promise<void>
  /** Appends `events` in order, atomically; the log is kept at least until `keepUntil` (ms). */
  append (events: readonly SignalEventInput[], keepUntil: number, now: number): Promise<void>
  /** Stores a new stream, unless its client holds `maxPerClient` live streams: false then. */
  createStream (stream: StreamRecord, maxPerClient: number, now: number): Promise<boolean>
  /** The live stream, or null (unknown, deleted or inactive too long). */
  getStream (id: string, now: number): Promise<StreamRecord | null>
  /** The live streams of `clientId`, or of every client when undefined; in no particular order. */
  listStreams (clientId: string | undefined, now: number): Promise<StreamRecord[]>
  /**
   * Replaces a live stream's record (same id and client). With `skipPending`, every event
   * appended so far is dropped for it (a disabled stream holds nothing). False when it is gone.
   */
  saveStream (stream: StreamRecord, options: { skipPending: boolean }, now: number): Promise<boolean>
  /** Deletes the stream and its state; false when there was none. */
  deleteStream (id: string, clientId: string): Promise<boolean>
  /**
   * Acknowledges, then returns the stream's oldest events that are neither acknowledged nor
   * past `since` nor meant for another stream or type; none while the stream is not enabled.
   * Null when the stream is not live.
   */
  poll (id: string, request: SignalPollRequest): Promise<SignalPollResult | null>
  /** Forgets events appended before `before` (ms) and streams expired at `now`. */
  prune (before: number, now: number): Promise<void>
  /**
   * Calls `listener` after events are appended, by this instance or, for a shared store,
   * another (best effort: it may also be called when nothing new came). Returns the removal.
   */
  onAppend (listener: () => void): () => void
  /**
   * Push delivery: one owner at a time delivers a stream. True when `owner` holds the lease
   * for the next `ttlMs` (taken now, or renewed).
   */
  lease (streamId: string, owner: string, ttlMs: number): Promise<boolean>
  releaseLease (streamId: string, owner: string): Promise<void>
  close (): Promise<void>
}

/** Everything the issuer keeps, behind one object. */
export interface IssuerStores {
  readonly kind: 'memory' | 'redis'
  keys: KeyStore
  refreshTokens: RefreshTokenStore
  codes: CodeStore
  sessions: SessionStore
  consents: ConsentStore
  revocations: RevocationList
  /** Failed sign-ins and client authentications (throttling). */
  authFailures: FailureCounter
  /** The Shared Signals event log and streams. */
  signals: SignalStore
  /** The ioredis client when Redis is used, handed to @fastify/rate-limit (its store contract). */
  readonly redis?: unknown
  /** Readiness: resolves when the backing store answers. */
  ping (): Promise<void>
  close (): Promise<void>
}
