// Failover, passive and active health checks, all down, reload (issue 17), against real
// upstream servers that can be stopped, restarted on their port, reset or hang.
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { captureLog } from '../../issuer/test/fixtures/log-capture.ts'
import { parseGatewayConfig } from '../src/load-config.ts'
import { gatewayConfig, startGateway } from './fixtures/gateway.ts'

const NO_ISSUER = 'http://127.0.0.1:1'

type Mode = 'ok' | 'reset' | 'hang' | 'status'

/** An upstream on a port of its own that can stop, start again on it, and misbehave on demand. */
class Upstream {
  readonly name: string
  readonly port: number
  mode: Mode = 'ok'
  status = 503
  /** Status of the active health check path. */
  healthStatus = 200
  readonly seen: Array<{ method: string, path: string, body: string }> = []
  healthChecks = 0
  #server: Server | undefined
  readonly #sockets = new Set<Socket>()

  constructor (name: string, port: number) {
    this.name = name
    this.port = port
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  count (method?: string): number {
    return this.seen.filter((s) => method === undefined || s.method === method).length
  }

  async start (): Promise<void> {
    const server = this.#server = createServer((req, res) => { this.#answer(req, res) })
    server.on('connection', (socket) => { this.#sockets.add(socket); socket.once('close', () => this.#sockets.delete(socket)) })
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
  }

  async stop (): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    for (const socket of this.#sockets) socket.destroy()
    server.close()
    await once(server, 'close')
  }

  #answer (req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/health') {
      this.healthChecks++
      req.resume()
      res.writeHead(this.healthStatus).end()
      return
    }
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      this.seen.push({ method: req.method ?? '', path: req.url ?? '', body })
      if (this.mode === 'reset') { req.socket.destroy(); return }
      if (this.mode === 'hang') return
      if (this.mode === 'status') { res.writeHead(this.status, { 'content-type': 'application/json' }).end(JSON.stringify({ from: this.name, status: this.status })); return }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ from: this.name, body }))
    })
  }
}

async function upstream (t: Test, name: string, running = true): Promise<Upstream> {
  const u = new Upstream(name, await freePort())
  if (running) await u.start()
  t.teardown(async () => { await u.stop() })
  return u
}

/** Polls `check` until it holds; fails the test after 20 s (conditions, never fixed sleeps). */
async function waitFor (what: string, check: () => boolean | undefined | Promise<boolean | undefined>): Promise<void> {
  const deadline = Date.now() + 20_000
  while (await check() !== true) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function metric (app: FastifyInstance, pattern: RegExp): Promise<number | undefined> {
  const text = (await app.inject('/metrics')).body
  for (const line of text.split('\n')) {
    if (pattern.test(line)) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

const upMetric = (route: string, u: Upstream): RegExp => new RegExp(`^gatehouse_gateway_upstream_up\\{route="${route}",upstream="${u.url.replace(/[.]/g, '\\.')}"\\} `)

t.test('one of two upstreams down from the start: no request fails, and it is ejected after 3 tries', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b', false)
  const log = captureLog('info')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none }
`), { logger: log.logger })
  const statuses: number[] = []
  for (let i = 0; i < 200; i++) statuses.push((await app.inject(i % 2 === 0 ? '/svc/x' : { method: 'POST', url: '/svc/x', payload: `body ${i}` })).statusCode)
  t.same(statuses.filter((s) => s !== 200), [], '0 failed requests out of 200 (GETs and POSTs)')
  t.equal(a.count(), 200, 'every request reached the running upstream once')
  t.same(a.seen.filter((s) => s.method === 'POST').map((s) => s.body), Array.from({ length: 100 }, (_, i) => `body ${2 * i + 1}`), 'POST bodies intact after failover')
  t.equal(await metric(app, upMetric('svc', b)), 0, 'the stopped upstream is out of rotation')
  t.equal(await metric(app, upMetric('svc', a)), 1)
  t.equal(await metric(app, /^gatehouse_gateway_upstream_failures_total\{route="svc",upstream="[^"]+",kind="connect"\} [1-9]/), 3, 'three connection failures, then no more tries during the back-off')
  t.equal(await metric(app, /^gatehouse_gateway_upstream_ejections_total\{route="svc",upstream="http:\/\/127\.0\.0\.1:\d+"\} [1-9]/), 1)
  t.equal(await metric(app, /^gatehouse_gateway_upstream_retries_total\{route="svc",reason="not_sent"\} /), 3)
  const changes = log.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('upstream '))
  t.equal(changes.length, 1, 'one log line for the ejection, none per request')
  t.match(changes[0], { level: 40, route: 'svc', upstream: b.url, reason: 'connect', failures: 3, backoff: 10, msg: 'upstream ejected: it failed too many requests in a row' })
})

t.test('all upstreams down: 503 with Retry-After at once, no connection tried during the back-off', async (t) => {
  const a = await upstream(t, 'a', false)
  const b = await upstream(t, 'b', false)
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { backoff: 30 } } }
`))
  const first = await app.inject('/svc/x')
  t.equal(first.statusCode, 503, 'every connection refused: 503, not 502')
  t.match(first.json(), { error: 'temporarily_unavailable', error_description: 'no upstream of this route could be reached' })
  for (let i = 0; i < 4; i++) await app.inject('/svc/x')
  const tries = (): Promise<number | undefined> => metric(app, /^gatehouse_gateway_upstream_failures_total\{route="svc",upstream="[^"]+",kind="connect"\} [1-9]/)
  t.equal(await metric(app, upMetric('svc', a)), 0)
  t.equal(await metric(app, upMetric('svc', b)), 0)
  const before = (await app.inject('/metrics')).body.match(/kind="connect"\} \d+/g)
  const res = await app.inject('/svc/x')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { error: 'temporarily_unavailable', error_description: 'no upstream of this route is available (all failed their health checks)' })
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter >= 29 && retryAfter <= 30, `Retry-After is the back-off left (${retryAfter})`)
  t.same((await app.inject('/metrics')).body.match(/kind="connect"\} \d+/g), before, 'no connection was tried')
  t.ok((await tries()) !== undefined)
})

t.test('an ejected upstream restarted rejoins after its back-off, through one half-open probe', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const log = captureLog('info')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { failures: 2, backoff: 0.3 } } }
`), { logger: log.logger })
  await b.stop()
  for (let i = 0; i < 6; i++) t.equal((await app.inject('/svc/x')).statusCode, 200)
  t.equal(await metric(app, upMetric('svc', b)), 0, 'ejected')
  await b.start()
  // Back within the back-off: the first request after it is the probe, and it succeeds.
  await waitFor('b back in rotation', async () => {
    t.equal((await app.inject('/svc/x')).statusCode, 200)
    return await metric(app, upMetric('svc', b)) === 1 ? true : undefined
  })
  const served = b.count()
  for (let i = 0; i < 10; i++) await app.inject('/svc/x')
  t.equal(b.count() - served, 5, 'round robin again: half the requests')
  t.ok(log.lines().some((l) => l.msg === 'upstream back in rotation: it answered its half-open probe' && l.upstream === b.url))
})

t.test('a failed probe doubles the back-off; one probe at a time', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b', false)
  const log = captureLog('info')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { failures: 1, backoff: 0.2, maxBackoff: 0.4 } } }
`), { logger: log.logger })
  await app.inject('/svc/x')
  await app.inject('/svc/x')
  await waitFor('two more ejections', async () => {
    await app.inject('/svc/x')
    return log.lines().filter((l) => l.msg === 'upstream ejected again: its half-open probe failed').length >= 2 ? true : undefined
  })
  const again = log.lines().filter((l) => l.msg === 'upstream ejected again: its half-open probe failed')
  t.same(again.map((l) => l.backoff).slice(0, 2), [0.4, 0.4], 'doubled, capped at maxBackoff')
  t.equal(log.lines().filter((l) => l.msg === 'upstream ejected: it failed too many requests in a row').length, 1)

  // While a probe is in flight (b hangs), other requests do not go to b.
  b.mode = 'hang'
  await b.start()
  const sent: Array<Promise<unknown>> = []
  await waitFor('the probe reaches b', async () => {
    sent.push(app.inject('/svc/x?probe').catch(() => {}))
    await new Promise((resolve) => setTimeout(resolve, 20))
    return b.count() > 0 ? true : undefined
  })
  const held = b.count()
  for (let i = 0; i < 20; i++) t.equal((await app.inject('/svc/x')).statusCode, 200)
  t.equal(b.count(), held, 'nothing but the probe reached the half-open upstream')
})

t.test('a POST that may have reached its upstream is never sent again; a GET is retried once elsewhere', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  a.mode = 'reset'
  const { app, url } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { failures: 100 } } }
`), { listen: true })
  for (let i = 0; i < 6; i++) {
    const post = await fetch(`${url}/svc/x`, { method: 'POST', body: `order ${i}` })
    if (post.status !== 200) t.equal(post.status, 502, 'reset after the request reached a: 502')
  }
  const posts = [...a.seen, ...b.seen].filter((s) => s.method === 'POST').map((s) => s.body).sort()
  t.same(posts, Array.from({ length: 6 }, (_, i) => `order ${i}`).sort(), 'each POST reached one upstream exactly once')
  for (const method of ['PUT', 'PATCH', 'DELETE']) {
    const before = a.count(method) + b.count(method)
    const res = await fetch(`${url}/svc/x`, { method })
    const after = a.count(method) + b.count(method)
    t.equal(after - before, 1, `${method} sent once (${res.status})`)
  }
  const gets: number[] = []
  for (let i = 0; i < 6; i++) gets.push((await fetch(`${url}/svc/x`)).status)
  t.same(gets, [200, 200, 200, 200, 200, 200], 'GETs retried on b after a reset')
  t.ok((await metric(app, /^gatehouse_gateway_upstream_retries_total\{route="svc",reason="idempotent"\} /) ?? 0) >= 3)
  t.ok((await metric(app, /^gatehouse_gateway_upstream_failures_total\{route="svc",upstream="[^"]+",kind="reset"\} /) ?? 0) >= 3)
})

t.test('a timed-out GET is retried on the next upstream; a POST gets its 504; retries: 0 and retryMethods', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  a.mode = 'hang'
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, timeout: 0.3, health: { passive: { failures: 100 } } }
  - { name: once, prefix: /once, upstreams: ['${a.url}', '${b.url}'], auth: none, timeout: 0.3, retries: 0, health: { passive: { failures: 100 } } }
  - { name: put, prefix: /put, upstreams: ['${a.url}', '${b.url}'], auth: none, timeout: 0.3, retryMethods: [PUT], health: { passive: { failures: 100 } } }
`))
  const results = []
  for (let i = 0; i < 4; i++) results.push((await app.inject('/svc/x')).statusCode)
  t.same(results, [200, 200, 200, 200], 'the hung upstream timed out, b answered')
  const posts = []
  for (let i = 0; i < 4; i++) posts.push((await app.inject({ method: 'POST', url: '/svc/x', payload: 'p' })).statusCode)
  t.same(posts.sort(), [200, 200, 504, 504], 'a POST that timed out is not sent again')
  const once = []
  for (let i = 0; i < 4; i++) once.push((await app.inject('/once/x')).statusCode)
  t.same(once.sort(), [200, 200, 504, 504], 'retries: 0')
  const puts = []
  for (let i = 0; i < 4; i++) puts.push((await app.inject({ method: 'PUT', url: '/put/x' })).statusCode)
  t.same(puts, [200, 200, 200, 200], 'a bodyless PUT listed in retryMethods is retried')
  const gets = []
  for (let i = 0; i < 4; i++) gets.push((await app.inject('/put/x')).statusCode)
  t.same(gets.sort(), [200, 200, 504, 504], 'GET is not in this route\'s retryMethods')
  a.mode = 'ok'
})

t.test('listed 5xx answers count as failures, are passed on, and are never retried', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  a.mode = 'status'
  a.status = 503
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none }
  - { name: lenient, prefix: /lenient, upstreams: ['${a.url}'], auth: none, health: { passive: { statuses: [502] } } }
`))
  const statuses = []
  for (let i = 0; i < 10; i++) statuses.push((await app.inject('/svc/x')).statusCode)
  t.same(statuses, [503, 200, 503, 200, 503, 200, 200, 200, 200, 200], 'a\'s 503s reach the caller until a is ejected after 3')
  t.equal(a.count(), 3, 'never retried')
  t.equal(await metric(app, upMetric('svc', a)), 0)
  for (let i = 0; i < 5; i++) t.equal((await app.inject('/lenient/x')).statusCode, 503)
  t.equal(await metric(app, upMetric('lenient', a)), 1, 'a status not listed is no failure')
})

t.test('active health checks: an upstream failing them gets no traffic until it passes them again', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const log = captureLog('info')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - name: svc
    prefix: /svc
    upstreams: ['${a.url}', '${b.url}']
    auth: none
    health: { active: { path: /health, interval: 0.05, timeout: 0.5, healthy: 2, unhealthy: 2 } }
`), { logger: log.logger })
  await waitFor('checks running', () => a.healthChecks > 1 && b.healthChecks > 1 ? true : undefined)
  b.healthStatus = 500
  await waitFor('b out of rotation', async () => await metric(app, upMetric('svc', b)) === 0 ? true : undefined)
  const served = b.count()
  for (let i = 0; i < 10; i++) t.equal((await app.inject('/svc/x')).statusCode, 200)
  t.equal(b.count(), served, 'no traffic to the unhealthy upstream')
  b.healthStatus = 204
  await waitFor('b back', async () => await metric(app, upMetric('svc', b)) === 1 ? true : undefined)
  for (let i = 0; i < 10; i++) await app.inject('/svc/x')
  t.equal(b.count() - served, 5)
  t.ok(log.lines().some((l) => l.msg === 'upstream out of rotation: it failed its active health checks' && l.upstream === b.url && l.failures === 2))
  t.ok(log.lines().some((l) => l.msg === 'upstream back in rotation: it passed its active health checks' && l.upstream === b.url))
  // A check that times out is a failure too.
  b.healthStatus = 200
  const checks = a.healthChecks
  await app.close()
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.ok(a.healthChecks - checks <= 1, 'checks stop when the gateway closes')
})

t.test('both down under active checks: 503 at once with the check interval as Retry-After', async (t) => {
  const a = await upstream(t, 'a')
  a.healthStatus = 503
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}'], auth: none, health: { active: { path: /health, interval: 0.05, unhealthy: 1 } } }
`))
  await waitFor('a out', async () => await metric(app, upMetric('svc', a)) === 0 ? true : undefined)
  const res = await app.inject('/svc/x')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.equal(a.count(), 0)
})

t.test('a reload keeps the health state of the upstreams a route keeps', async (t) => {
  const a = await upstream(t, 'a', false)
  const b = await upstream(t, 'b')
  const c = await upstream(t, 'c')
  const yaml = (upstreams: Upstream[], extra = ''): string => `
routes:
  - { name: svc, prefix: /svc, upstreams: [${upstreams.map((u) => `'${u.url}'`).join(', ')}], auth: none, health: { passive: { backoff: 60 } }${extra} }
`
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, yaml([a, b])))
  for (let i = 0; i < 6; i++) t.equal((await app.inject('/svc/x')).statusCode, 200)
  t.equal(await metric(app, upMetric('svc', a)), 0, 'a ejected')
  app.gateway.reload(parseGatewayConfig(`issuer: ${NO_ISSUER}\n${yaml([a, c], ', timeout: 5')}`))
  t.equal(await metric(app, upMetric('svc', a)), 0, 'a still ejected after the reload')
  t.equal(await metric(app, upMetric('svc', b)), undefined, 'b, removed, is no longer reported')
  t.equal(await metric(app, upMetric('svc', c)), 1)
  const served = { a: a.count(), c: c.count() }
  for (let i = 0; i < 6; i++) t.equal((await app.inject('/svc/x')).statusCode, 200)
  t.equal(c.count() - served.c, 6, 'everything to c: a is not tried again')
  t.equal(await metric(app, /^gatehouse_gateway_upstream_failures_total\{route="svc",upstream="[^"]+",kind="connect"\} [1-9]/), 3, 'no new connection to a')
})

t.test('config: retryMethods takes idempotent methods only; the health settings are checked', async (t) => {
  const bad = (route: string): string => {
    try {
      parseGatewayConfig(`issuer: ${NO_ISSUER}\nroutes:\n  - { prefix: /svc, upstreams: ['http://127.0.0.1:1'], ${route} }\n`)
      return 'accepted'
    } catch (err) {
      return (err as Error).message
    }
  }
  t.match(bad('retryMethods: [GET, POST]'), /gateway\.yaml:3:\d+.*retryMethods/)
  t.match(bad('retries: 9'), /gateway\.yaml:3:\d+.*retries/)
  t.match(bad('health: { passive: { backoff: 30, maxBackoff: 10 } }'), /gateway\.yaml:3:\d+.*maxBackoff.*backoff/)
  t.match(bad('health: { active: { path: health } }'), /gateway\.yaml:3:\d+.*path/)
  t.match(bad('health: { passive: { statuses: [404] } }'), /gateway\.yaml:3:\d+.*statuses/)
  t.equal(bad('health: { passive: { failures: 0 }, active: { path: /health } }, retries: 0, retryMethods: [PUT]'), 'accepted')
})
