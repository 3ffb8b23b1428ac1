// The gateway's own proxy hop (forward.ts, issue 14) against hand-made upstreams: what an
// attack of the first version found (review), each reproduced here, and the answers cut short
// after they began (one log line each, counted).
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect as h2connect } from 'node:http2'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { issueCertificate, makeCa } from '@gatehouse/test-kit/certificates'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { captureLog, type LogCapture } from '../../issuer/test/fixtures/log-capture.ts'
import { build } from '../src/app.ts'
import { parseGatewayConfig } from '../src/load-config.ts'

const NO_ISSUER = 'http://127.0.0.1:1'

/** Polls `check` until it holds; fails the test after 20 s (conditions, never fixed sleeps). */
async function waitFor (what: string, check: () => boolean | undefined): Promise<void> {
  const deadline = Date.now() + 20_000
  while (check() !== true) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

interface Gateway { app: FastifyInstance, port: number, url: string, ca: Buffer, log: LogCapture }

/** A gateway on `routes` (YAML), plain or HTTP/2 over TLS, logging at info into memory. */
async function gateway (t: Test, routes: string, http2 = false): Promise<Gateway> {
  const dir = t.testdir()
  const ca = makeCa(dir)
  const cert = issueCertificate(ca, dir, 'gateway')
  const listen = http2 ? `listen: { host: 127.0.0.1, port: 0, tls: { cert: ${cert.cert}, key: ${cert.key} }, http2: true }` : 'listen: { host: 127.0.0.1, port: 0 }'
  const config = parseGatewayConfig(`issuer: ${NO_ISSUER}\n${listen}\n${routes}`, `${dir}/gateway.yaml`, {})
  const log = captureLog('info')
  const tls = http2 ? { files: { cert: cert.cert, key: cert.key, ca: undefined }, cert: readFileSync(cert.cert), key: readFileSync(cert.key), ca: undefined } : undefined
  const app = await build(config, { logger: log.logger, ...(tls === undefined ? {} : { tls }) })
  t.teardown(async () => { await app.close() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  return { app, port, url: `${http2 ? 'https' : 'http'}://127.0.0.1:${port}`, ca: readFileSync(ca.cert), log }
}

async function httpUpstream (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string, open: () => number }> {
  const server = createServer(handler)
  const sockets = new Set<Socket>()
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, open: () => sockets.size }
}

/** Answers each request head with `answer`, byte for byte (bodyless requests). */
async function rawUpstream (t: Test, answer: string): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    let buffered = ''
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1')
      for (let i = buffered.indexOf('\r\n\r\n'); i >= 0; i = buffered.indexOf('\r\n\r\n')) {
        buffered = buffered.slice(i + 4)
        socket.write(answer)
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A raw HTTP/1.1 exchange on a connection of its own: what came back until the gateway closed it. */
async function raw (port: number, bytes: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let data = ''
  socket.on('data', (c: Buffer) => { data += c.toString('latin1') })
  socket.write(bytes)
  await once(socket, 'close')
  return data
}

/** The number on the first exposition line matching `pattern`. */
async function metric (app: FastifyInstance, pattern: RegExp): Promise<number> {
  const text = (await app.inject('/metrics')).body
  const line = text.split('\n').find((l) => pattern.test(l))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('a client that leaves mid-upload after a failover: no crash, no listener left on its request (review)', async (t) => {
  const up = await httpUpstream(t, (req, res) => { req.resume(); req.on('end', () => res.end('ok')) })
  const gw = await gateway(t, `routes: [{ prefix: /, upstreams: ['http://127.0.0.1:${await freePort()}', '${up.url}'], auth: none }]`)
  const uncaught: Error[] = []
  const onUncaught = (err: Error): void => { uncaught.push(err) }
  // tap's own handler would end the file; caught here, it is an assertion.
  process.prependListener('uncaughtException', onUncaught)
  t.teardown(() => { process.off('uncaughtException', onUncaught) })
  let arrived = false
  const socket = connect(gw.port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'a'.repeat(1000))
  // The first upstream refused: the upload goes on to the second.
  await waitFor('the upload on the second upstream', () => (arrived = up.open() > 0))
  t.ok(arrived)
  socket.destroy()
  await waitFor('the upstream request ended with the client\'s', () => up.open() === 0)
  t.same(uncaught.map((e) => e.message), [], 'no uncaught exception')
})

t.test('failover with a body over 11 refusing upstreams: no MaxListenersExceededWarning, the body intact (review)', async (t) => {
  const bodies: string[] = []
  const up = await httpUpstream(t, (req, res) => {
    let body = ''
    req.setEncoding('latin1').on('data', (c: string) => { body += c }).on('end', () => { bodies.push(body); res.end('ok') })
  })
  const downs: string[] = []
  for (let i = 0; i < 11; i++) downs.push(`'http://127.0.0.1:${await freePort()}'`)
  const gw = await gateway(t, `routes: [{ prefix: /, upstreams: [${downs.join(', ')}, '${up.url}'], auth: none }]`)
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const answer = await raw(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc')
  t.match(answer, /^HTTP\/1\.1 200 /)
  t.same(bodies, ['abc'])
  // Warnings are emitted on the next tick: one more request makes sure any would be in.
  await raw(gw.port, 'GET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.same(warnings, [], 'no warning')
})

t.test('an upstream\'s 103 Early Hints or 102 before its answer: the final answer passes (review)', async (t) => {
  const early = await rawUpstream(t, 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')
  const processing = await rawUpstream(t, 'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok')
  const gw = await gateway(t, `routes:\n  - { prefix: /a, upstreams: ['${early}'], auth: none }\n  - { prefix: /b, upstreams: ['${processing}'], auth: none }`)
  const a = await raw(gw.port, 'GET /a/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(a, /^HTTP\/1\.1 200 OK/, 'the final answer reaches the client')
  t.match(a, /hello$/)
  t.match(await raw(gw.port, 'GET /b/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 201 [^]*ok$/)
  t.equal(await metric(gw.app, /^gatehouse_gateway_upstream_failures_total\{/), 0, 'not charged as a failure')
})

t.test('a 204 or 304 whose Content-Length is not 0 is passed on (review; RFC 9110 8.6)', async (t) => {
  const s204 = await rawUpstream(t, 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n')
  const s304 = await rawUpstream(t, 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n')
  const gw = await gateway(t, `routes:\n  - { prefix: /a, upstreams: ['${s204}'], auth: none }\n  - { prefix: /b, upstreams: ['${s304}'], auth: none }`)
  t.match(await raw(gw.port, 'GET /a/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 204 /, '204 passed on')
  const b = await raw(gw.port, 'GET /b/x HTTP/1.1\r\nHost: a\r\nIf-None-Match: "v1"\r\nConnection: close\r\n\r\n')
  t.match(b, /^HTTP\/1\.1 304 /, '304 passed on')
  t.match(b, /\r\netag: "v1"\r\n/i)
  await waitFor('both logged as completed', () => gw.log.lines().filter((l) => l.msg === 'request completed').length === 2)
})

t.test('HTTP/2: an answer Node cannot write gets a clean 502 with none of its fields; 103 then 200 gives the 200 (review)', async (t) => {
  const twoLocations = await rawUpstream(t, 'HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\nX-Upstream: leaked\r\nContent-Length: 0\r\n\r\n')
  const twoTypes = await rawUpstream(t, 'HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Encoding: gzip\r\nSet-Cookie: session=upstream\r\nContent-Length: 0\r\n\r\n')
  const early = await rawUpstream(t, 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')
  const gw = await gateway(t, `routes:\n  - { prefix: /a, upstreams: ['${twoLocations}'], auth: none }\n  - { prefix: /b, upstreams: ['${twoTypes}'], auth: none }\n  - { prefix: /c, upstreams: ['${early}'], auth: none }`, true)
  const session = h2connect(gw.url, { ca: gw.ca })
  t.teardown(() => { session.destroy() })
  const get = async (path: string): Promise<{ headers: Record<string, unknown>, body: string }> => {
    const stream = session.request({ ':path': path })
    let body = ''
    stream.setEncoding('utf8').on('data', (c: string) => { body += c })
    const [headers] = await once(stream, 'response') as [Record<string, unknown>]
    await once(stream, 'end')
    return { headers, body }
  }
  const a = await get('/a/x')
  t.equal(a.headers[':status'], 502)
  t.equal(a.headers['x-upstream'], undefined, 'none of the refused answer\'s fields')
  t.equal(a.headers.location, undefined)
  t.match(JSON.parse(a.body), { error: 'bad_gateway' })
  const b = await get('/b/x')
  t.equal(b.headers[':status'], 502)
  t.equal(b.headers['content-encoding'], undefined, 'no Content-Encoding on the gateway\'s JSON')
  t.equal(b.headers['set-cookie'], undefined, 'no Set-Cookie of the upstream\'s on the gateway\'s error')
  const c = await get('/c/x')
  t.equal(c.headers[':status'], 200)
  t.equal(c.body, 'hello')
})

t.test('a gateway error sent before the request body was read closes the HTTP/1.1 connection (review)', async (t) => {
  // Takes the connection, reads some of the body, resets it: a 502 with the body half read.
  const sockets = new Set<Socket>()
  const bad = createNetServer((s) => { sockets.add(s); s.on('error', () => {}); s.once('data', () => { s.resetAndDestroy() }) })
  bad.listen(0, '127.0.0.1')
  await once(bad, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); bad.close() })
  const gw = await gateway(t, `routes: [{ prefix: /, upstreams: ['http://127.0.0.1:${(bad.address() as AddressInfo).port}'], auth: none }]`)
  // The client sends half its body and waits: the gateway must answer and close, or the rest
  // of the body would be read as the next request.
  const answer = await raw(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n' + 'a'.repeat(100000))
  t.match(answer, /^HTTP\/1\.1 502 /)
  t.match(answer, /\r\nconnection: close\r\n/i, 'Connection: close')
})

t.test('HTTP/2: a stream cancelled before the upstream answered ends the upstream request (review: pool exhaustion)', async (t) => {
  let answered = 0
  const up = await httpUpstream(t, (req, res) => {
    // Answers only after the client has gone.
    const timer = setTimeout(() => { answered++; res.end('late') }, 10_000)
    res.on('close', () => { clearTimeout(timer) })
  })
  const gw = await gateway(t, `routes: [{ prefix: /, upstreams: ['${up.url}'], auth: none }]`, true)
  const session = h2connect(gw.url, { ca: gw.ca })
  t.teardown(() => { session.destroy() })
  const stream = session.request({ ':path': '/events' })
  stream.on('error', () => {})
  await waitFor('the request at the upstream', () => up.open() === 1)
  stream.close(0x8) // CANCEL
  await waitFor('the upstream connection closed by the gateway', () => up.open() === 0)
  t.equal(answered, 0)
})

t.test('a client that leaves while the upstream thinks ends the upstream request; its line says so', async (t) => {
  const up = await httpUpstream(t, (_req, res) => {
    const timer = setTimeout(() => { res.end('late') }, 10_000)
    res.on('close', () => { clearTimeout(timer) })
  })
  const gw = await gateway(t, `routes: [{ prefix: /, upstreams: ['${up.url}'], auth: none }]`)
  const socket = connect(gw.port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n')
  await waitFor('the request at the upstream', () => up.open() === 1)
  socket.destroy()
  await waitFor('the upstream connection closed by the gateway', () => up.open() === 0)
  t.equal(await metric(gw.app, /^gatehouse_gateway_upstream_failures_total\{/), 0, 'the upstream is not charged')
})

t.test('answers cut after they began: one log line each, counted (client gone; upstream reset)', async (t) => {
  let gone: (() => void) | undefined
  const up = await httpUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
    // /cut: the first part, then the upstream's connection ends (the rest never comes).
    if (req.url === '/cut') res.write('first part\n', () => { res.socket?.destroy() })
    else res.write('first part\n', () => { gone = () => { res.end() } })
  })
  const gw = await gateway(t, `routes: [{ prefix: /, upstreams: ['${up.url}'], auth: none }]`)
  // The client reads the first part, then leaves.
  const socket = connect(gw.port, '127.0.0.1')
  socket.on('error', () => {})
  let data = ''
  socket.on('data', (c: Buffer) => { data += c.toString('latin1') })
  socket.write('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n')
  await waitFor('the first part', () => data.includes('first part'))
  socket.destroy()
  await waitFor('the line of the aborted request', () => gw.log.lines().some((l) => l.msg === 'request aborted by the client'))
  const aborted = gw.log.lines().find((l) => l.msg === 'request aborted by the client')
  t.match(aborted, { level: 30, statusCode: 200, url: '/stream', aborted: true })
  t.ok(gone, 'the upstream had not finished')
  // The upstream's answer stops mid-way: the client's connection is cut (keep-alive asked for),
  // never a short answer passed off as whole.
  const cut = await raw(gw.port, 'GET /cut HTTP/1.1\r\nHost: a\r\n\r\n')
  t.match(cut, /^HTTP\/1\.1 200 [^]*\r\ncontent-length: 100\r\n[^]*\r\n\r\nfirst part\n$/i, 'the part that came, then the connection closed')
  await waitFor('the line of the cut request', () => gw.log.lines().some((l) => l.msg === 'request cut short by its upstream'))
  t.match(gw.log.lines().find((l) => l.msg === 'request cut short by its upstream'), { level: 40, statusCode: 200, url: '/cut' })
  t.equal(gw.log.lines().filter((l) => l.url === '/cut').length, 1, 'one line for the request')
  t.equal(await metric(gw.app, /^gatehouse_gateway_requests_total\{route="\/",status="200"\}/), 2, 'both counted')
})
