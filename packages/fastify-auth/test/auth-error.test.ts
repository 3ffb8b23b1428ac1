/** AuthError carries a refused token's claims for the audit line, never into a logged error (review finding). */
import t from 'tap'
import { AuthError } from '../src/errors.ts'

t.test('claims are readable but not enumerable', async (t) => {
  const claims = { iss: 'https://id.example', sub: 'alice@example.com', aud: ['api'], exp: 2, iat: 1, jti: 'j1', client_id: 'cli', scope: ['read'], raw: { email: 'alice@example.com' } }
  const err = new AuthError('revoked', { claims })
  t.equal(err.claims, claims, 'there for whoever asks')
  t.notOk(Object.keys(err).includes('claims'), 'not enumerable')
  t.notOk(JSON.stringify({ ...err }).includes('alice'), 'a serializer copying enumerable properties prints no claim')
})
