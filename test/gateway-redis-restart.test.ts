/**
 * Redis killed under running gateways and restarted empty (no persistence).
 *
 * Gateways A and B fail closed, C fails open; all three have `revocation.maxStaleness: 2`.
 * What must hold, and is checked here:
 * - while the mirror is younger than the bound, valid tokens are served; past it, A and B
 *   answer 503 (fail closed) and C keeps serving (fail open); /readyz reports it;
 * - the issuer's /readyz is 503 while its store is unreachable;
 * - a logout through A during the outage: the issuer cannot end the session (its sessions live
 *   in Redis), so the answer is a 503 with Retry-After, but A refuses the token at once and its
 *   write is queued; once Redis is back, the queue is flushed and B and C refuse the token too
 *   (a fail-open gateway cannot know of it before);
 * - after the restart every gateway serves again (polled), the revocations their
 *   mirrors held survive, and a session that was never logged out keeps working.
 */
import t from 'tap'
import { bearer, decodeJwt, request, sleep, startStack, userSession, waitFor, type GatewayProcess, type UserSession } from './fixtures/processes.ts'

const STALENESS_S = 2
/** The mirror hears from Redis every second (heartbeat PING), so staleness at the kill is 0..1 s. */
const HEARTBEAT_MS = 1000
/**
 * Bound for each wait (recovery after the restart included): generous, a loaded 2-core machine
 * is many times slower. The staleness bound itself is checked by when requests were sent.
 */
const WAIT_MS = 30_000

const staleness = (failOpen: boolean) => (config: { revocation: { maxStaleness: number, failOpen: boolean } }): void => {
  config.revocation.maxStaleness = STALENESS_S
  config.revocation.failOpen = failOpen
}

const stack = await startStack(t, {
  redis: true,
  // Re-reads the (shared) key store every second, as the rotation test does.
  issuer: { configure: (config) => { config.keys.refreshInterval = 1 } },
  gateways: [
    { name: 'gateway-a', configure: staleness(false) },
    { name: 'gateway-b', configure: staleness(false) },
    { name: 'gateway-c-open', configure: staleness(true) }
  ]
})
const { issuer } = stack
const redis = stack.redis!
const [a, b, c] = stack.gateways as [GatewayProcess, GatewayProcess, GatewayProcess]
t.comment(`started (ms): ${JSON.stringify(stack.timings)}`)

const api = async (gateway: GatewayProcess, token: string): Promise<number> =>
  (await request(`${gateway.url}/api/items`, { headers: bearer(token), timeoutMs: WAIT_MS })).status
const statusOf = async (url: string): Promise<number> => (await request(url, { timeoutMs: WAIT_MS })).status
const since = (start: number): number => Math.round(performance.now() - start)

/**
 * Polls `gateway` with `token` until it answers `want`; ms taken, what it said before, and
 * when each answer's request was sent (performance.now()).
 */
async function until (gateway: GatewayProcess, token: string, want: number, timeoutMs = WAIT_MS): Promise<{ ms: number, before: number[], polls: Array<{ sentAt: number, status: number }> }> {
  const start = performance.now()
  const before: number[] = []
  const polls: Array<{ sentAt: number, status: number }> = []
  await waitFor(`${gateway.name} to answer ${want}`, async () => {
    const sentAt = performance.now()
    const status = await api(gateway, token)
    polls.push({ sentAt, status })
    if (status === want) return true
    if (before.at(-1) !== status) before.push(status)
    return undefined
  }, timeoutMs, 10)
  return { ms: since(start), before, polls }
}

let revokedBefore: UserSession
let revokedDuring: UserSession
let untouched: UserSession

t.test('before the outage', async (t) => {
  ;[revokedBefore, revokedDuring, untouched] = [await userSession(issuer), await userSession(issuer), await userSession(issuer)]
  t.equal((await request(`${a.url}/oauth2/logout`, { method: 'POST', headers: bearer(revokedBefore.access_token) })).status, 200, 'one session logged out through A')
  for (const gateway of [a, b, c]) {
    await until(gateway, revokedBefore.access_token, 401)
    t.equal(await api(gateway, revokedDuring.access_token), 200, `${gateway.name} serves the session to be logged out later`)
    t.equal(await api(gateway, untouched.access_token), 200, `${gateway.name} serves the untouched session`)
    t.equal(await statusOf(`${gateway.url}/readyz`), 200, `${gateway.name} ready`)
  }
  t.equal(await statusOf(`${issuer.url}/readyz`), 200, 'issuer ready')
})

t.test('Redis down: served within the bound, then per policy', async (t) => {
  await redis.kill()
  const killedAt = performance.now()
  t.equal(await api(a, untouched.access_token), 200, `A serves at once (${since(killedAt)} ms after the kill)`)

  // A logout through A during the outage.
  const res = await request<{ error?: string }>(`${a.url}/oauth2/logout`, { method: 'POST', headers: bearer(revokedDuring.access_token), timeoutMs: 10_000 })
  const loggedOutAt = since(killedAt)
  t.equal(res.status, 503, `logout during the outage: ${res.status} ${JSON.stringify(res.body)} (${loggedOutAt} ms after the kill)`)
  t.equal(res.body.error, 'temporarily_unavailable', 'to be retried')
  t.match(res.headers.get('retry-after'), /^[1-9]\d*$/, 'with Retry-After')
  t.equal(await api(a, revokedDuring.access_token), 401, 'A refuses the token logged out through it, at once')
  if (since(killedAt) < HEARTBEAT_MS * 0.8) {
    t.equal(await api(a, untouched.access_token), 200, `A still serves other sessions (${since(killedAt)} ms after the kill)`)
  } else {
    t.comment(`the logout took ${loggedOutAt} ms: too late to check A inside the bound`)
  }

  // The bound: the mirror last heard from Redis 0..1 s before the kill.
  const closedA = await until(a, untouched.access_token, 503)
  const closedAt = since(killedAt)
  t.comment(`A fails closed ${closedAt} ms after the kill (bound ${STALENESS_S * 1000} ms, heartbeat ${HEARTBEAT_MS} ms)`)
  t.ok(closedAt >= STALENESS_S * 1000 - HEARTBEAT_MS - 500, 'not before the bound (less one heartbeat, and some slack for a busy machine)')
  // Ordering, not a stopwatch: a request sent past the bound is refused, however long it then
  // took to answer on a busy machine (the gateway last heard from Redis before the kill).
  const servedLate = closedA.polls.filter((p) => p.status === 200 && p.sentAt - killedAt > STALENESS_S * 1000 + 100)
  t.same(servedLate.map((p) => Math.round(p.sentAt - killedAt)), [], 'no request sent past the bound was served')
  t.ok(closedA.before.every((s) => s === 200), `only 200s before the first 503 (${JSON.stringify(closedA.before)})`)
  const closed = await request<{ error: string }>(`${a.url}/api/items`, { headers: bearer(untouched.access_token) })
  t.equal(closed.status, 503)
  t.equal(closed.body.error, 'temporarily_unavailable', '503 temporarily_unavailable')
  await until(b, untouched.access_token, 503)
  t.pass('B fails closed too')
  t.equal(await api(a, revokedDuring.access_token), 401, 'A still refuses the logged-out token with a 401 (revocation before staleness)')
  // Past C's bound for sure, wherever its last heartbeat fell.
  await sleep(Math.max(0, STALENESS_S * 1000 + HEARTBEAT_MS + 200 - since(killedAt)))
  t.equal(await api(c, untouched.access_token), 200, `C (fail open) still serves past the bound (${since(killedAt)} ms)`)
  t.equal(await api(c, revokedBefore.access_token), 401, 'C still refuses what its mirror holds')
  t.equal(await api(c, revokedDuring.access_token), 200, 'C cannot know of the logout made during the outage (documented: fail open)')
  t.equal(await statusOf(`${a.url}/readyz`), 503, 'A /readyz 503')
  t.equal(await statusOf(`${b.url}/readyz`), 503, 'B /readyz 503')
  // A fail-open gateway serves by choice, so a readiness probe must not take it out.
  t.equal(await statusOf(`${c.url}/readyz`), 200, 'C (fail open) stays ready')
  t.equal(await statusOf(`${issuer.url}/readyz`), 503, 'issuer /readyz 503 while its store is unreachable')
  t.equal(await statusOf(`${a.url}/healthz`), 200, 'A /healthz still 200 (the process is fine)')
  for (const [gateway, want] of [[a, 503], [b, 503], [c, 200]] as const) {
    for (let i = 0; i < 5; i++) t.equal(await api(gateway, untouched.access_token), want, `${gateway.name} past the bound: ${want}`)
  }
})

let redisBackAt = 0

t.test('Redis back, empty', async (t) => {
  await redis.start()
  const startedAt = redisBackAt = performance.now()
  const recovered: Record<string, number> = {}
  await Promise.all([a, b, c].map(async (gateway) => {
    const { ms, before } = await until(gateway, untouched.access_token, 200)
    recovered[gateway.name] = ms
    t.ok(before.every((s) => s === 503 || s === 200), `${gateway.name}: only 503 until serving again (${JSON.stringify(before)})`)
  }))
  t.comment(`serving again after the restart (ms): ${JSON.stringify(recovered)}`)
  const enforced: Record<string, number> = {}
  for (const gateway of [a, b, c]) {
    const { ms } = await until(gateway, revokedDuring.access_token, 401)
    enforced[gateway.name] = Math.round(performance.now() - startedAt)
    t.pass(`${gateway.name} refuses the token logged out during the outage (${ms} ms of polling)`)
    t.equal(await api(gateway, revokedBefore.access_token), 401, `${gateway.name} still refuses the one logged out before the outage`)
    t.equal(await api(gateway, untouched.access_token), 200, `${gateway.name} serves the untouched session`)
  }
  t.comment(`the outage's logout enforced, ms after the restart: ${JSON.stringify(enforced)}`)
  await waitFor('the issuer to be ready', async () => (await statusOf(`${issuer.url}/readyz`)) === 200 ? true : undefined, WAIT_MS, 50)
  t.comment(`issuer ready again ${since(startedAt)} ms after the restart`)
  for (const gateway of [a, b, c]) t.equal(await statusOf(`${gateway.url}/readyz`), 200, `${gateway.name} ready`)
})

// With Redis restarted empty, the issuer's key store is empty: on its next re-read (every
// keys.refreshInterval, 1 s here) the issuer publishes an empty JWKS yet goes on signing with the
// key it holds, so no gateway that (re)starts from then on can verify anything.
t.test('the issuer still publishes the key it signs with after Redis came back empty', async (t) => {
  const fresh = await userSession(issuer)
  const kid = String(decodeJwt(fresh.access_token).header.kid)
  // Two re-reads of the store at least since Redis came back.
  await sleep(Math.max(0, redisBackAt + 2500 - performance.now()))
  const kids = await issuer.jwksKids()
  t.ok(kids.includes(kid), `the JWKS (${JSON.stringify(kids)}) has the signing kid ${kid}`)
})

t.test('the issuer still recognises its own tokens (a repeated logout is a 200)', async (t) => {
  const res = await request(`${a.url}/oauth2/logout`, { method: 'POST', headers: bearer(revokedDuring.access_token) })
  t.equal(res.status, 200, `logout again through A: ${res.status} ${res.text}`)
})

t.test('a gateway restarted after Redis came back gets ready and knows the outage\'s revocation', async (t) => {
  await b.stop()
  await b.start(30_000, '/healthz')
  const ready = await waitFor('B /readyz 200', async () => (await statusOf(`${b.url}/readyz`)) === 200 ? true : undefined, WAIT_MS, 100).catch(() => false)
  t.ok(ready, `restarted B is ready (/readyz ${await statusOf(`${b.url}/readyz`)})`)
  if (!ready) return
  t.equal(await api(b, revokedDuring.access_token), 401, 'knows the revocation queued during the outage (flushed into the new Redis)')
  t.equal(await api(b, untouched.access_token), 200, 'serves the untouched session')
  const fresh = await userSession(issuer)
  t.equal(await api(b, fresh.access_token), 200, 'and a token issued after the restart')
  // Its entry died with Redis; the instances that held it (A, C, the issuer) wrote it back.
  t.equal(await api(b, revokedBefore.access_token), 401, 'and the one logged out before the outage, whose entry Redis lost')
})
