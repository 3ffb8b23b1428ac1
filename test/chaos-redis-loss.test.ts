/**
 * Chaos (issue 15): Redis without persistence is SIGKILLed under load and restarted empty; no
 * revocation is lost. Real processes: redis-server, the issuer and two gateways on it, 16
 * clients loading both gateways the whole time.
 *
 * - alice logs out through gateway-1 before the outage; both gateways refuse her token;
 * - Redis is killed: every answer to the load is a 200 (well within maxStaleness) or a 503
 *   with a reason, none hangs; a logout through gateway-2 (carol) is a 503 with Retry-After and
 *   a reason, never a 502, and gateway-2 refuses carol's token at once;
 * - Redis comes back empty and a third gateway is started at once: it refuses alice's and
 *   carol's tokens from its first request after /readyz (the survivors wrote their mirrors
 *   back; carol's queued write went in too), and serves bob's;
 * - carol's retried logout is a 200, and Redis holds every revocation again.
 * The figures (requests, statuses, latencies, times) are printed as comments.
 */
import t from 'tap'
import { createRedisClient } from '@gatehouse/shared/redis'
import { bearer, percentile, request, startGateway, startStack, userSession, waitFor, type GatewayProcess } from './fixtures/processes.ts'

const stack = await startStack(t, { redis: true, gateways: [{ name: 'gateway-1' }, { name: 'gateway-2' }] })
const { issuer, resourceServer } = stack
const redis = stack.redis!
const [g1, g2] = stack.gateways as [GatewayProcess, GatewayProcess]

/** No request may take longer: a hang shows up as a timeout. */
const REQUEST_TIMEOUT_MS = 10_000
/** Bound for each wait, on a loaded 2-core machine. */
const WAIT_MS = 30_000

const [alice, bob, carol] = [await userSession(issuer), await userSession(issuer, { username: 'bob' }), await userSession(issuer)]
const api = async (gateway: GatewayProcess, token: string): Promise<number> =>
  (await request(`${gateway.url}/api/items`, { headers: bearer(token), timeoutMs: REQUEST_TIMEOUT_MS })).status

// The load: 16 clients, each looping over both gateways with bob's token.
interface Sample { gateway: string, status: number, ms: number, sentAt: number, reason: string }
const samples: Sample[] = []
const failures: string[] = []
const loading = { on: true }
const load = Array.from({ length: 16 }, async (_, i) => {
  for (let n = 0; loading.on; n++) {
    const gateway = (n + i) % 2 === 0 ? g1 : g2
    const sentAt = performance.now()
    try {
      const res = await request<{ error?: string, error_description?: string }>(`${gateway.url}/api/items`, { headers: bearer(bob.access_token), timeoutMs: REQUEST_TIMEOUT_MS })
      const reason = res.status === 200 ? '' : `${res.body.error ?? ''}: ${res.body.error_description ?? ''} (Retry-After ${res.headers.get('retry-after') ?? 'none'})`
      samples.push({ gateway: gateway.name, status: res.status, ms: performance.now() - sentAt, sentAt, reason })
    } catch (err) {
      failures.push(`${gateway.name}: ${(err as Error).message} after ${Math.round(performance.now() - sentAt)} ms`)
    }
  }
})
t.teardown(async () => {
  loading.on = false
  await Promise.all(load)
})

const raw = createRedisClient({ url: redis.url, options: { maxRetriesPerRequest: null, retryStrategy: () => 50 } })
raw.on('error', () => {})
t.teardown(() => { raw.disconnect() })

let killedAt = 0
let restartedAt = 0

t.test('before: alice logs out through gateway-1; both gateways refuse her token', async (t) => {
  t.equal((await request(`${g1.url}/oauth2/logout`, { method: 'POST', headers: bearer(alice.access_token) })).status, 200)
  for (const gateway of [g1, g2]) {
    await waitFor(`${gateway.name} to refuse alice`, async () => await api(gateway, alice.access_token) === 401 ? true : undefined, WAIT_MS, 10)
    t.equal(await api(gateway, carol.access_token), 200, `${gateway.name} serves carol`)
  }
  t.ok(await raw.zscore('gatehouse:{revocations}:sid', alice.sid) !== null, 'alice\'s session is on the list in Redis')
})

t.test('Redis SIGKILLed: the load is served, a logout is a 503 to retry', async (t) => {
  await redis.kill()
  killedAt = performance.now()
  const res = await request<{ error?: string, error_description?: string }>(`${g2.url}/oauth2/logout`, { method: 'POST', headers: bearer(carol.access_token), timeoutMs: REQUEST_TIMEOUT_MS })
  t.equal(res.status, 503, `carol's logout through gateway-2: ${res.status} ${res.text} after ${Math.round(performance.now() - killedAt)} ms`)
  t.equal(res.body.error, 'temporarily_unavailable')
  t.match(res.body.error_description, /retry the logout/, 'with a reason')
  t.match(res.headers.get('retry-after'), /^[1-9]\d*$/, 'and Retry-After')
  t.equal(await api(g2, carol.access_token), 401, 'gateway-2 refuses carol\'s token at once')
  await waitFor('the issuer to report its store unreachable', async () => (await request(`${issuer.url}/readyz`)).status === 503 ? true : undefined, WAIT_MS, 50)
  // A real outage: both gateways have not heard from Redis for 5 s (well within maxStaleness,
  // 30 s), and a few hundred requests were sent after the kill.
  for (const gateway of [g1, g2]) {
    await waitFor(`${gateway.name} to be 5 s behind Redis`, async () => Number(/^gatehouse_gateway_revocation_staleness_seconds (\S+)$/m.exec(await gateway.metrics())?.[1]) >= 5 ? true : undefined, WAIT_MS, 100)
  }
  await waitFor('load during the outage', () => samples.filter((s) => s.sentAt > killedAt).length >= 300 ? true : undefined, WAIT_MS, 20)
  t.pass(`Redis down for ${Math.round(performance.now() - killedAt)} ms`)
})

t.test('Redis back empty, a third gateway started at once: it refuses every revoked token when ready', async (t) => {
  await redis.start()
  restartedAt = performance.now()
  t.equal(await raw.exists('gatehouse:{revocations}:sid'), 0, 'Redis came back empty')
  const g3 = await startGateway(t, stack.dir, issuer, resourceServer, { name: 'gateway-3', redis })
  stack.services.push(g3)
  const readyAfter = Math.round(performance.now() - restartedAt)
  const first = await api(g3, alice.access_token)
  t.equal(first, 401, `gateway-3 refuses alice from its first request after /readyz (${readyAfter} ms after the restart)`)
  t.equal(await api(g3, carol.access_token), 401, 'and carol, logged out during the outage')
  t.equal(await api(g3, bob.access_token), 200, 'and serves bob')
  for (const gateway of [g1, g2]) {
    await waitFor(`${gateway.name} to refuse carol`, async () => await api(gateway, carol.access_token) === 401 ? true : undefined, WAIT_MS, 10)
    t.equal(await api(gateway, alice.access_token), 401, `${gateway.name} still refuses alice`)
  }
  t.comment(`gateway-3 ready ${readyAfter} ms after Redis restarted; first answer on alice's token: ${first}`)

  const retried = await waitFor('carol\'s retried logout to be a 200', async () => {
    const res = await request(`${g2.url}/oauth2/logout`, { method: 'POST', headers: bearer(carol.access_token), timeoutMs: REQUEST_TIMEOUT_MS })
    return res.status === 200 ? res : undefined
  }, WAIT_MS, 200)
  t.equal(retried.status, 200, 'carol\'s retried logout: 200')
  t.ok(await raw.zscore('gatehouse:{revocations}:sid', alice.sid) !== null, 'alice\'s session is on the list in Redis again')
  t.ok(await raw.zscore('gatehouse:{revocations}:sid', carol.sid) !== null, 'and carol\'s')
  const counts = await Promise.all([g1, g2, g3].map(async (g) => Number(/^gatehouse_gateway_revocations_written_back_total (\d+)$/m.exec(await g.metrics())?.[1] ?? -1)))
  t.ok(counts.every((n) => n >= 0), 'every gateway reports gatehouse_gateway_revocations_written_back_total')
  t.comment(`written back by gateway-1, -2, -3: ${counts.join(', ')} (the issuer writes back its own mirror too)`)
})

t.test('the load: every answer a 200 or a 503 with a reason; none hung', async (t) => {
  // A little load after the restart too.
  await waitFor('load after the restart', () => samples.filter((s) => s.sentAt > restartedAt).length >= 300 ? true : undefined, WAIT_MS, 20)
  loading.on = false
  await Promise.all(load)
  t.same(failures, [], 'no request failed or timed out')
  const bad = samples.filter((s) => !(s.status === 200 || (s.status === 503 && /temporarily_unavailable: .+\(Retry-After \d+\)/.test(s.reason))))
  t.same(bad.slice(0, 10), [], 'every answer is a 200, or a 503 with a reason and Retry-After')
  const byStatus: Record<number, number> = {}
  for (const s of samples) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1
  const during = samples.filter((s) => s.sentAt > killedAt && s.sentAt < restartedAt)
  const latencies = samples.map((s) => s.ms)
  t.ok(during.length >= 300, `${during.length} requests sent during the outage`)
  t.ok(Math.max(...latencies) < REQUEST_TIMEOUT_MS, 'none near the timeout')
  t.comment(`load: ${samples.length} requests, statuses ${JSON.stringify(byStatus)}, ${during.length} during the ${Math.round(restartedAt - killedAt)} ms outage; ` +
    `latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`)
})
