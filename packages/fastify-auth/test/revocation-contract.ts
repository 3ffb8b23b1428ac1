/**
 * The one contract suite for `RevocationList`, run against every store, so they cannot drift.
 * Not a test file itself: `revocation-memory.test.ts` and `revocation-redis.test.ts` call it.
 */
import type { Test } from 'tap'
import type { Clock, RevocationList } from '../src/revocation/index.ts'

/** A clock tests move by hand. Starts at a fixed instant with a sub-second part on purpose. */
export class TestClock implements Clock {
  #now: number
  constructor (start = 1_700_000_000_250) { this.#now = start }
  now (): number { return this.#now }
  advance (ms: number): void { this.#now += ms }
}

/** Builds a fresh, empty, ready list on the given clock; the suite closes it. */
export type CreateList = (clock: TestClock) => Promise<RevocationList>

export function revocationContract (t: Test, store: string, create: CreateList): void {
  async function setup (t: Test): Promise<{ list: RevocationList, clock: TestClock }> {
    const clock = new TestClock()
    const list = await create(clock)
    t.teardown(async () => await list.close())
    await list.ready()
    return { list, clock }
  }

  t.test(`${store}: a revoked jti is revoked, other tokens are not`, async (t) => {
    const { list } = await setup(t)
    t.equal(list.isRevoked({ jti: 'a' }), false, 'nothing revoked yet')
    await list.revoke({ jti: 'a' }, 60)
    t.equal(list.isRevoked({ jti: 'a' }), true)
    t.equal(list.isRevoked({ jti: 'a', sid: 's1' }), true, 'whatever its session')
    t.equal(list.isRevoked({ jti: 'b' }), false)
    t.equal(list.isRevoked({ jti: 'b', sid: 'a' }), false, 'a jti entry is not a sid entry')
    t.equal(list.isRevoked({}), false)
  })

  t.test(`${store}: a revoked sid revokes every token of that session`, async (t) => {
    const { list } = await setup(t)
    await list.revoke({ sid: 's1' }, 60)
    t.equal(list.isRevoked({ jti: 'x', sid: 's1' }), true)
    t.equal(list.isRevoked({ jti: 'y', sid: 's1' }), true)
    t.equal(list.isRevoked({ jti: 'x', sid: 's2' }), false, 'other sessions keep working')
    t.equal(list.isRevoked({ jti: 's1' }), false, 'a sid entry is not a jti entry')
    t.equal(list.isRevoked({ jti: 'z' }), false, 'a token without sid')
  })

  t.test(`${store}: one entry can carry a jti and a sid`, async (t) => {
    const { list } = await setup(t)
    await list.revoke({ jti: 'j1', sid: 's1' }, 60)
    t.equal(list.isRevoked({ jti: 'j1' }), true)
    t.equal(list.isRevoked({ jti: 'other', sid: 's1' }), true)
    t.equal(list.size, 2)
  })

  t.test(`${store}: entries expire after their ttl`, async (t) => {
    const { list, clock } = await setup(t)
    await list.revoke({ jti: 'j1' }, 60)
    await list.revoke({ sid: 's1' }, 120)
    clock.advance(59_999)
    t.equal(list.isRevoked({ jti: 'j1' }), true, 'still live 1 ms before expiry')
    clock.advance(1)
    t.equal(list.isRevoked({ jti: 'j1' }), false, 'expired at now + ttl')
    t.equal(list.isRevoked({ jti: 'x', sid: 's1' }), true, 'the longer entry lives on')
    t.equal(list.size, 1)
    clock.advance(60_000)
    t.equal(list.isRevoked({ jti: 'x', sid: 's1' }), false)
    t.equal(list.size, 0)
  })

  t.test(`${store}: a second revoke extends an entry, never shortens it`, async (t) => {
    const { list, clock } = await setup(t)
    await list.revoke({ jti: 'j1' }, 60)
    await list.revoke({ jti: 'j1' }, 10)
    clock.advance(30_000)
    t.equal(list.isRevoked({ jti: 'j1' }), true, 'the shorter ttl did not win')
    await list.revoke({ jti: 'j1' }, 60)
    clock.advance(59_000)
    t.equal(list.isRevoked({ jti: 'j1' }), true, 'extended to the new expiry')
    t.equal(list.size, 1, 'one id is one entry')
  })

  t.test(`${store}: size counts live entries`, async (t) => {
    const { list, clock } = await setup(t)
    t.equal(list.size, 0)
    for (let i = 0; i < 50; i++) await list.revoke({ jti: `j${i}` }, i < 20 ? 10 : 100)
    await list.revoke({ sid: 's1' }, 100)
    t.equal(list.size, 51)
    clock.advance(10_000)
    t.equal(list.size, 31, 'the 20 short entries are gone')
  })

  t.test(`${store}: bad arguments`, async (t) => {
    const { list } = await setup(t)
    await t.rejects(list.revoke({}, 60), TypeError, 'neither jti nor sid')
    await t.rejects(list.revoke({ jti: '' }, 60), TypeError, 'an empty id is no id')
    await t.rejects(list.revoke({ jti: 'a' }, Number.NaN), RangeError)
    await list.revoke({ jti: 'expired' }, 0)
    t.equal(list.isRevoked({ jti: 'expired' }), false, 'ttl <= 0: an expired token needs no entry')
    t.equal(list.size, 0)
  })

  t.test(`${store}: staleness is a small finite number once ready`, async (t) => {
    const { list } = await setup(t)
    t.ok(Number.isFinite(list.staleness) && list.staleness >= 0 && list.staleness < 1000, `${list.staleness}`)
  })
}
