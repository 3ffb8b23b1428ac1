/**
 * Signing keys: generated on first start, shared through the KeyStore, rotated with a delay.
 *
 * - The signing key is the newest key whose `activatesAt` has passed.
 * - Every key is published in the JWKS from the moment it is stored, so caches learn a new
 *   key before anything is signed with it.
 * - A superseded key stays published until the last token it can have signed has expired
 *   (`retention` after it stopped signing), then it is pruned from the store.
 * - A revoked key (`rotate({ now, revokePrevious })`, after a leak) leaves the JWKS at once and
 *   never signs or verifies again; its record stays in the store for good, marked and without
 *   its private part, so every instance (and a restored store) knows it.
 * - Every re-read compares what is published and what signs with the last re-read, and tells
 *   `onChange` listeners (the issuer announces it to the gateways: Redis, Shared Signals).
 */
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose'
import type { KeyChange } from '@gatehouse/fastify-auth/revocation'
import type { Clock } from '../clock.ts'
import type { KeyStore, SigningAlgorithm, SigningKeyRecord } from '../stores/types.ts'
import { compactSigner, type CompactSigner } from '../tokens/jws.ts'

export type ActiveKey = CompactSigner

export interface KeyManagerOptions {
  store: KeyStore
  clock: Clock
  algorithm: SigningAlgorithm
  /** ms between `rotate()` and signing with the new key. */
  activationDelay: number
  /** ms a superseded key stays published: the longest lifetime of anything it signs. */
  retention: number
  /** ms between re-reads of the store. */
  refreshInterval: number
}

/** Generates a key record (kid: random, alg and use in the public JWK). */
export async function generateKeyRecord (alg: SigningAlgorithm, now: number, activatesAt = now): Promise<SigningKeyRecord> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) })
  const kid = randomUUID()
  const publicJwk: JWK = { ...await exportJWK(publicKey), kid, alg, use: 'sig' }
  const privateJwk: JWK = { ...await exportJWK(privateKey), kid, alg }
  return { kid, alg, privateJwk, publicJwk, createdAt: now, activatesAt }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

export class KeyManager {
  readonly #opts: KeyManagerOptions
  #records: SigningKeyRecord[] = []
  #signing: ActiveKey | undefined
  /** When the next pending key starts signing (Infinity when none is pending). */
  #nextActivation = Infinity
  readonly #verifyKeys = new Map<string, { alg: SigningAlgorithm, key: Promise<CryptoKey> }>()
  #jwks = '{"keys":[]}'
  #timer: NodeJS.Timeout | undefined
  #loaded = false
  /** Revoked records still in the store (for describe()). */
  #revoked: SigningKeyRecord[] = []
  readonly #listeners: Array<(changes: KeyChange[]) => void> = []
  #reloading: Promise<void> | undefined
  #isReloadWanted = false

  constructor (options: KeyManagerOptions) {
    this.#opts = options
  }

  /** Loads the keys (creating the first one if the store is empty) and starts re-reading. */
  async start (): Promise<void> {
    await this.reload()
    if (this.#records.length === 0) {
      await this.#opts.store.addIfEmpty(await generateKeyRecord(this.#opts.algorithm, this.#opts.clock.now()))
      await this.reload()
    }
    this.#timer = setInterval(() => { this.reload().catch(() => { /* keep serving cached keys; readiness reports the store */ }) }, this.#opts.refreshInterval)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  get isLoaded (): boolean {
    return this.#loaded && this.#signing !== undefined
  }

  /** Calls `listener` with what changed at each re-read that changed anything (never the first). */
  onChange (listener: (changes: KeyChange[]) => void): void {
    this.#listeners.push(listener)
  }

  /**
   * Re-reads the store: picks the signing key, rebuilds the JWKS, prunes expired retired and
   * revoked keys, and reports what changed. Calls arriving during a re-read share the next one.
   */
  async reload (): Promise<void> {
    this.#isReloadWanted = true
    this.#reloading ??= (async () => {
      try {
        while (this.#isReloadWanted) {
          this.#isReloadWanted = false
          await this.#reload()
        }
      } finally {
        this.#reloading = undefined
      }
    })()
    await this.#reloading
  }

  async #reload (): Promise<void> {
    const now = this.#opts.clock.now()
    let stored = await this.#opts.store.list()
    if (stored.length === 0 && this.#records.length > 0) {
      // The store lost its data (Redis restarted without persistence): put back the keys we
      // hold, or the JWKS would go empty while tokens signed with them are still live.
      for (const record of [...this.#records, ...this.#revoked]) await this.#opts.store.add(record)
      stored = await this.#opts.store.list()
    }
    const sorted = stored.sort((a, b) => a.activatesAt - b.activatesAt || a.createdAt - b.createdAt)
    const revoked = sorted.filter((r) => r.revokedAt !== undefined)
    const records = sorted.filter((r) => r.revokedAt === undefined)
    const active = records.filter((r) => r.activatesAt <= now)
    const current = active.at(-1)
    // A key stops signing when the next key activates; it is published until `retention` later.
    const expired = active.slice(0, -1).filter((r, i) => (active[i + 1]?.activatesAt ?? Infinity) + this.#opts.retention <= now)
    // A revoked key's record stays for good (its private part is gone): whoever holds the leaked
    // key can still sign, so no instance, backup or stale JWKS may ever list it again.
    if (expired.length > 0) await this.#opts.store.remove(expired.map((r) => r.kid))
    const expiredKids = new Set(expired.map((r) => r.kid))
    const before = { published: new Set(this.#records.map((r) => r.kid)), signing: this.#signing?.kid, wasLoaded: this.#loaded }
    this.#records = records.filter((r) => !expiredKids.has(r.kid))
    this.#revoked = revoked
    this.#nextActivation = records.find((r) => r.activatesAt > now)?.activatesAt ?? Infinity
    this.#jwks = JSON.stringify({ keys: [...this.#records].reverse().map((r) => publicOnly(r.publicJwk)) })
    for (const kid of this.#verifyKeys.keys()) if (!this.#records.some((r) => r.kid === kid)) this.#verifyKeys.delete(kid)
    // A signing key that was revoked is never used again, even when the key meant to follow it is
    // not active yet by this clock (a rollover made on a machine whose clock is ahead).
    const signingGone = this.#signing !== undefined && !this.#records.some((r) => r.kid === this.#signing?.kid)
    const next = current ?? (signingGone ? this.#records[0] : undefined)
    if (next !== undefined && next.kid !== this.#signing?.kid) {
      this.#signing = compactSigner(next.kid, next.alg, next.privateJwk)
    } else if (next === undefined && signingGone) {
      this.#signing = undefined
    }
    this.#loaded = true
    if (before.wasLoaded) this.#report(before.published, before.signing, new Set(revoked.map((r) => r.kid)))
  }

  #report (published: ReadonlySet<string>, signing: string | undefined, revoked: ReadonlySet<string>): void {
    const changes: KeyChange[] = []
    const now = new Set(this.#records.map((r) => r.kid))
    for (const kid of now) if (!published.has(kid)) changes.push({ change: 'published', kid })
    if (this.#signing !== undefined && this.#signing.kid !== signing) changes.push({ change: 'activated', kid: this.#signing.kid })
    for (const kid of published) if (!now.has(kid)) changes.push({ change: revoked.has(kid) ? 'revoked' : 'retired', kid })
    if (changes.length === 0) return
    for (const listener of this.#listeners) listener(changes)
  }

  /** The key to sign with now. Switches to a pending key the moment it activates. */
  async signingKey (): Promise<ActiveKey> {
    if (this.#opts.clock.now() >= this.#nextActivation) await this.reload()
    if (this.#signing === undefined) throw new Error('no signing key loaded')
    return this.#signing
  }

  /** Public key for a kid we published (introspection, revocation of our own tokens). */
  async verificationKey (kid: string): Promise<{ alg: SigningAlgorithm, key: CryptoKey } | undefined> {
    let entry = this.#verifyKeys.get(kid)
    if (entry === undefined) {
      const record = this.#records.find((r) => r.kid === kid)
      if (record === undefined) return undefined
      entry = { alg: record.alg, key: importJWK(publicOnly(record.publicJwk), record.alg) as Promise<CryptoKey> }
      this.#verifyKeys.set(kid, entry)
    }
    return { alg: entry.alg, key: await entry.key }
  }

  /** The JWKS document, serialized once per reload. */
  get jwks (): string {
    return this.#jwks
  }

  /**
   * Publishes a new key. Planned: it signs after the activation delay. `now`: it signs at once.
   * `revokePrevious` (with `now` only): every other key is revoked, out of the JWKS at once.
   * Returns the new key (describe() lists the revoked ones).
   */
  async rotate (options: { now?: boolean, revokePrevious?: boolean } = {}): Promise<SigningKeyRecord> {
    if (options.revokePrevious === true && options.now !== true) throw new Error('revoking the previous keys needs a key that signs now')
    const now = this.#opts.clock.now()
    const record = await generateKeyRecord(this.#opts.algorithm, now, options.now === true ? now : now + this.#opts.activationDelay)
    // The new key first: at no moment is there nothing to sign with.
    await this.#opts.store.add(record)
    if (options.revokePrevious === true) {
      for (const r of await this.#opts.store.list()) {
        if (r.kid === record.kid || r.revokedAt !== undefined) continue
        await this.#opts.store.add({ ...r, privateJwk: {}, revokedAt: now })
      }
    }
    await this.reload()
    return record
  }

  /** kid, alg and timing of every stored key, revoked ones included (for the CLI). */
  describe (): Array<{ kid: string, alg: string, createdAt: number, activatesAt: number, revokedAt?: number }> {
    return [...this.#records, ...this.#revoked].map(({ kid, alg, createdAt, activatesAt, revokedAt }) => ({ kid, alg, createdAt, activatesAt, ...(revokedAt === undefined ? {} : { revokedAt }) }))
  }
}

/** Never publish a private member, whatever the stored record holds. */
function publicOnly (jwk: JWK): JWK {
  const copy: Record<string, unknown> = { ...jwk }
  for (const member of PRIVATE_MEMBERS) delete copy[member]
  return copy as JWK
}

/** The key manager for an issuer config: retention covers the longest-lived token it signs. */
export function keyManagerFor (
  config: { keys: { algorithm: SigningAlgorithm, activationDelay: number, refreshInterval: number }, tokens: { accessTokenTtl: number, idTokenTtl: number }, clients: ReadonlyArray<{ accessTokenTtl?: number }> },
  store: KeyStore,
  clock: Clock
): KeyManager {
  const longest = Math.max(config.tokens.accessTokenTtl, config.tokens.idTokenTtl, ...config.clients.map((c) => c.accessTokenTtl ?? 0))
  return new KeyManager({
    store,
    clock,
    algorithm: config.keys.algorithm,
    activationDelay: config.keys.activationDelay * 1000,
    retention: longest * 1000,
    refreshInterval: config.keys.refreshInterval * 1000
  })
}

/** A gateway's default background key refresh (its `auth.jwksRefreshInterval`), seconds. */
export const GATEWAY_KEY_REFRESH_S = 60

/**
 * What `check` and the start log warn about: a planned rotation faster than a gateway that hears
 * no announcements refreshes its keys.
 */
export function keyWarnings (config: { keys: { activationDelay: number } }): string[] {
  const delay = config.keys.activationDelay
  if (delay >= GATEWAY_KEY_REFRESH_S) return []
  return [`keys.activationDelay (${delay} s) is shorter than a gateway's default key refresh (auth.jwksRefreshInterval, ${GATEWAY_KEY_REFRESH_S} s): gateways that hear key announcements (Redis, or a Shared Signals stream) take a new key at once, others may refuse its first tokens for up to their jwksCooldown (30 s); keep it at ${GATEWAY_KEY_REFRESH_S} or more unless every gateway listens`]
}
