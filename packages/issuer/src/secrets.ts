/**
 * Client secrets and user passwords.
 *
 * Client secrets are generated, high-entropy strings, so a fast salted digest is enough to
 * keep them useless if the config leaks; a password hash (bcrypt, scrypt) there would cap
 * token throughput for no gain. User passwords are low-entropy and get scrypt.
 * Every comparison is constant-time.
 */
import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const b64u = (buf: Buffer): string => buf.toString('base64url')

function sha256 (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** Constant-time string equality (hashing first makes the lengths equal). */
export function safeEqual (a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

/** `sha256$<salt>$<HMAC-SHA256(salt, secret)>`, all base64url. */
export function hashClientSecret (secret: string, salt = b64u(randomBytes(16))): string {
  return `sha256$${salt}$${b64u(createHmac('sha256', salt).update(secret).digest())}`
}

/** A precomputed matcher for one client's secret (clear or hashed in config). */
export function secretMatcher (stored: { secret?: string, secretHash?: string }): (presented: string) => boolean {
  if (stored.secretHash !== undefined) {
    const [, salt = '', digest = ''] = stored.secretHash.split('$')
    const expected = Buffer.from(digest, 'base64url')
    return (presented) => timingSafeEqual(createHmac('sha256', salt).update(presented).digest(), expected)
  }
  if (stored.secret !== undefined) {
    const expected = sha256(stored.secret)
    return (presented) => timingSafeEqual(sha256(presented), expected)
  }
  return () => false
}

/** Generates a client secret: 32 random bytes, base64url. */
export function generateClientSecret (): string {
  return b64u(randomBytes(32))
}

// scrypt, PHC string format: $scrypt$ln=15,r=8,p=1$<salt>$<hash>
const SCRYPT = { ln: 15, r: 8, p: 1, keyLength: 32 }

async function scryptAsync (password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, options, (err, key) => { err === null ? resolve(key) : reject(err) })
  })
}

function scryptOptions (ln: number, r: number, p: number): ScryptOptions {
  const N = 2 ** ln
  return { N, r, p, maxmem: 256 * N * r }
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scryptAsync(password, salt, SCRYPT.keyLength, scryptOptions(SCRYPT.ln, SCRYPT.r, SCRYPT.p))
  return `$scrypt$ln=${SCRYPT.ln},r=${SCRYPT.r},p=${SCRYPT.p}$${b64u(salt)}$${b64u(key)}`
}

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/

/** True when `hash` is a scrypt PHC string we can verify. */
export function isPasswordHash (hash: string): boolean {
  const m = PHC.exec(hash)
  return m !== null && Number(m[1]) >= 10 && Number(m[1]) <= 20
}

/** Verifies a password against a scrypt PHC string, in constant time. */
export async function verifyPassword (password: string, hash: string): Promise<boolean> {
  const m = PHC.exec(hash)
  if (m === null) return false
  const [, ln, r, p, salt, digest] = m
  const expected = Buffer.from(digest ?? '', 'base64url')
  const key = await scryptAsync(password, Buffer.from(salt ?? '', 'base64url'), expected.length, scryptOptions(Number(ln), Number(r), Number(p)))
  return timingSafeEqual(key, expected)
}

/** A fixed hash to verify against for unknown users, so they cost the same time as wrong passwords. */
export const DUMMY_PASSWORD_HASH = '$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
