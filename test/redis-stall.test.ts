/**
 * Redis paused (SIGSTOP) under a running issuer and gateway: its sockets stay open and the
 * kernel still accepts connections, but nothing answers, as with a hung server or a network
 * that drops packets without resetting. With `redis.commandTimeoutMs` every command fails
 * after that long, so:
 * - the issuer answers 503 `temporarily_unavailable` with Retry-After (token, refresh,
 *   password grant) and its /readyz says not ready;
 * - the gateway keeps serving from its revocation mirror (and a rate-limited route skips the
 *   limit), and its logout answers 503 with a reason and Retry-After, the token refused at once;
 * - with only the gateway's own Redis paused, its logout says 503 until the revocation is in
 *   Redis for the other gateways;
 * - SIGTERM still stops both services cleanly.
 * Every reply is awaited while Redis is still paused: it is resumed only after the checks, so a
 * reply that waited for Redis would never come (the request's own bound, far above the
 * configured timeout, then fails the test). No timing thresholds.
 */
import t, { type Test } from 'tap'
import { startRedis } from '@gatehouse/test-kit/redis-harness'
import { bearer, DEMO, request, startStack, userSession, waitFor, type GatewayProcess } from './fixtures/processes.ts'

const COMMAND_TIMEOUT_MS = 500
/** Bound on every request made while Redis is paused: far above the timeout, far below a hang. */
const REPLY_BOUND_MS = 20 * COMMAND_TIMEOUT_MS
/** Bound on a clean exit after SIGTERM while Redis is paused (a few timeouts in turn). */
const STOP_BOUND_MS = 60 * COMMAND_TIMEOUT_MS

/** The gateway's own Redis, for the last case (the issuer keeps the stack's). */
const own = await startRedis()
t.teardown(async () => { await own.stop() })

const stack = await startStack(t, {
  redis: true,
  issuer: { configure: (config) => { config.redis = { ...config.redis, commandTimeoutMs: COMMAND_TIMEOUT_MS } } },
  gateways: [
    {
      name: 'gateway',
      configure: (config) => {
        config.redis = { ...config.redis, commandTimeoutMs: COMMAND_TIMEOUT_MS }
        // A rate limit counted in Redis: skipped (not waited for) while Redis is stalled.
        const api = config.routes.find((route) => route.prefix === '/api')!
        config.routes.push({ ...api, name: 'limited', prefix: '/limited', rateLimit: { max: 1000, window: 60, key: 'client_id' } })
      }
    },
    { name: 'gateway-own', redis: false, configure: (config) => { config.redis = { url: own.url, commandTimeoutMs: COMMAND_TIMEOUT_MS } } }
  ]
})
const redis = stack.redis!
// Whatever fails, Redis runs again before the services stop (stop() resumes too).
t.teardown(() => { redis.resume(); own.resume() })
const { issuer } = stack
const [gateway, gatewayOwn] = stack.gateways as [GatewayProcess, GatewayProcess]

const basic = (client: { id: string, secret: string }): string => `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`

/** What each reply took, for the log only (never asserted: a loaded machine is slower). */
const took: Record<string, number> = {}
async function timed<T> (what: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now()
  try {
    return await run()
  } finally {
    took[what] = Math.round(performance.now() - start)
  }
}

async function token (client: { id: string, secret: string }, params: Record<string, string>) {
  return await request<{ error?: string, refresh_token?: string }>(`${issuer.url}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
    timeoutMs: REPLY_BOUND_MS
  })
}

const get = async (url: string, headers: Record<string, string> = {}) => await request<{ error?: string }>(url, { headers, timeoutMs: REPLY_BOUND_MS })
const logout = async (on: GatewayProcess, accessToken: string) =>
  await request<{ error?: string, error_description?: string, revoked?: boolean }>(`${on.url}/oauth2/logout`, { method: 'POST', headers: bearer(accessToken), timeoutMs: REPLY_BOUND_MS })

/** A 503 as the brief wants it: the OAuth error, a reason, and a Retry-After in seconds. */
function isUnavailable (t: Test, res: Awaited<ReturnType<typeof logout>>, what: string): void {
  t.equal(res.status, 503, `${what}: 503 (${res.text})`)
  t.equal(res.body.error, 'temporarily_unavailable', `${what}: temporarily_unavailable`)
  t.match(res.headers.get('retry-after'), /^[1-9]\d*$/, `${what}: Retry-After in seconds`)
}

t.test('the shared Redis paused', async (t) => {
  const session = await userSession(issuer)
  const other = await userSession(issuer)
  t.equal((await get(`${gateway.url}/api/items`, bearer(other.access_token))).status, 200, 'served before the pause')

  await redis.pause()
  t.ok(redis.isPaused)
  isUnavailable(t, await timed('client_credentials', async () => await token(DEMO.service, { grant_type: 'client_credentials', scope: 'api:read' })), 'client_credentials')
  isUnavailable(t, await token(DEMO.cli, { grant_type: 'password', username: 'alice', password: DEMO.passwords.alice!, scope: 'openid api:read' }), 'password grant')
  isUnavailable(t, await token(DEMO.cli, { grant_type: 'refresh_token', refresh_token: session.refresh_token }), 'refresh')
  t.equal((await get(`${issuer.url}/readyz`)).status, 503, 'issuer /readyz 503')
  t.equal((await get(`${issuer.url}/healthz`)).status, 200, 'issuer /healthz 200')

  t.equal((await get(`${gateway.url}/api/items`, bearer(other.access_token))).status, 200, 'the gateway serves from its mirror')
  t.equal((await timed('gateway rate-limited route', async () => await get(`${gateway.url}/limited/items`, bearer(other.access_token)))).status, 200, 'a rate-limited route skips the stalled limit')
  t.equal((await get(`${gateway.url}/public/items`)).status, 200, 'a public route')
  t.equal((await get(`${gateway.url}/readyz`)).status, 200, 'gateway /readyz 200: its mirror is within revocation.maxStaleness')

  const res = await timed('gateway logout', async () => await logout(gateway, session.access_token))
  isUnavailable(t, res, 'gateway logout')
  t.match(res.body.error_description, /issuer/, `the reason: ${res.body.error_description ?? ''}`)
  t.equal((await get(`${gateway.url}/api/items`, bearer(session.access_token))).status, 401, 'the token is refused here at once')
  t.equal((await get(`${gateway.url}/api/items`, bearer(other.access_token))).status, 200, 'other sessions still served')
  t.ok(redis.isPaused, 'every reply came while Redis was paused')

  redis.resume()
  const again = await waitFor('the logout to go through', async () => {
    const res = await logout(gateway, session.access_token)
    return res.status === 200 ? res : undefined
  }, REPLY_BOUND_MS, 100)
  t.equal(again.body.revoked, true, 'the retried logout succeeds once Redis answers')
  t.equal((await token(DEMO.service, { grant_type: 'client_credentials', scope: 'api:read' })).status, 200, 'tokens again')
  t.equal((await token(DEMO.cli, { grant_type: 'refresh_token', refresh_token: session.refresh_token })).status, 400, 'the logged-out session\'s refresh token is dead')
})

t.test('only the gateway\'s own Redis paused', async (t) => {
  const session = await userSession(issuer)
  const other = await userSession(issuer)
  await own.pause()
  const res = await timed('gateway logout, own Redis paused', async () => await logout(gatewayOwn, session.access_token))
  isUnavailable(t, res, 'logout while the gateway cannot write its Redis')
  t.match(res.body.error_description, /Redis/, `the reason: ${res.body.error_description ?? ''}`)
  t.equal((await get(`${gatewayOwn.url}/api/items`, bearer(session.access_token))).status, 401, 'refused here at once')
  t.equal((await get(`${gatewayOwn.url}/api/items`, bearer(other.access_token))).status, 200, 'other sessions served from the mirror')
  t.ok(own.isPaused, 'every reply came while its Redis was paused')
  own.resume()
  const again = await waitFor('the logout to be confirmed', async () => {
    const res = await logout(gatewayOwn, session.access_token)
    return res.status === 200 ? res : undefined
  }, REPLY_BOUND_MS, 100)
  t.equal(again.body.revoked, true, 'confirmed once the revocation is in Redis')
})

t.test('SIGTERM while Redis is paused: both services exit cleanly', async (t) => {
  await redis.pause()
  const stopped = [await timed('gateway SIGTERM to exit', async () => await gateway.stop(STOP_BOUND_MS)), await timed('issuer SIGTERM to exit', async () => await issuer.stop(STOP_BOUND_MS))]
  for (const [i, exit] of stopped.entries()) t.same(exit, { code: 0, signal: null }, `${i === 0 ? 'gateway' : 'issuer'} exited 0 on its own`)
  t.ok(redis.isPaused, 'before Redis was resumed')
  t.comment(`ms taken with redis.commandTimeoutMs ${COMMAND_TIMEOUT_MS}: ${JSON.stringify(took)}`)
})
