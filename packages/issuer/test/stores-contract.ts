/**
 * One contract suite per store interface, so the backends cannot drift, run against every backend
 * by stores-memory.test.ts and stores-redis*.test.ts; codes, sessions and consents are in
 * stores-contract-codes.ts and stores-contract-sessions.ts. `makeStore` gets the subtest, so a backend
 * can give each subtest a clean store (a fresh dir, a flushed database).
 */
import type { Test } from 'tap'
import { exportJWK, generateKeyPair } from 'jose'
import type {
  IssuedAccessToken, KeyStore, RefreshFamily, RefreshTokenRecord, RefreshTokenStore,
  SigningKeyRecord
} from '../src/stores/types.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** A clock tests move by hand; stores only ever see `now()`. */
export class TestClock {
  #now = Date.now()
  now (): number { return this.#now }
  advance (ms: number): void { this.#now += ms }
}

/** A real ES256 key pair, generated per run. */
export async function makeKeyRecord (kid: string, now = Date.now()): Promise<SigningKeyRecord> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  return {
    kid,
    alg: 'ES256',
    privateJwk: await exportJWK(privateKey),
    publicJwk: await exportJWK(publicKey),
    createdAt: now,
    activatesAt: now
  }
}

const byKid = (a: SigningKeyRecord, b: SigningKeyRecord): number => a.kid.localeCompare(b.kid)

export function keyStoreContract (t: Test, makeStore: (t: Test) => Promise<KeyStore>): void {
  t.test('addIfEmpty stores the first key only', async (t) => {
    const store = await makeStore(t)
    const [a, b] = await Promise.all([makeKeyRecord('a'), makeKeyRecord('b')])
    t.same(await store.list(), [])
    t.equal(await store.addIfEmpty(a), true)
    t.equal(await store.addIfEmpty(b), false)
    t.same(await store.list(), [a])
  })

  t.test('concurrent addIfEmpty: exactly one is stored', async (t) => {
    const store = await makeStore(t)
    const records = await Promise.all(['k1', 'k2', 'k3', 'k4', 'k5'].map(async (kid) => await makeKeyRecord(kid)))
    const added = await Promise.all(records.map(async (record) => await store.addIfEmpty(record)))
    t.equal(added.filter(Boolean).length, 1)
    t.same(await store.list(), [records[added.indexOf(true)]])
  })

  t.test('add, list and remove', async (t) => {
    const store = await makeStore(t)
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async (kid) => await makeKeyRecord(kid)))
    await store.addIfEmpty(a!)
    await store.add(b!)
    await store.add(c!)
    t.same((await store.list()).sort(byKid), [a, b, c])
    await store.remove([])
    await store.remove(['a', 'unknown'])
    t.same((await store.list()).sort(byKid), [b, c])
    await store.remove(['b', 'c'])
    t.same(await store.list(), [])
    t.equal(await store.addIfEmpty(a!), true, 'empty again once every key is removed')
  })

  t.test('records come back as copies', async (t) => {
    const store = await makeStore(t)
    await store.add(await makeKeyRecord('a'))
    const [listed] = await store.list()
    listed!.activatesAt = 0
    listed!.publicJwk.x = 'changed'
    const [again] = await store.list()
    t.not(again!.activatesAt, 0)
    t.not(again!.publicJwk.x, 'changed')
  })

  t.test('sharedSecret is created once, then always the same', async (t) => {
    const store = await makeStore(t)
    let calls = 0
    const create = (value: string) => () => { calls++; return value }
    t.equal(await store.sharedSecret('cookie', create('first')), 'first')
    t.equal(await store.sharedSecret('cookie', create('second')), 'first')
    t.equal(calls, 1, 'create() is not called once the secret exists')
    t.equal(await store.sharedSecret('csrf-2', create('other')), 'other', 'each name has its own')
    t.equal(await store.sharedSecret('cookie', create('third')), 'first')
    t.same(await store.list(), [], 'secrets are not signing keys')
    t.equal(await store.addIfEmpty(await makeKeyRecord('a')), true, 'and do not make the key store non-empty')
  })

  t.test('concurrent first sharedSecret calls agree on one value', async (t) => {
    const store = await makeStore(t)
    const values = ['s1', 's2', 's3', 's4', 's5']
    const got = await Promise.all(values.map(async (value) => await store.sharedSecret('cookie', () => value)))
    t.equal(new Set(got).size, 1, `all equal: ${got.join(', ')}`)
    t.ok(values.includes(got[0]!))
    t.equal(await store.sharedSecret('cookie', () => 'later'), got[0])
  })

  t.test('sharedSecret refuses bad names and empty secrets', async (t) => {
    const store = await makeStore(t)
    for (const name of ['', 'Cookie', '../x', 'a/b', 'a b', 'a:b', 'a{b}', 'é']) {
      await t.rejects(store.sharedSecret(name, () => 'x'), TypeError, JSON.stringify(name))
    }
    await t.rejects(store.sharedSecret('cookie', () => ''), TypeError, 'empty')
    t.equal(await store.sharedSecret('cookie', () => 'x'), 'x', 'nothing was stored by the refusals')
  })
}

let sequence = 0

function makeFamily (clock: TestClock, ttl = 24 * HOUR, extra: Partial<RefreshFamily> = {}): RefreshFamily {
  return {
    id: `fam-${++sequence}`,
    clientId: 'client-1',
    subject: 'alice',
    scope: 'openid offline_access api:read',
    audience: ['https://api.example'],
    createdAt: clock.now(),
    expiresAt: clock.now() + ttl,
    ...extra
  }
}

function makeToken (family: RefreshFamily, clock: TestClock, ttl = 2 * HOUR): RefreshTokenRecord {
  return { hash: `hash-${++sequence}`, familyId: family.id, issuedAt: clock.now(), expiresAt: clock.now() + ttl }
}

function makeAccessToken (clock: TestClock, ttl = 15 * MINUTE): IssuedAccessToken {
  return { jti: `jti-${++sequence}`, expiresAt: clock.now() + ttl }
}

const byJti = (a: IssuedAccessToken, b: IssuedAccessToken): number => a.jti.localeCompare(b.jti)

export function refreshTokenStoreContract (t: Test, makeStore: (t: Test) => Promise<RefreshTokenStore>, clock: TestClock): void {
  /** A store holding one fresh family, its first token and the access token beside it. */
  async function setup (t: Test, familyTtl?: number, tokenTtl?: number): Promise<{
    store: RefreshTokenStore, family: RefreshFamily, first: RefreshTokenRecord, at: IssuedAccessToken
  }> {
    const store = await makeStore(t)
    const family = makeFamily(clock, familyTtl, { sid: 'sid-1', authTime: clock.now() - MINUTE })
    const first = makeToken(family, clock, tokenTtl)
    const at = makeAccessToken(clock)
    await store.create(family, first, at)
    return { store, family, first, at }
  }

  t.test('create and find', async (t) => {
    const { store, family, first } = await setup(t)
    t.same(await store.find(family.id, first.hash, clock.now()), { family, token: first })
    t.equal(await store.find(family.id, 'unknown', clock.now()), null)
    t.equal(await store.find('unknown', first.hash, clock.now()), null)
    const plain = makeFamily(clock)
    const plainToken = makeToken(plain, clock)
    await store.create(plain, plainToken, makeAccessToken(clock))
    t.same(await store.find(plain.id, plainToken.hash, clock.now()), { family: plain, token: plainToken }, 'without sid')
  })

  t.test('rotate, then reuse of the old token revokes the family', async (t) => {
    const { store, family, first, at } = await setup(t)
    clock.advance(MINUTE)
    const second = makeToken(family, clock)
    const at2 = makeAccessToken(clock)
    t.same(await store.rotate(family.id, first.hash, second, at2, clock.now()), { status: 'rotated', family })
    t.equal(await store.find(family.id, first.hash, clock.now()), null, 'a used token is not live')
    t.same(await store.find(family.id, second.hash, clock.now()), { family, token: second })

    clock.advance(MINUTE)
    const reuse = await store.rotate(family.id, first.hash, makeToken(family, clock), makeAccessToken(clock), clock.now())
    t.equal(reuse.status, 'reused')
    if (reuse.status !== 'reused') return
    t.same(reuse.family, family)
    t.same(reuse.accessTokens.sort(byJti), [at, at2].sort(byJti), 'every unexpired access token of the family')

    t.same(await store.rotate(family.id, second.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' }, 'the live token died with its family')
    t.equal(await store.find(family.id, second.hash, clock.now()), null)
    t.same(await store.rotate(family.id, first.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' }, 'a revoked family answers invalid, not reused')
  })

  t.test('reuse returns only unexpired access tokens', async (t) => {
    const { store, family, first } = await setup(t)
    clock.advance(20 * MINUTE) // the first access token (15 min) has expired
    const at2 = makeAccessToken(clock)
    await store.rotate(family.id, first.hash, makeToken(family, clock), at2, clock.now())
    const reuse = await store.rotate(family.id, first.hash, makeToken(family, clock), makeAccessToken(clock), clock.now())
    t.same(reuse, { status: 'reused', family, accessTokens: [at2] })
  })

  for (const n of [2, 5, 10]) {
    t.test(`${n} concurrent rotations of one token: exactly one rotates`, async (t) => {
      const { store, family, first } = await setup(t)
      const nexts = Array.from({ length: n }, () => makeToken(family, clock))
      const results = await Promise.all(nexts.map(async (next) =>
        await store.rotate(family.id, first.hash, next, makeAccessToken(clock), clock.now())))
      t.equal(results.filter((r) => r.status === 'rotated').length, 1)
      // The first loser is seen as reuse and revokes the family; the rest find it revoked.
      t.equal(results.filter((r) => r.status === 'reused').length, 1)
      t.equal(results.filter((r) => r.status === 'invalid').length, n - 2)
      for (const next of nexts) t.equal(await store.find(family.id, next.hash, clock.now()), null)
    })
  }

  t.test('an expired token is invalid, not reused', async (t) => {
    const { store, family, first } = await setup(t, 24 * HOUR, HOUR)
    const second = makeToken(family, clock, HOUR)
    t.equal((await store.rotate(family.id, first.hash, second, makeAccessToken(clock), clock.now())).status, 'rotated')
    clock.advance(HOUR)
    t.equal(await store.find(family.id, second.hash, clock.now()), null)
    t.same(await store.rotate(family.id, second.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' })
    t.same(await store.rotate(family.id, first.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' }, 'used and expired')
    t.not(await store.revokeFamily(family.id, clock.now()), null, 'the family itself lives on')
  })

  t.test('an expired family takes its tokens with it', async (t) => {
    const { store, family, first } = await setup(t, HOUR, 24 * HOUR)
    const second = makeToken(family, clock, 24 * HOUR)
    t.equal((await store.rotate(family.id, first.hash, second, makeAccessToken(clock), clock.now())).status, 'rotated')
    clock.advance(HOUR)
    t.equal(await store.find(family.id, second.hash, clock.now()), null)
    t.same(await store.rotate(family.id, second.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' })
    t.same(await store.rotate(family.id, first.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' })
    t.equal(await store.revokeFamily(family.id, clock.now()), null)
  })

  t.test('revokeFamily', async (t) => {
    const { store, family, first, at } = await setup(t)
    t.equal(await store.revokeFamily('unknown', clock.now()), null)
    t.same(await store.revokeFamily(family.id, clock.now()), { family, accessTokens: [at] })
    t.equal(await store.find(family.id, first.hash, clock.now()), null)
    t.same(await store.rotate(family.id, first.hash, makeToken(family, clock), makeAccessToken(clock), clock.now()), { status: 'invalid' })
    t.same(await store.revokeFamily(family.id, clock.now()), { family, accessTokens: [at] }, 'revoking again is harmless')
    clock.advance(HOUR)
    t.same(await store.revokeFamily(family.id, clock.now()), { family, accessTokens: [] }, 'expired access tokens are left out')
  })

  t.test('a token filed under another family is refused', async (t) => {
    const { store, family, first } = await setup(t)
    const other = makeFamily(clock)
    await t.rejects(store.rotate(family.id, first.hash, makeToken(other, clock), makeAccessToken(clock), clock.now()), TypeError)
    await t.rejects(store.create(other, makeToken(family, clock), makeAccessToken(clock)), TypeError)
    t.same(await store.find(family.id, first.hash, clock.now()), { family, token: first }, 'nothing changed')
  })
}
