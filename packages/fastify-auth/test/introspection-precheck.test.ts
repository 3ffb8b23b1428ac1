/**
 * Routes with `validation: 'introspect'` check a token's shape before asking the issuer, and
 * keep refusals in a small cache of their own: garbage costs the issuer nothing, and a bad
 * token repeated costs it one request. Counted at the stand-in issuer's endpoint.
 */
import t, { type Test } from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { AuthError, TokenVerifier, type IntrospectionOptions } from '../src/index.ts'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { INTROSPECTION_CLIENT, startIssuer } from './fixtures/issuer.ts'

const issuer = await startIssuer()
await issuer.addKey('ES256')
t.teardown(async () => await issuer.close())

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const unsigned = (payload: Record<string, unknown>): string => `${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64(payload)}.${randomBytes(64).toString('base64url')}`
const now = (): number => Math.floor(Date.now() / 1000)

/** 30 tokens no issuer could call active, different on every run. */
function garbage (): string[] {
  const out: string[] = []
  for (let i = 0; i < 10; i++) out.push(randomBytes(randomInt(1, 80)).toString('base64url')) // opaque-looking
  for (let i = 0; i < 8; i++) out.push([1, 2, 3].map(() => randomBytes(randomInt(1, 40)).toString('base64url')).join('.')) // JWT-shaped
  for (let i = 0; i < 4; i++) out.push(unsigned({ iss: `https://evil-${i}.example`, exp: now() + 300, sub: 'x' }))
  for (let i = 0; i < 4; i++) out.push(unsigned({ iss: issuer.url, exp: now() - 60 - i, sub: 'x' }))
  out.push(unsigned({ iss: issuer.url, sub: 'no exp' }))
  out.push(`${b64('not json')}.${b64({ iss: issuer.url, exp: now() + 300 })}.sig`)
  out.push(`${b64({ typ: 'at+jwt' })}.${b64({ iss: issuer.url, exp: now() + 300 })}.sig`)
  out.push(`${b64({ alg: 'ES256' })}.${b64([issuer.url])}.sig`)
  return out
}

function verifier (t: Test, introspection: Partial<IntrospectionOptions> = {}): TokenVerifier {
  const revocations = new MemoryRevocationList()
  const v = new TokenVerifier({ issuer: issuer.url, revocations, introspection: { ...INTROSPECTION_CLIENT, ...introspection } })
  t.teardown(async () => { await v.close(); await revocations.close() })
  return v
}

const refusal = async (v: TokenVerifier, token: string): Promise<string> => {
  const err = await v.verify(token, { validation: 'introspect' }).then(() => undefined, (e: unknown) => e)
  return err instanceof AuthError ? err.reason : `not refused: ${String(err)}`
}

t.test('30 random strings cost no introspection request', async (t) => {
  const v = verifier(t)
  const before = issuer.hits.introspection
  const reasons = new Set<string>()
  for (const token of garbage()) reasons.add(await refusal(v, token))
  t.equal(issuer.hits.introspection, before, 'the issuer was not asked')
  t.same([...reasons].sort(), ['bad_issuer', 'expired', 'malformed', 'missing_claim'])
  const good = await issuer.sign()
  t.equal((await v.verify(good, { validation: 'introspect' })).sub, 'alice', 'a real token still passes')
  t.equal(issuer.hits.introspection, before + 1)
})

t.test('a well-formed token the issuer refuses is asked about once', async (t) => {
  const v = verifier(t)
  const token = await issuer.sign()
  issuer.inactive.add(token)
  const before = issuer.hits.introspection
  for (let i = 0; i < 10; i++) t.equal(await refusal(v, token), 'inactive')
  t.equal(issuer.hits.introspection, before + 1, 'the refusal was cached')
})

t.test('opaque tokens, when allowed: 22 characters or more; refusals cached, in a bounded cache', async (t) => {
  const v = verifier(t, { opaqueTokens: true, negativeCacheSize: 2 })
  const before = issuer.hits.introspection
  t.equal(await refusal(v, randomBytes(15).toString('base64url')), 'malformed', '20 characters: too short to be random enough')
  t.equal(issuer.hits.introspection, before)
  const [a, b, c] = [1, 2, 3].map(() => randomBytes(32).toString('base64url'))
  for (const token of [a, a, b, b, a]) t.equal(await refusal(v, token ?? ''), 'inactive')
  t.equal(issuer.hits.introspection, before + 2, 'one request per distinct opaque token')
  await refusal(v, c ?? '')
  t.equal(issuer.hits.introspection, before + 3)
  await refusal(v, a ?? '')
  t.equal(issuer.hits.introspection, before + 4, 'the oldest refusal was evicted (two kept)')
})

t.test('options are checked', async (t) => {
  t.throws(() => verifier(t, { opaqueTokens: 'yes' as unknown as boolean }), /options\.introspection\.opaqueTokens must be a boolean/)
  t.throws(() => verifier(t, { negativeCacheSize: -1 }), /options\.introspection\.negativeCacheSize/)
})
