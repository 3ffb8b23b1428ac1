/**
 * Redis down under a running issuer: token requests get a clean 503 temporarily_unavailable
 * with Retry-After (never a 500), readiness says so, and service resumes when Redis returns
 * (empty: nothing is persisted), signing keys re-published.
 */
import t from 'tap'
import { startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'

const { url, redis, app } = await startIssuer(t, 'redis')
const cli = { authorization: basic('cli', SECRETS.cli) }
const grant = { grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read' }

// No assertion or await at the top level between subtests: tap ends an idle root test.
t.test('while Redis is down', async (t) => {
  const before = await postForm(`${url}/oauth2/token`, grant, cli)
  t.equal(before.status, 200, 'served while Redis is up')
  await redis?.kill()
  const res = await postForm(`${url}/oauth2/token`, grant, cli)
  t.equal(res.status, 503, 'a token request is a 503, not a 500')
  t.equal(res.json.error, 'temporarily_unavailable')
  t.equal(res.headers.get('retry-after'), '1')
  t.equal(res.headers.get('cache-control'), 'no-store')
  const refresh = await postForm(`${url}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: String(before.json.refresh_token) }, cli)
  t.equal(refresh.status, 503, 'a refresh too')
  t.equal((await fetch(`${url}/readyz`)).status, 503, 'not ready')
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'but alive')
})

t.test('when Redis is back (empty)', async (t) => {
  await redis?.start()
  let status = 0
  // Polled until ready, with a bound a loaded 2-core machine does not miss.
  const deadline = Date.now() + 60_000
  while (status !== 200 && Date.now() < deadline) {
    status = (await fetch(`${url}/readyz`)).status
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(status, 200, 'ready again')
  const res = await postForm(`${url}/oauth2/token`, grant, cli)
  t.equal(res.status, 200, 'tokens are issued again')
  await app.issuer.keys.reload()
  const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json() as { keys: unknown[] }
  t.equal(jwks.keys.length, 1, 'the signing key is published again, not lost with the store')
})
