/**
 * Failed client authentication (issue 9 item 3) is counted per client_id and per IP at every
 * endpoint that authenticates clients (token, introspect, revoke, session/end), shared between
 * them. Past the per-address limit every attempt, the right secret included, gets a 429
 * RFC 6749 body with Retry-After until the window ends; past the per-client limit the wrong
 * secrets get that 429 while the right secret still works (so nobody can lock the gateway out).
 */
import t, { type Test } from 'tap'
import { forEachStore, startIssuer, postForm, basic } from './fixtures/harness.ts'
import { SECRETS } from './fixtures/issuer.ts'
import { MovableClock } from './fixtures/flows.ts'

type Reply = Awaited<ReturnType<typeof postForm>>
type ClientName = keyof typeof SECRETS

/** Each endpoint with a confidential fixture client allowed to call it. */
const ENDPOINTS: Array<{ path: string, client: ClientName, body: Record<string, string> }> = [
  { path: '/oauth2/token', client: 'service', body: { grant_type: 'client_credentials', scope: 'api:read' } },
  { path: '/oauth2/introspect', client: 'cli', body: { token: 'not-a-token' } },
  { path: '/oauth2/revoke', client: 'web', body: { token: 'not-a-token' } },
  { path: '/oauth2/session/end', client: 'gateway', body: { token: 'not-a-token' } }
]

const WRONG = 'wrong-secret-0123456789'

const call = async (url: string, path: string, body: Record<string, string>, client: string, secret: string): Promise<Reply> =>
  await postForm(`${url}${path}`, body, { authorization: basic(client, secret) })

function expectLocked (t: Test, res: Reply, label: string, windowSeconds: number): void {
  t.equal(res.status, 429, `${label}: 429`)
  t.equal(res.json.error, 'temporarily_unavailable', `${label}: error`)
  t.same(Object.keys(res.json).sort(), ['error', 'error_description'], `${label}: an RFC 6749 5.2 body`)
  const retryAfter = Number(res.headers.get('retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= windowSeconds, `${label}: Retry-After ${String(res.headers.get('retry-after'))}`)
  t.equal(res.headers.get('cache-control'), 'no-store', `${label}: no-store`)
}

forEachStore(t, async (t, kind) => {
  t.test('per client_id, at each endpoint: wrong secrets get 429 past the limit, the right one still works', async (t) => {
    const clock = new MovableClock()
    const { url } = await startIssuer(t, kind, 'rateLimit: { clientAuthPerClient: 3, clientAuthPerIp: 1000, clientAuthWindow: 60 }\n', { clock })
    for (const { path, client, body } of ENDPOINTS) {
      for (let i = 1; i <= 3; i++) t.equal((await call(url, path, body, client, WRONG)).status, 401, `${path} ${client}: wrong secret ${i}`)
      expectLocked(t, await call(url, path, body, client, WRONG), `${path} ${client}: 4th wrong secret`, 60)
      t.equal((await call(url, path, body, client, SECRETS[client])).status, path === '/oauth2/session/end' ? 400 : 200, `${path} ${client}: the right secret still works`)
    }
    expectLocked(t, await call(url, '/oauth2/introspect', { token: 'x' }, 'service', WRONG), 'one count for every endpoint', 60)
    const post = await postForm(`${url}/oauth2/introspect`, { token: 'x', client_id: 'web', client_secret: WRONG })
    t.equal(post.status, 429, 'whatever the authentication method')
    t.equal((await call(url, '/oauth2/introspect', { token: 'x' }, 'cli-post', SECRETS.cli)).status, 401, 'another client still gets its 401 (cli-post takes client_secret_post only)')
    clock.advance(61)
    for (const { path, client, body } of ENDPOINTS) {
      t.equal((await call(url, path, body, client, WRONG)).status, 401, `${path} ${client}: a plain 401 once the window has ended`)
    }
  })

  t.test('per IP: failures for any client_id, known or not, lock the address', async (t) => {
    const { url } = await startIssuer(t, kind, 'rateLimit: { clientAuthPerClient: 1000, clientAuthPerIp: 4 }\n')
    t.equal((await call(url, '/oauth2/token', { grant_type: 'client_credentials' }, 'no-such-client', WRONG)).status, 401)
    t.equal((await postForm(`${url}/oauth2/token`, { grant_type: 'password', client_id: 'cli-post', client_secret: WRONG })).status, 401)
    t.equal((await call(url, '/oauth2/revoke', { token: 'x' }, 'web', WRONG)).status, 401)
    t.equal((await postForm(`${url}/oauth2/introspect`, { token: 'x' })).status, 401, 'no client authentication at all')
    for (const { path, client, body } of ENDPOINTS) {
      expectLocked(t, await call(url, path, body, client, SECRETS[client]), `${path}: the address is locked`, 60)
    }
  })
})

t.test('120 wrong secrets for the gateway client, as in the issue: 429 past the default limit', async (t) => {
  const { url } = await startIssuer(t, 'memory')
  const statuses = new Map<number, number>()
  for (let i = 0; i < 120; i++) {
    const { status } = await call(url, '/oauth2/session/end', { token: 'x' }, 'gateway', `${WRONG}-${i}`)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  t.same(Object.fromEntries(statuses), { 401: 20, 429: 100 }, 'the default per-IP limit: 20 failures a minute')
})
