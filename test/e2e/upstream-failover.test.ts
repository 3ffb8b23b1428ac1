/**
 * Upstream failover in real processes (issue 17): the gateway's bin in front of two upstream
 * processes (test/fixtures/counting-upstream.ts), one down from the start, one SIGKILLed under
 * load, both down, one restarted; and never a POST sent twice. The kill-under-load figures are
 * printed as a comment (the closing note quotes them).
 */
import t from 'tap'
import { join } from 'node:path'
import { parseGatewayConfig } from '../../packages/gateway/src/load-config.ts'
import { GatewayProcess, ROOT, Service, startOnFreePort, waitFor, writeText } from '../fixtures/processes.ts'

const UPSTREAM = join(ROOT, 'test/fixtures/counting-upstream.ts')
const WORKERS = 8
/** Requests after the ejection, counted (not timed: a loaded machine just takes longer). */
const AFTER_EJECTION = 400
const WAIT_MS = 60_000
/** The back-off: short, so the restart is seen quickly; doubled at most once by failed probes. */
const BACKOFF = 1
const MAX_BACKOFF = 2

const dir = t.testdir()
const upstream = async (name: string): Promise<Service> => await startOnFreePort((port) => new Service({ name, args: [UPSTREAM, name, String(port)], port, readyPath: '/healthz' }))
const a = await upstream('upstream-a')
const b = await upstream('upstream-b')
t.teardown(async () => { await Promise.all([a.stop(), b.stop()]) })

const yaml = (port: number): string => `
listen: { host: 127.0.0.1, port: ${port} }
issuer: http://127.0.0.1:1
log: { level: warn }
proxy: { connectTimeout: 2 }
routes:
  - name: svc
    prefix: /svc
    upstreams: ['${a.url}', '${b.url}']
    auth: none
    health: { passive: { failures: 3, backoff: ${BACKOFF}, maxBackoff: ${MAX_BACKOFF} } }
  - name: patient
    prefix: /patient
    upstreams: ['${a.url}', '${b.url}']
    auth: none
    health: { passive: { failures: 3, backoff: 120 } }
  - name: checked
    prefix: /checked
    upstreams: ['${a.url}', '${b.url}']
    auth: none
    health: { passive: { failures: 0 }, active: { path: /healthz, interval: 0.1, timeout: 1, healthy: 1, unhealthy: 1 } }
`
const gateway = await startOnFreePort((port) => {
  const configFile = join(dir, 'gateway.yaml')
  writeText(configFile, yaml(port))
  // No issuer here (auth: none routes): /healthz, not /readyz, says it is up.
  return new GatewayProcess({ name: 'gateway', port, configFile, config: parseGatewayConfig(yaml(port), configFile), readyPath: '/healthz' })
})
t.teardown(async () => { await gateway.stop() })
t.afterEach(async (t) => {
  if (t.passing()) return
  for (const s of [gateway, a, b]) t.comment(`--- ${s.name}:\n${s.output.slice(-4000)}`)
})

/** POST ids each upstream printed, all of them. */
const posted = (): string[] => [...a.output.matchAll(/^seen POST (\S+)$/gm), ...b.output.matchAll(/^seen POST (\S+)$/gm)].map((m) => m[1] ?? '')
const seenBy = (s: Service, since = 0): number => (s.outputSince(since).match(/^seen /gm) ?? []).length

async function send (path: string, id: string, method = 'GET'): Promise<{ status: number, retryAfter: string | null, upstream?: string }> {
  const res = await fetch(`${gateway.url}${path}`, method === 'POST'
    ? { method, body: id, signal: AbortSignal.timeout(WAIT_MS) }
    : { headers: { 'x-test-id': id }, signal: AbortSignal.timeout(WAIT_MS) })
  const text = await res.text()
  let upstream: string | undefined
  try { upstream = (JSON.parse(text) as { upstream?: string }).upstream } catch { /* an error body */ }
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ...(upstream === undefined ? {} : { upstream }) }
}

async function metrics (): Promise<string> {
  return await gateway.metrics()
}

const isUp = async (route: string, s: Service): Promise<boolean> => new RegExp(`^gatehouse_gateway_upstream_up\\{route="${route}",upstream="${s.url}"\\} 1$`, 'm').test(await metrics())

let postIds = 0

t.test('one of two upstreams down from the start: 0 failed requests out of 200', async (t) => {
  await b.stop()
  const statuses = new Map<number, number>()
  for (let i = 0; i < 200; i++) {
    const method = i % 4 === 3 ? 'POST' : 'GET'
    const { status } = await send('/svc/x', method === 'POST' ? `p${postIds++}` : `g${i}`, method)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  t.same(Object.fromEntries(statuses), { 200: 200 })
  t.equal(seenBy(a), 200, 'all 200 reached the running upstream, each once')
  t.notOk(await isUp('svc', b), 'the stopped one is out of rotation')
  t.match(gateway.output, /"msg":"upstream ejected: it failed too many requests in a row"/)
  t.equal((gateway.output.match(/upstream ejected/g) ?? []).length, 1, 'one log line, not one per request')
})

t.test('restarted: back in rotation within the back-off', async (t) => {
  await b.start()
  const restarted = performance.now()
  const since = b.mark()
  await waitFor('a request reaching the restarted upstream', async () => {
    await send('/svc/x', 'after-restart')
    return seenBy(b, since) > 0 ? true : undefined
  }, WAIT_MS, 20)
  const ms = Math.round(performance.now() - restarted)
  t.comment(`restarted upstream back in rotation after ${ms} ms (back-off ${BACKOFF} s, at most ${MAX_BACKOFF} s)`)
  t.ok(ms < (MAX_BACKOFF + 10) * 1000, `within the back-off (plus the machine's slack): ${ms} ms`)
  t.ok(await isUp('svc', b))
})

t.test('one upstream killed under load: only requests in flight fail, none after the ejection; no POST twice', async (t) => {
  const results: Array<{ status: number, method: string, started: number, ended: number }> = []
  let killedAt = Infinity
  let ejectedAt = Infinity
  let afterEjection = 0
  const mark = gateway.mark()
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; afterEjection < AFTER_EJECTION; i++) {
      const method = (n + i) % 3 === 0 ? 'POST' : 'GET'
      const started = performance.now()
      const { status } = await send('/svc/x', method === 'POST' ? `p${postIds++}` : `k${n}-${i}`, method).catch(() => ({ status: 0 }))
      const ended = performance.now()
      results.push({ status, method, started, ended })
      if (started > ejectedAt) afterEjection++
    }
  }
  const load = Promise.all(Array.from({ length: WORKERS }, async (_, n) => await worker(n)))
  // Under load for a while (counted), then the crash.
  await waitFor('load running', () => results.length >= 300 ? true : undefined, WAIT_MS, 10)
  const beforeKill = results.length
  killedAt = performance.now()
  await b.kill()
  await gateway.waitForOutput(/upstream ejected/, { since: mark, timeoutMs: WAIT_MS })
  ejectedAt = performance.now()
  await load
  const failed = results.filter((r) => r.status !== 200)
  const inFlight = results.filter((r) => r.started < killedAt && r.ended > killedAt).length
  const afterEject = failed.filter((r) => r.started > ejectedAt)
  const figures = {
    requests: results.length,
    beforeKill,
    inFlightAtKill: inFlight,
    failed: failed.length,
    failedByMethod: Object.fromEntries(['GET', 'POST'].map((m) => [m, failed.filter((r) => r.method === m).length])),
    failedStatuses: [...new Set(failed.map((r) => r.status))],
    failedAfterEjection: afterEject.length,
    msKillToEjectionSeen: Math.round(ejectedAt - killedAt),
    requestsAfterEjection: afterEjection
  }
  t.comment(`kill under load: ${JSON.stringify(figures)}`)
  t.ok(failed.length <= inFlight, `failures (${failed.length}) limited to the requests in flight at the kill (${inFlight})`)
  t.equal(failed.filter((r) => r.method === 'GET').length, 0, 'GETs in flight were retried on the other upstream')
  t.same(afterEject, [], 'no failure after the ejection')
  t.ok(failed.every((r) => r.status === 502), 'a POST that may have reached the killed upstream: 502, not retried')
  const ids = posted()
  t.equal(new Set(ids).size, ids.length, `no POST reached an upstream twice (${ids.length} POSTs seen)`)
})

t.test('both upstreams down: 503 at once with Retry-After', async (t) => {
  await a.stop()
  await b.stop()
  // A route whose back-off (120 s) outlasts this test on any machine.
  // Until both are ejected, each request tries both (refused at once) and gets a 503 too.
  const answers = []
  for (let i = 0; i < 8; i++) answers.push(await send('/patient/x', `down${i}`))
  t.ok(answers.every((r) => r.status === 503 && r.retryAfter !== null), 'every request: 503 with Retry-After')
  const connectFailures = async (): Promise<string[] | null> => (await metrics()).match(/^gatehouse_gateway_upstream_failures_total\{route="patient",upstream="[^"]+",kind="connect"\} \d+$/gm)
  const tries = await connectFailures()
  t.equal(tries?.length, 2)
  const started = performance.now()
  const more = []
  for (let i = 0; i < 50; i++) more.push(await send('/patient/x', `down-more${i}`))
  t.comment(`50 requests with both upstreams ejected: ${Math.round(performance.now() - started)} ms in all`)
  t.ok(more.every((r) => r.status === 503 && Number(r.retryAfter) > 100), 'each 503 says when to come back (the back-off left)')
  t.same(await connectFailures(), tries, 'no connection tried while both are ejected')
})

t.test('active health checks in processes: a dead upstream leaves rotation without a request failing', async (t) => {
  await a.start()
  await b.start()
  await waitFor('both in rotation on /checked', async () => await isUp('checked', a) && await isUp('checked', b) ? true : undefined, WAIT_MS)
  await b.kill()
  await waitFor('b out of rotation on /checked', async () => await isUp('checked', b) ? undefined : true, WAIT_MS)
  const since = a.mark()
  for (let i = 0; i < 20; i++) t.equal((await send('/checked/x', `c${i}`)).status, 200)
  t.equal(seenBy(a, since), 20, 'every request to the healthy one')
  await b.start()
  await waitFor('b back on /checked', async () => await isUp('checked', b) ? true : undefined, WAIT_MS)
})
