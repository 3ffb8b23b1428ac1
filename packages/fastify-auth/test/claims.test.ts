/**
 * toAccessClaims: the audience and scope lists are frozen and shared by every token whose
 * claim reads the same (fewer objects in a full verified-token cache), and stay exact.
 */
import t from 'tap'
import { toAccessClaims } from '../src/claims.ts'
import { AuthError } from '../src/errors.ts'

const ISSUER = 'https://issuer.example'
const payload = (extra: Record<string, unknown>): Record<string, unknown> => ({
  iss: ISSUER, sub: 'alice', jti: `j-${Math.random()}`, client_id: 'web', exp: 2_000_000_000, iat: 1_700_000_000, ...extra
})

t.test('one aud string and one scope string: the same frozen lists for every token', async (t) => {
  // Fresh strings each time, as JSON.parse makes them.
  const a = toAccessClaims(payload({ aud: ['demo', 'api'].join('-'), scope: ['api:read', 'api:write'].join(' ') }), ISSUER)
  const b = toAccessClaims(payload({ aud: 'demo-api', scope: 'api:read api:write' }), ISSUER)
  t.same(a.aud, ['demo-api'])
  t.same(a.scope, ['api:read', 'api:write'])
  t.equal(a.aud, b.aud, 'one audience list')
  t.equal(a.scope, b.scope, 'one scope list')
  t.ok(Object.isFrozen(a.aud) && Object.isFrozen(a.scope) && Object.isFrozen(a), 'frozen')
  t.throws(() => { (a.scope as string[]).push('admin') }, TypeError, 'no token can add to another\'s scope')
  t.same(b.scope, ['api:read', 'api:write'])

  const c = toAccessClaims(payload({ aud: 'other', scope: '  api:read   ' }), ISSUER)
  t.same(c.aud, ['other'])
  t.same(c.scope, ['api:read'], 'extra spaces dropped')
  t.not(c.scope, a.scope)
  const none = toAccessClaims(payload({}), ISSUER)
  t.same([none.aud, none.scope], [[], []], 'no aud, no scope: empty lists')
})

t.test('past 1,000 distinct strings a list is the token\'s own, and still right', async (t) => {
  const wrong: number[] = []
  for (let i = 0; i < 1100; i++) {
    const claims = toAccessClaims(payload({ aud: `aud-${i}`, scope: `s-${i} common` }), ISSUER)
    if (JSON.stringify([claims.aud, claims.scope]) !== JSON.stringify([[`aud-${i}`], [`s-${i}`, 'common']])) wrong.push(i)
  }
  t.same(wrong, [], '1,100 tokens, each with its own aud and scope')
  const one = toAccessClaims(payload({ scope: 's-1099 common' }), ISSUER)
  const two = toAccessClaims(payload({ scope: 's-1099 common' }), ISSUER)
  t.same(one.scope, two.scope)
  t.not(one.scope, two.scope, 'not kept: each token its own list')
  t.ok(Object.isFrozen(one.scope), 'frozen all the same')
  t.equal(toAccessClaims(payload({ scope: 's-5 common' }), ISSUER).scope, toAccessClaims(payload({ scope: 's-5 common' }), ISSUER).scope, 'the first 1,000 still shared')
})

t.test('an aud array is the payload\'s own, frozen', async (t) => {
  const claims = toAccessClaims(payload({ aud: ['a', 'b'] }), ISSUER)
  t.same(claims.aud, ['a', 'b'])
  t.ok(Object.isFrozen(claims.aud))
  t.throws(() => toAccessClaims(payload({ aud: ['a', 1] }), ISSUER), new AuthError('bad_audience'), 'an aud array with a number: bad_audience')
})
