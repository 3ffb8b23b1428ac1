/**
 * The `CodeStore` contract, run against every backend (see stores-contract.ts).
 */
import type { Test } from 'tap'
import { CODE_REPLAY_WINDOW_MS } from '../src/stores/policy.ts'
import type { AuthorizationCodeRecord, CodeIssued, CodeStore } from '../src/stores/types.ts'
import type { TestClock } from './stores-contract.ts'

const MINUTE = 60_000

let sequence = 0

/** A code as the authorization endpoint makes it: one minute of life. */
export function makeCode (clock: TestClock, extra: Partial<AuthorizationCodeRecord> = {}): AuthorizationCodeRecord {
  return {
    hash: `code-hash-${++sequence}`,
    clientId: 'client-1',
    redirectUri: 'https://app.example/cb',
    redirectUriGiven: true,
    subject: 'alice',
    scope: ['openid', 'api:read'],
    audience: ['https://api.example'],
    sid: `sid-${sequence}`,
    authTime: Math.floor(clock.now() / 1000),
    nonce: 'n-0S6_WzA2Mj',
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    createdAt: clock.now(),
    expiresAt: clock.now() + MINUTE,
    ...extra
  }
}

function makeIssued (clock: TestClock, familyId?: string): CodeIssued {
  const issued: CodeIssued = { accessToken: { jti: `jti-${++sequence}`, expiresAt: clock.now() + 15 * MINUTE } }
  if (familyId !== undefined) issued.familyId = familyId
  return issued
}

export function codeStoreContract (t: Test, makeStore: (t: Test) => Promise<CodeStore>, clock: TestClock): void {
  t.test('a code is consumed once, then replayed', async (t) => {
    const store = await makeStore(t)
    const code = makeCode(clock)
    await store.save(code)
    t.same(await store.consume(code.hash, clock.now()), { status: 'ok', code })
    t.same(await store.consume(code.hash, clock.now()), { status: 'replayed', code }, 'nothing issued recorded yet')
    t.same(await store.consume('unknown', clock.now()), { status: 'invalid' })
  })

  t.test('records survive the round trip: empty arrays, no optional fields', async (t) => {
    const store = await makeStore(t)
    const { nonce, codeChallenge, ...bare } = makeCode(clock, { scope: [], audience: [], redirectUriGiven: false })
    await store.save(bare)
    const result = await store.consume(bare.hash, clock.now())
    t.same(result, { status: 'ok', code: bare })
    if (result.status === 'ok') {
      t.ok(Array.isArray(result.code.audience) && Array.isArray(result.code.scope), 'still arrays')
      t.notOk('nonce' in result.code, 'no nonce appears')
    }
  })

  t.test('recordIssued is seen by a replay', async (t) => {
    const store = await makeStore(t)
    const [code, other] = [makeCode(clock), makeCode(clock)]
    await store.save(code)
    await store.save(other)
    t.equal((await store.consume(code.hash, clock.now())).status, 'ok')
    t.equal((await store.consume(other.hash, clock.now())).status, 'ok')
    const issued = makeIssued(clock, 'fam-1')
    await store.recordIssued(code.hash, issued)
    const plain = makeIssued(clock)
    await store.recordIssued(other.hash, plain)
    t.same(await store.consume(code.hash, clock.now()), { status: 'replayed', code, issued })
    t.same(await store.consume(other.hash, clock.now()), { status: 'replayed', code: other, issued: plain }, 'without a family')
  })

  t.test('recordIssued on an unknown code creates nothing', async (t) => {
    const store = await makeStore(t)
    await store.recordIssued('unknown', makeIssued(clock))
    t.same(await store.consume('unknown', clock.now()), { status: 'invalid' })
  })

  for (const n of [2, 5]) {
    t.test(`${n} concurrent consumes of one code: exactly one is ok`, async (t) => {
      const store = await makeStore(t)
      const code = makeCode(clock)
      await store.save(code)
      const results = await Promise.all(Array.from({ length: n }, async () => await store.consume(code.hash, clock.now())))
      t.equal(results.filter((r) => r.status === 'ok').length, 1)
      t.equal(results.filter((r) => r.status === 'replayed').length, n - 1)
    })
  }

  t.test('an unused code expires', async (t) => {
    const store = await makeStore(t)
    const code = makeCode(clock)
    await store.save(code)
    clock.advance(MINUTE - 1)
    const live = makeCode(clock)
    await store.save(live)
    clock.advance(1) // now === code.expiresAt
    t.same(await store.consume(code.hash, clock.now()), { status: 'invalid' })
    t.same(await store.consume(code.hash, clock.now()), { status: 'invalid' }, 'still invalid, never replayed')
    t.equal((await store.consume(live.hash, clock.now())).status, 'ok', 'the other code lives on')
  })

  t.test('a code expired when saved is not stored', async (t) => {
    const store = await makeStore(t)
    const code = makeCode(clock, { expiresAt: clock.now() })
    await store.save(code)
    t.same(await store.consume(code.hash, clock.now() - 1), { status: 'invalid' })
  })

  t.test('a used code is still seen as replayed for a while after it expired', async (t) => {
    const store = await makeStore(t)
    const code = makeCode(clock)
    await store.save(code)
    clock.advance(10_000)
    const usedAt = clock.now()
    t.equal((await store.consume(code.hash, usedAt)).status, 'ok')
    const issued = makeIssued(clock, 'fam-2')
    await store.recordIssued(code.hash, issued)
    clock.advance(2 * MINUTE) // past expiresAt
    t.same(await store.consume(code.hash, clock.now()), { status: 'replayed', code, issued })
    t.same(await store.consume(code.hash, usedAt + CODE_REPLAY_WINDOW_MS - 1), { status: 'replayed', code, issued }, 'until the window ends')
    t.same(await store.consume(code.hash, usedAt + CODE_REPLAY_WINDOW_MS), { status: 'invalid' }, 'then it is forgotten')
  })

  t.test('codes come back as copies', async (t) => {
    const store = await makeStore(t)
    const code = makeCode(clock)
    await store.save(code)
    code.scope.push('admin')
    const result = await store.consume(code.hash, clock.now())
    if (result.status !== 'ok') return t.fail(result.status)
    t.same(result.code.scope, ['openid', 'api:read'], 'the caller changing its record changes nothing stored')
    result.code.audience.push('https://evil.example')
    const replay = await store.consume(code.hash, clock.now())
    if (replay.status !== 'replayed') return t.fail(replay.status)
    t.same(replay.code.audience, ['https://api.example'])
  })
}
