/**
 * The contract of `FailureCounter` (sign-in and client authentication failures), run against
 * every backend by stores-memory.test.ts and stores-redis*.test.ts.
 */
import type { Test } from 'tap'
import type { FailureCounter } from '../src/stores/types.ts'
import type { TestClock } from './stores-contract.ts'

const MINUTE = 60_000

export function failureCounterContract (t: Test, makeStore: (t: Test) => Promise<FailureCounter>, clock: TestClock): void {
  t.test('counts in a window that opens at the first failure and keeps its end', async (t) => {
    const store = await makeStore(t)
    const opened = clock.now()
    t.equal(await store.get('username', 'alice', clock.now()), null, 'nothing counted yet')
    t.same(await store.add('username', 'alice', 5 * MINUTE, clock.now()), { count: 1, resetAt: opened + 5 * MINUTE })
    clock.advance(MINUTE)
    t.same(await store.add('username', 'alice', 5 * MINUTE, clock.now()), { count: 2, resetAt: opened + 5 * MINUTE }, 'a later failure does not move the end')
    t.same(await store.get('username', 'alice', clock.now()), { count: 2, resetAt: opened + 5 * MINUTE })
    clock.advance(4 * MINUTE)
    t.equal(await store.get('username', 'alice', clock.now()), null, 'the window has ended (even if Redis has not dropped the key yet)')
    t.same(await store.add('username', 'alice', 5 * MINUTE, clock.now()), { count: 1, resetAt: clock.now() + 5 * MINUTE }, 'the next failure opens a new window')
  })

  t.test('kinds and ids are counted apart', async (t) => {
    const store = await makeStore(t)
    const now = clock.now()
    await store.add('username', 'alice', MINUTE, now)
    await store.add('username', 'alice', MINUTE, now)
    await store.add('login-ip', 'alice', MINUTE, now)
    await store.add('client', 'c:1', MINUTE, now)
    await store.add('client-ip', '::ffff:127.0.0.1', MINUTE, now)
    t.equal((await store.get('username', 'alice', now))?.count, 2)
    t.equal((await store.get('login-ip', 'alice', now))?.count, 1)
    t.equal((await store.get('client', 'c:1', now))?.count, 1)
    t.equal(await store.get('client', 'c', now), null)
    t.equal((await store.get('client-ip', '::ffff:127.0.0.1', now))?.count, 1)
    t.equal(await store.get('username', 'Alice', now), null, 'ids are compared exactly (callers normalise)')
    t.equal(await store.get('username', 'we{ir}d', now), null)
  })

  t.test('clear forgets one id only', async (t) => {
    const store = await makeStore(t)
    const now = clock.now()
    await store.add('username', 'alice', MINUTE, now)
    await store.add('username', 'bob', MINUTE, now)
    await store.clear('username', 'alice')
    await store.clear('username', 'nobody')
    t.equal(await store.get('username', 'alice', now), null)
    t.equal((await store.get('username', 'bob', now))?.count, 1)
    t.same(await store.add('username', 'alice', MINUTE, now), { count: 1, resetAt: now + MINUTE })
  })

  t.test('concurrent failures are each counted once', async (t) => {
    const store = await makeStore(t)
    const now = clock.now()
    const counts = await Promise.all(Array.from({ length: 25 }, async () => (await store.add('client', 'gateway', MINUTE, now)).count))
    t.same(counts.sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i + 1), 'every add sees its own count')
    t.equal((await store.get('client', 'gateway', now))?.count, 25)
  })

  t.test('counts come back as copies', async (t) => {
    const store = await makeStore(t)
    const now = clock.now()
    const added = await store.add('username', 'alice', MINUTE, now)
    added.count = 100
    const read = await store.get('username', 'alice', now)
    read!.resetAt = 0
    t.same(await store.get('username', 'alice', now), { count: 1, resetAt: now + MINUTE })
  })
}
