// Failover, passive and active health checks, all down, reload (issue 17), against real
// upstream servers that can be stopped, restarted on their port, reset or hang.
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, type AddressInfo, type Socket } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { issueCertificate, makeCa } from '@gatehouse/test-kit/certificates'
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
  /** Requests whose headers arrived (bodies maybe still coming). */
  arrived = 0
  /** Requests whose connection went before their body was whole. */
  cut = 0
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
    this.arrived++
    req.once('close', () => { if (!req.complete) this.cut++ })
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

// Review findings (each reproduced before its fix).

t.test('clients that abandon their uploads are not charged to the upstreams (review: outage by aborted POSTs)', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const { app, url } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none }
`), { listen: true })
  const { port } = new URL(url)
  for (let i = 0; i < 8; i++) {
    const socket = connect(Number(port), '127.0.0.1')
    await once(socket, 'connect')
    socket.write('POST /svc/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000))
    await waitFor('the upload to reach an upstream', () => a.arrived + b.arrived > i ? true : undefined)
    socket.destroy()
  }
  // The gateway has seen every abort once the upstreams have lost their requests too.
  await waitFor('the aborts passed on to the upstreams', () => a.cut + b.cut === 8 ? true : undefined)
  t.equal(await metric(app, upMetric('svc', a)), 1)
  t.equal(await metric(app, upMetric('svc', b)), 1)
  t.equal(await metric(app, /^gatehouse_gateway_upstream_failures_total\{route="svc",upstream="[^"]+",kind="reset"\} [1-9]/), undefined, 'no failure charged')
  t.equal((await app.inject('/svc/x')).statusCode, 200)
})

t.test('the last upstream in rotation is not ejected for answers it gave (review: one broken path took every instance out)', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  a.mode = b.mode = 'status'
  const log = captureLog('info')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none }
`), { logger: log.logger })
  for (let i = 0; i < 12; i++) t.equal((await app.inject('/svc/reports')).statusCode, 503, 'the upstreams\' own 503s')
  const up = [await metric(app, upMetric('svc', a)), await metric(app, upMetric('svc', b))]
  t.same(up.sort(), [0, 1], 'one ejected, the last one kept')
  a.mode = b.mode = 'ok'
  t.equal((await app.inject('/svc/orders')).statusCode, 200, 'other paths still served')
  t.equal(log.lines().filter((l) => l.msg === 'upstream ejected: it failed too many requests in a row').length, 1)
})

t.test('an answer to a request sent before the ejection does not lift it (review: flapping)', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { failures: 2, backoff: 60 } } }
`))
  // A slow request to a is in flight...
  a.mode = 'hang'
  const slow = app.inject('/svc/slow')
  await waitFor('the slow request at a', () => a.count() === 1 ? true : undefined)
  // ...while a's next answers fail it out of rotation.
  a.mode = 'status'
  for (let i = 0; i < 4; i++) await app.inject('/svc/x')
  t.equal(await metric(app, upMetric('svc', a)), 0)
  // The slow one now answers 200: a stays out.
  a.mode = 'ok'
  const stop = a.stop()
  await slow
  await stop
  t.equal(await metric(app, upMetric('svc', a)), 0, 'still ejected')
})

t.test('during an outage: one log line per change, none per request (review: log noise)', async (t) => {
  const a = await upstream(t, 'a', false)
  const b = await upstream(t, 'b', false)
  const log = captureLog('info')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { backoff: 60 } } }
`), { logger: log.logger })
  for (let i = 0; i < 4; i++) await app.inject('/svc/x')
  t.equal(await metric(app, upMetric('svc', a)), 0)
  t.equal(await metric(app, upMetric('svc', b)), 0)
  const before = log.lines().filter((l) => (l.level as number) >= 40).length
  for (let i = 0; i < 20; i++) t.equal((await app.inject('/svc/x')).statusCode, 503)
  t.equal(log.lines().filter((l) => (l.level as number) >= 40).length, before, 'no warn line for the 20 requests refused while both are out')
  t.equal(log.lines().filter((l) => l.msg === 'request completed' && l.statusCode === 503).length, 24, 'each request still has its own line')
})

t.test('WebSocket upgrades fail over too, and feed the health checks (review)', async (t) => {
  const down = await upstream(t, 'down', false)
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  wss.on('connection', (socket) => { socket.send('hello') })
  const live = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`
  const { app, url } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: ws, prefix: /ws, upstreams: ['${down.url}', '${live}'], auth: none, websocket: {} }
`), { listen: true })
  for (let i = 0; i < 6; i++) {
    const socket = new WebSocket(`${url.replace('http:', 'ws:')}/ws/x`)
    const [message] = await once(socket, 'message') as [Buffer]
    t.equal(message.toString(), 'hello', `upgrade ${i} reached the live upstream`)
    socket.close()
  }
  t.equal(await metric(app, upMetric('ws', down)), 0, 'the down one is ejected')
  t.equal(await metric(app, /^gatehouse_gateway_upstream_retries_total\{route="ws",reason="not_sent"\} /), 3, 'each refused connection moved on, counted as not sent')
})

t.test('active checks hold no connection open, and stop with the gateway (review: socket leak)', async (t) => {
  let open = 0
  let checks = 0
  const server = createServer((req, res) => {
    checks++
    // An endless body: the check must not wait for its end.
    res.writeHead(200)
    res.write('event\n')
  })
  server.on('connection', (socket) => { open++; socket.once('close', () => { open-- }) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${target}'], auth: none, health: { active: { path: /events, interval: 0.05 } } }
`))
  await waitFor('20 checks', () => checks >= 20 ? true : undefined)
  t.ok(open <= 2, `at most the check in flight is open (${open})`)
  t.equal(await metric(app, upMetric('svc', { url: target } as Upstream)), 1)
  await app.close()
  await waitFor('no connection left', () => open === 0 ? true : undefined)
  const after = checks
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(checks, after, 'no check after close')
})

t.test('passive checks turned off by a reload end an ejection in force (review)', async (t) => {
  const a = await upstream(t, 'a', false)
  const b = await upstream(t, 'b')
  const yaml = (failures: number): string => `issuer: ${NO_ISSUER}\nroutes:\n  - { name: svc, prefix: /svc, upstreams: ['${a.url}', '${b.url}'], auth: none, health: { passive: { failures: ${failures}, backoff: 60 } } }\n`
  const { app } = await startGateway(t, parseGatewayConfig(yaml(3)))
  for (let i = 0; i < 6; i++) await app.inject('/svc/x')
  t.equal(await metric(app, upMetric('svc', a)), 0)
  await a.start()
  app.gateway.reload(parseGatewayConfig(yaml(0)))
  t.equal(await metric(app, upMetric('svc', a)), 1, 'back at once')
  for (let i = 0; i < 10; i++) await app.inject('/svc/x')
  t.equal(a.count(), 5, 'and served')
})

t.test('https upstreams: the certificate is checked; a TLS failure is "nothing sent", so even a POST goes on (review: reply-from turns verification off)', async (t) => {
  const dir = t.testdir()
  const ca = makeCa(dir)
  const cert = issueCertificate(ca, dir, 'upstream')
  let reached = 0
  // Signed by a CA the gateway does not trust: it must not be talked to.
  const untrusted = createHttpsServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => { reached++; req.resume(); res.end('{"from":"untrusted"}') })
  untrusted.listen(0, '127.0.0.1')
  await once(untrusted, 'listening')
  t.teardown(() => { untrusted.closeAllConnections(); untrusted.close() })
  const b = await upstream(t, 'b')
  const { app } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: only, prefix: /only, upstreams: ['https://127.0.0.1:${(untrusted.address() as AddressInfo).port}'], auth: none }
  - { name: both, prefix: /both, upstreams: ['https://127.0.0.1:${(untrusted.address() as AddressInfo).port}', '${b.url}'], auth: none }
`))
  const only = await app.inject('/only/x')
  t.equal(only.statusCode, 503, 'an untrusted certificate: not reached')
  for (let i = 0; i < 4; i++) {
    const res = await app.inject({ method: 'POST', url: '/both/x', payload: `p${i}` })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { from: 'b', body: `p${i}` })
  }
  t.equal(reached, 0, 'no request reached the upstream with the untrusted certificate')
})

t.test('no upstream in rotation: 503 before any 100 Continue (review)', async (t) => {
  const a = await upstream(t, 'a', false)
  const { url } = await startGateway(t, gatewayConfig(NO_ISSUER, `
routes:
  - { name: svc, prefix: /svc, upstreams: ['${a.url}'], auth: none, health: { passive: { failures: 1, backoff: 60 } } }
`), { listen: true })
  t.equal((await fetch(`${url}/svc/x`)).status, 503)
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write('POST /svc/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
  let data = ''
  socket.on('data', (chunk: Buffer) => { data += chunk.toString() })
  await once(socket, 'close')
  t.notMatch(data, /100 Continue/)
  t.match(data, /^HTTP\/1\.1 503 /)
  t.match(data, /retry-after: (59|60)\r\n/i, 'Retry-After: the back-off left')
})
