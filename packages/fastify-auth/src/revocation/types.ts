/**
 * The revocation-list contract, owned by the auth plugin and shared with the issuer,
 * which imports the writer from `@gatehouse/fastify-auth/revocation`.
 */

/** What gets revoked: one access token by `jti`, or every token of an SSO session by `sid`. */
export interface RevocationEntry {
  jti?: string
  sid?: string
}

export interface RevocationList {
  /** Writes the entry for `ttlSeconds` (the longest any affected token can still live). */
  revoke (entry: RevocationEntry, ttlSeconds: number): Promise<void>
  /** Answered from the local mirror: no network round trip. */
  isRevoked (claims: { jti?: string, sid?: string }): boolean
  /** Milliseconds since the mirror last heard from its source (0 for the in-memory list). */
  readonly staleness: number
  /** Number of live entries in the mirror. */
  readonly size: number
  /**
   * Revocations this instance holds but the shared store has not taken yet (queued while it
   * was unreachable or too slow); undefined for a list without a shared store.
   */
  readonly pendingWrites?: number
  /**
   * Entries this instance wrote back into the shared store after it lost them (Redis restarted
   * empty, flushed, failed over); undefined for a list without a shared store.
   */
  readonly writtenBack?: number
  /**
   * Calls `listener` for every key change announced on the list's channel (the Redis list:
   * the issuer announces on the revocation channel). Absent on lists without a channel.
   */
  onKeyChange?: (listener: (change: KeyChange) => void) => void
  /** Announces a key change to every instance listening (the issuer, the `keys` CLI). */
  announceKeyChange?: (change: KeyChange) => Promise<void>
  /** Resolves once the mirror holds a full copy of the list. */
  ready (): Promise<void>
  close (): Promise<void>
}

/**
 * A change of the issuer's signing keys, as announced: a key `published` in the JWKS, one that
 * `activated` (signs from now), one `retired` (left the JWKS after its last token expired), one
 * `revoked` (left the JWKS at once: an emergency rollover after a leak).
 */
export interface KeyChange {
  change: 'published' | 'activated' | 'retired' | 'revoked'
  kid: string
}

/** Time source, injected so tests can move it. Same shape as the issuer's. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now (): number
}

/** The subset of a pino logger the revocation lists use. */
export interface RevocationLog {
  warn (obj: object, msg: string): void
}
