/**
 * Rules every backend applies the same way, so the memory and Redis stores cannot drift apart.
 */

/**
 * How long a used authorization code is remembered after its first use, at least (longer
 * when it has not expired yet). A code lives about a minute, so a replay often comes after it
 * expired; within this window it still answers 'replayed', not 'invalid', and the tokens of
 * the first exchange can be revoked (RFC 6749 4.1.2: "SHOULD revoke"). Past it, a replayed
 * code is just unknown.
 */
export const CODE_REPLAY_WINDOW_MS = 10 * 60_000

/** Lower-case letters, digits and `-`: safe as a file name and a Redis key part as they are. */
const SECRET_NAME = /^[a-z0-9-]+$/

export function checkSecretName (name: string): void {
  if (!SECRET_NAME.test(name)) throw new TypeError(`shared secret name must match ${String(SECRET_NAME)}, got ${JSON.stringify(name)}`)
}

/** Calls `create`; an empty secret would be kept for good, so it is refused. */
export function newSecret (create: () => string): string {
  const value = create()
  if (typeof value !== 'string' || value === '') throw new TypeError('shared secret: create() must return a non-empty string')
  return value
}

/** A consent must last some time: Redis cannot hold a key with a TTL of 0. */
export function checkConsentTtl (ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs < 1) throw new TypeError(`consent ttlMs must be at least 1, got ${ttlMs}`)
}
