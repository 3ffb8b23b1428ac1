/**
 * Route reload under steady load: while concurrent clients keep calling /api (token) and
 * /public, the gateway's YAML is rewritten (a route added, an upstream changed) and SIGHUP
 * sent; then an invalid file is written: the gateway logs each problem (file:line:column) and
 * keeps serving the old routes; then a second good file. Not one request may fail.
 */
import t from 'tap'
import {
  bearer, request, startResourceServer, startStack, summarize, userSession, waitFor, writeText,
  type Echo, type GatewayConfig, type GatewayProcess
} from './fixtures/processes.ts'

const WORKERS = 16
/** Requests the load makes at least (counted, not timed: a loaded machine just takes longer). */
const MIN_REQUESTS = WORKERS * 60
/** Bound for each wait: generous, a loaded 2-core machine is many times slower. */
const WAIT_MS = 60_000

const stack = await startStack(t)
const { issuer, resourceServer: first } = stack
const gateway = stack.gateways[0] as GatewayProcess
const second = await startResourceServer(t, issuer, 'resource-server-2')
stack.services.push(second)
t.comment(`started (ms): ${JSON.stringify(stack.timings)}`)

const token = (await userSession(issuer, { scope: 'openid api:read' })).access_token
const upstreamOf = (echo: Echo): string => `http://${String(echo.headers.host)}`

/** The current config with `change` applied, written atomically; then SIGHUP. */
function reloadWith (change: (config: GatewayConfig) => void): number {
  const next = structuredClone(gateway.config)
  change(next)
  gateway.writeConfig(next)
  gateway.reload()
  return performance.now()
}

/** Polls until GET `path` (with the token) answers 200 from `upstream`; ms taken. */
async function until (path: string, upstream: string, since: number): Promise<number> {
  await waitFor(`${path} served by ${upstream}`, async () => {
    const res = await request<Echo>(`${gateway.url}${path}`, { headers: bearer(token) })
    return res.status === 200 && upstreamOf(res.body) === upstream ? true : undefined
  }, WAIT_MS, 10)
  return Math.round(performance.now() - since)
}

t.test('reloads under load drop nothing', async (t) => {
  t.equal((await request(`${gateway.url}/v2/items`, { headers: bearer(token) })).status, 404, 'no /v2 route yet')
  const upstreamsSeen = { public: new Set<string>(), api: new Set<string>() }
  const counts = new Map<string, number>()
  const failures: string[] = []
  const latencies: number[] = []
  const run = { isRunning: true, completed: 0 }
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; run.isRunning; i++, run.completed++) {
      const path = (n + i) % 2 === 0 ? '/api/items' : '/public/items'
      const started = performance.now()
      try {
        const res = await request<Echo>(`${gateway.url}${path}`, { headers: bearer(token), timeoutMs: WAIT_MS })
        latencies.push(performance.now() - started)
        counts.set(`${path} ${res.status}`, (counts.get(`${path} ${res.status}`) ?? 0) + 1)
        if (res.status !== 200) failures.push(`${path}: ${res.status} ${res.text.slice(0, 200)}`)
        else upstreamsSeen[path === '/api/items' ? 'api' : 'public'].add(upstreamOf(res.body))
      } catch (err) {
        failures.push(`${path}: ${(err as Error).message}`)
      }
    }
  }
  const loadStarted = performance.now()
  const load = Promise.all(Array.from({ length: WORKERS }, async (_, n) => { await worker(n) }))
  const timings: Record<string, number> = {}
  /** Lets the load run for `requests` more requests (each reload lands amid traffic). */
  const amidLoad = async (requests: number): Promise<void> => {
    const target = run.completed + requests
    await waitFor(`${requests} more requests of load`, () => run.completed >= target ? true : undefined, WAIT_MS)
  }

  try {
    // 1. A good reload: a new route, and /public moved to the second upstream.
    await amidLoad(WORKERS * 20)
    let mark = gateway.mark()
    let sent = reloadWith((config) => {
      config.routes.push({ name: 'v2', prefix: '/v2', upstreams: [second.url], stripPrefix: true, auth: 'required', validation: 'local', audience: 'demo-api', timeout: 30 })
      const open = config.routes.find((r) => r.prefix === '/public')
      if (open !== undefined) open.upstreams = [second.url]
    })
    timings['new route live after SIGHUP'] = await until('/v2/items', second.url, sent)
    timings['/public moved after SIGHUP'] = await until('/public/items', second.url, sent)
    t.notMatch(gateway.outputSince(mark), /"level":50/, 'no error logged for the good file')

    // 2. An invalid file: each problem logged with its place, the old routes keep serving.
    await amidLoad(WORKERS * 10)
    mark = gateway.mark()
    const good = `${JSON.stringify(gateway.config, null, 2)}\n`
    const bad = good
      .replace(`"upstreams": [\n        "${first.url}"\n      ]`, '"upstreams": [\n        "not a url"\n      ]')
      .replace('"auth": "none"', '"auth": "maybe"')
      .replace('"routes": [', '"colour": "blue",\n  "routes": [')
    t.not(bad, good, 'the invalid file differs')
    writeText(gateway.configFile, bad)
    sent = performance.now()
    gateway.reload()
    await gateway.waitForOutput(/config reload rejected/, { since: mark, timeoutMs: WAIT_MS })
    timings['invalid file rejected after SIGHUP'] = Math.round(performance.now() - sent)
    const log = gateway.outputSince(mark)
    t.match(log, /gateway\.yaml:\d+:\d+ routes\[0\]\.upstreams\[0\] must match format \\"uri\\"/, 'the bad upstream, located')
    t.match(log, /gateway\.yaml:\d+:\d+ routes\[1\]\.auth /, 'the bad auth value, located')
    t.match(log, /gateway\.yaml:\d+:\d+ \(root\) unknown key \\"colour\\"/, 'the unknown key, located')
    t.match(log, /the old routes keep serving/)
    t.equal((await request(`${gateway.url}/v2/items`, { headers: bearer(token) })).status, 200, 'the routes of the last good file still serve')

    // 3. A second good file: another route; /api now round robin over both upstreams.
    await amidLoad(WORKERS * 10)
    sent = reloadWith((config) => {
      config.routes.push({ name: 'v3', prefix: '/v3', upstreams: [first.url], stripPrefix: false, auth: 'none', validation: 'local', timeout: 30 })
      const api = config.routes.find((r) => r.prefix === '/api')
      if (api !== undefined) api.upstreams = [first.url, second.url]
    })
    timings['second good file live after SIGHUP'] = await until('/v3/items', first.url, sent)
    await amidLoad(WORKERS * 10)
    await amidLoad(Math.max(0, MIN_REQUESTS - run.completed))
  } finally {
    run.isRunning = false
    await load
  }
  const elapsed = performance.now() - loadStarted
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  t.comment(`${total} requests in ${(elapsed / 1000).toFixed(1)} s (${Math.round(total / (elapsed / 1000))} req/s, ${WORKERS} concurrent), latency ${summarize(latencies)}`)
  t.comment(`by route and status: ${JSON.stringify(Object.fromEntries(counts))}`)
  t.comment(`reloads (ms): ${JSON.stringify(timings)}`)
  t.same(failures.slice(0, 20), [], `no failed request (${failures.length} of ${total})`)
  t.ok(total >= MIN_REQUESTS, `the load was steady (${total} requests)`)
  t.same([...upstreamsSeen.public].sort(), [first.url, second.url].sort(), '/public was served by the old upstream, then the new one')
  t.same([...upstreamsSeen.api].sort(), [first.url, second.url].sort(), '/api ended up on both upstreams')

  const v2 = await request<Echo>(`${gateway.url}/v2/items?x=1`, { headers: bearer(token) })
  t.equal(v2.status, 200, 'the new route works')
  t.equal(v2.body.path, '/items?x=1', 'with its prefix stripped')
  t.equal(v2.body.headers['x-auth-subject'], 'alice', 'and the identity headers')
  t.equal((await request(`${gateway.url}/v2/items`)).status, 401, 'and its auth')
  t.equal((await request(`${gateway.url}/v3/items`)).status, 200, 'the second new route (auth: none)')
  t.equal(gateway.isRunning, true, 'the same gateway process throughout')
})
