/**
 * The `SessionStore` and `ConsentStore` contracts, run against every backend (see
 * stores-contract.ts).
 */
import type { Test } from 'tap'
import type { ConsentStore, SessionRecord, SessionStore } from '../src/stores/types.ts'
import type { TestClock } from './stores-contract.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

let sequence = 0

export function makeSession (clock: TestClock, ttl = 8 * HOUR): SessionRecord {
  return {
    sid: `sid-${++sequence}-${Math.random().toString(36).slice(2)}`,
    subject: 'alice',
    authTime: Math.floor(clock.now() / 1000),
    createdAt: clock.now(),
    expiresAt: clock.now() + ttl
  }
}

const sorted = (values: string[] | undefined): string[] | undefined => values?.slice().sort()

export function sessionStoreContract (t: Test, makeStore: (t: Test) => Promise<SessionStore>, clock: TestClock): void {
  t.test('create, get, end', async (t) => {
    const store = await makeStore(t)
    const session = makeSession(clock)
    await store.create(session)
    t.same(await store.get(session.sid, clock.now()), session)
    t.equal(await store.get('unknown', clock.now()), null)
    t.same(await store.end(session.sid), { session, clients: [], families: [] })
    t.equal(await store.get(session.sid, clock.now()), null, 'gone once ended')
    t.equal(await store.end(session.sid), null, 'ending again is harmless')
    t.equal(await store.end('unknown'), null)
  })

  t.test('clients and families are remembered, once each', async (t) => {
    const store = await makeStore(t)
    const [session, other] = [makeSession(clock), makeSession(clock)]
    await store.create(session)
    await store.create(other)
    await store.addClient(session.sid, 'client-1')
    await store.addClient(session.sid, 'client:2 {x}')
    await store.addClient(session.sid, 'client-1')
    await store.addFamily(session.sid, 'fam-1')
    await store.addFamily(session.sid, 'fam-2')
    await store.addClient(other.sid, 'client-3')
    t.same(await store.get(session.sid, clock.now()), session, 'get is unchanged by them')
    const ended = await store.end(session.sid)
    t.same(ended?.session, session)
    t.same(sorted(ended?.clients), ['client-1', 'client:2 {x}'])
    t.same(sorted(ended?.families), ['fam-1', 'fam-2'])
    t.same(await store.end(other.sid), { session: other, clients: ['client-3'], families: [] }, 'sessions are separate')
  })

  t.test('adding to an unknown or ended session creates nothing', async (t) => {
    const store = await makeStore(t)
    await store.addClient('unknown', 'client-1')
    t.equal(await store.addFamily('unknown', 'fam-1'), false, 'addFamily says it was not recorded')
    t.equal(await store.get('unknown', clock.now()), null)
    t.equal(await store.end('unknown'), null)
    const session = makeSession(clock)
    await store.create(session)
    t.equal(await store.addFamily(session.sid, 'fam-1'), true)
    await store.end(session.sid)
    await store.addClient(session.sid, 'client-1')
    t.equal(await store.addFamily(session.sid, 'fam-2'), false, 'an ended session takes no family')
    t.equal(await store.end(session.sid), null)
  })

  t.test('an ended session is marked ended for the rest of its lifetime; an expired one is not', async (t) => {
    const store = await makeStore(t)
    const [ended, expired] = [makeSession(clock, HOUR), makeSession(clock, HOUR)]
    await store.create(ended)
    await store.create(expired)
    t.equal(await store.hasEnded(ended.sid), false, 'live')
    t.equal(await store.hasEnded('unknown'), false, 'unknown')
    await store.end(ended.sid)
    t.equal(await store.hasEnded(ended.sid), true, 'ended')
    t.equal(await store.get(ended.sid, clock.now()), null)
    clock.advance(HOUR)
    t.equal(await store.get(expired.sid, clock.now()), null, 'expired')
    t.equal(await store.hasEnded(expired.sid), false, 'an expired session was not ended')
  })

  t.test('addFamily racing end: every family is either returned by end or refused', async (t) => {
    const store = await makeStore(t)
    for (let round = 0; round < 20; round++) {
      const session = makeSession(clock)
      await store.create(session)
      const adds = Array.from({ length: 6 }, async (_, i) => await store.addFamily(session.sid, `fam-${i}`))
      const [ended, ...added] = await Promise.all([store.end(session.sid), ...adds])
      const recorded = added.flatMap((ok, i) => ok ? [`fam-${i}`] : [])
      t.same(sorted(ended?.families), sorted(recorded), `round ${round}`)
    }
  })

  t.test('concurrent ends: exactly one gets the session', async (t) => {
    const store = await makeStore(t)
    const session = makeSession(clock)
    await store.create(session)
    await store.addClient(session.sid, 'client-1')
    const results = await Promise.all(Array.from({ length: 5 }, async () => await store.end(session.sid)))
    const winners = results.filter((r) => r !== null)
    t.equal(winners.length, 1)
    t.same(winners[0], { session, clients: ['client-1'], families: [] })
  })

  t.test('a session expires', async (t) => {
    const store = await makeStore(t)
    const session = makeSession(clock, HOUR)
    await store.create(session)
    clock.advance(HOUR - 1)
    t.same(await store.get(session.sid, clock.now()), session)
    clock.advance(1)
    t.equal(await store.get(session.sid, clock.now()), null)
  })

  t.test('a session expired when created is not stored', async (t) => {
    const store = await makeStore(t)
    const session = makeSession(clock, 0)
    await store.create(session)
    t.equal(await store.get(session.sid, clock.now() - 1), null)
    t.equal(await store.end(session.sid), null)
  })

  t.test('create replaces a session with the same sid', async (t) => {
    const store = await makeStore(t)
    const session = makeSession(clock)
    await store.create(session)
    await store.addClient(session.sid, 'client-1')
    const again = { ...session, subject: 'bob' }
    await store.create(again)
    t.same(await store.end(session.sid), { session: again, clients: [], families: [] })
  })
}

export function consentStoreContract (t: Test, makeStore: (t: Test) => Promise<ConsentStore>, clock: TestClock): void {
  t.test('none granted: empty', async (t) => {
    const store = await makeStore(t)
    t.same(await store.get('alice', 'client-1', clock.now()), [])
  })

  t.test('grants accumulate, per subject and client', async (t) => {
    const store = await makeStore(t)
    await store.grant('alice', 'client-1', ['openid', 'api:read'], HOUR, clock.now())
    await store.grant('alice', 'client-1', ['api:read', 'api:write'], HOUR, clock.now())
    await store.grant('alice', 'client-2', ['email'], HOUR, clock.now())
    await store.grant('bob', 'client-1', ['profile'], HOUR, clock.now())
    t.same(sorted(await store.get('alice', 'client-1', clock.now())), ['api:read', 'api:write', 'openid'])
    t.same(await store.get('alice', 'client-2', clock.now()), ['email'])
    t.same(await store.get('bob', 'client-1', clock.now()), ['profile'])
    t.same(await store.get('bob', 'client-2', clock.now()), [])
  })

  t.test('any characters in subject and client id, without collisions', async (t) => {
    const store = await makeStore(t)
    const pairs: Array<[string, string]> = [
      ['a:b', 'c'], ['a', 'b:c'], ['x}{y', 'z'], ['{x}', 'y'], ['x', '{y}'], ['%7B', 'c'], ['{', 'c'],
      ['', 'c'], ['c', ''], ['ünï 😀', 'c'], ['\ud800', 'c'], ['\ud801', 'c']
    ]
    for (const [i, [subject, clientId]] of pairs.entries()) {
      await store.grant(subject, clientId, [`scope-${i}`], HOUR, clock.now())
    }
    for (const [i, [subject, clientId]] of pairs.entries()) {
      t.same(await store.get(subject, clientId, clock.now()), [`scope-${i}`], JSON.stringify([subject, clientId]))
    }
  })

  t.test('each scope expires ttlMs after the last grant that included it', async (t) => {
    const store = await makeStore(t)
    await store.grant('alice', 'client-1', ['openid', 'email'], HOUR, clock.now())
    clock.advance(30 * MINUTE)
    await store.grant('alice', 'client-1', ['openid', 'api:read'], HOUR, clock.now())
    clock.advance(30 * MINUTE - 1)
    t.same(sorted(await store.get('alice', 'client-1', clock.now())), ['api:read', 'email', 'openid'])
    clock.advance(1) // an hour after the first grant
    t.same(sorted(await store.get('alice', 'client-1', clock.now())), ['api:read', 'openid'], 'email was not confirmed again')
    clock.advance(30 * MINUTE)
    t.same(await store.get('alice', 'client-1', clock.now()), [])
  })

  t.test('a shorter grant shortens a scope', async (t) => {
    const store = await makeStore(t)
    await store.grant('alice', 'client-1', ['openid'], 10 * HOUR, clock.now())
    await store.grant('alice', 'client-1', ['openid'], HOUR, clock.now())
    clock.advance(HOUR)
    t.same(await store.get('alice', 'client-1', clock.now()), [])
  })

  t.test('a grant after expiry does not revive the old scopes', async (t) => {
    const store = await makeStore(t)
    await store.grant('alice', 'client-1', ['openid', 'api:write'], HOUR, clock.now())
    clock.advance(HOUR)
    await store.grant('alice', 'client-1', ['api:read'], HOUR, clock.now())
    t.same(await store.get('alice', 'client-1', clock.now()), ['api:read'])
  })

  t.test('an empty grant, and a bad ttl', async (t) => {
    const store = await makeStore(t)
    await store.grant('alice', 'client-1', [], HOUR, clock.now())
    t.same(await store.get('alice', 'client-1', clock.now()), [])
    for (const ttl of [0, -1, Number.NaN, Infinity]) {
      await t.rejects(store.grant('alice', 'client-1', ['openid'], ttl, clock.now()), TypeError, String(ttl))
    }
    t.same(await store.get('alice', 'client-1', clock.now()), [])
  })
}
