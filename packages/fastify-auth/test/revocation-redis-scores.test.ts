/**
 * Scores the writer never produces but an operator (or another tool) may put in Redis: `+inf`
 * means revoked for good, and a score that cannot be read fails closed, logged once.
 */
import t from 'tap'
import { ScoreReader } from '../src/revocation/redis-copy.ts'
import { startRedisLists } from './fixtures/redis-lists.ts'
import { TestClock } from './revocation-contract.ts'

const { connect, createList } = await startRedisLists(t)

t.test('redis: a member scored +inf is revoked for good, across pages', async (t) => {
  const raw = connect()
  const clock = new TestClock(Date.now())
  const key = 'gatehouse:inf:{revocations}'
  await raw.zadd(`${key}:jti`, '+inf', 'forever-1', 'inf', 'forever-2', '+inf', 'forever-3', clock.now() + 60_000, 'minute')
  await raw.zadd(`${key}:sid`, '+inf', 'session-forever')
  await raw.pexpire(`${key}:jti`, 600_000)
  await raw.pexpire(`${key}:sid`, 600_000)
  // Pages of two: the cursor moves through a run of `inf` scores too.
  const list = createList({ clock, keyPrefix: 'gatehouse:inf:', pageSize: 2 })
  await list.ready()
  for (const jti of ['forever-1', 'forever-2', 'forever-3', 'minute']) t.ok(list.isRevoked({ jti }), `${jti} is revoked`)
  t.ok(list.isRevoked({ jti: 'any', sid: 'session-forever' }), 'a session scored +inf is revoked')
  clock.advance(10 * 365 * 24 * 3600 * 1000)
  t.notOk(list.isRevoked({ jti: 'minute' }), 'a finite entry expires')
  t.ok(list.isRevoked({ jti: 'forever-2' }), '+inf never expires')
  t.ok(list.isRevoked({ jti: 'x', sid: 'session-forever' }), '+inf never expires (sid)')
})

t.test('a score that cannot be read fails closed and is logged once', async (t) => {
  const warnings: Array<Record<string, unknown>> = []
  const scores = new ScoreReader({ warn: (obj) => { warnings.push(obj as Record<string, unknown>) } })
  t.equal(scores.expiry('k', 'a', '1700000000000'), 1_700_000_000_000)
  t.equal(scores.expiry('k', 'a', 'inf'), Infinity)
  t.equal(scores.expiry('k', 'a', '-inf'), -Infinity, '-inf: expired, so ignored')
  t.equal(warnings.length, 0, 'readable scores are not logged')
  for (const raw of ['nan', 'soon', '', '12abc']) t.equal(scores.expiry('k', `bad-${raw}`, raw), Infinity, `"${raw}" counts as revoked for good`)
  t.equal(scores.expiry('k', 'bad-soon', 'soon'), Infinity, 'again on the next resync')
  t.equal(warnings.length, 4, 'one warning per unreadable entry, not per resync')
  t.match(warnings[1], { key: 'k', id: 'bad-soon', score: 'soon' })
})
