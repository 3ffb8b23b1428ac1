/**
 * WebSockets through the gateway (issue 12), with a real WebSocket client (ws) and a real echo
 * upstream over real HTTP, against a real issuer: the upgrade authenticated like a GET (401 and
 * 403 before any upstream connection), the token as a header or as a subprotocol (never
 * forwarded), identity headers on the upstream handshake, text and binary both ways, the
 * connection closed when its session is revoked (logout, the mirror) or its token expires,
 * oversized and malformed frames closing that connection only, an upstream down is a 502.
 */
import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import WebSocket, { WebSocketServer } from 'ws'
import { freePort, startRedis } from '@gatehouse/test-kit/redis-harness'
import { MovableClock } from '../../issuer/test/fixtures/flows.ts'
import { gatewayConfig, httpGet, SECRETS, startGateway } from './fixtures/gateway.ts'
import { startTestIssuer, userAccessToken } from './fixtures/issuer.ts'
import { SWEEP_MS } from '../src/websocket.ts'

// The echo upstream: answers each message with `echo:` + it (binary stays binary), greets first.
const handshakes: IncomingHttpHeaders[] = []
/** The upstream's side of each connection, in order. */
const upstreamSockets: WebSocket[] = []
const upstreamHttp = createServer((_req, res) => { res.writeHead(426).end() })
const echo = new WebSocketServer({ server: upstreamHttp, handleProtocols: (offered) => offered.has('chat') ? 'chat' : false })
echo.on('connection', (socket, req) => {
  handshakes.push(req.headers)
  upstreamSockets.push(socket)
  socket.send('hello')
  socket.on('message', (data, isBinary) => {
    if (!isBinary && String(data) === 'flood') {
      // 32 MiB as fast as the socket takes it.
      const chunk = Buffer.alloc(512 * 1024, 7)
      for (let i = 0; i < 64; i++) socket.send(chunk)
      return
    }
    socket.send(isBinary ? Buffer.concat([Buffer.from('echo:'), data as Buffer]) : `echo:${String(data)}`, { binary: isBinary })
  })
})
upstreamHttp.listen(0, '127.0.0.1')
await once(upstreamHttp, 'listening')
t.teardown(() => { echo.close(); upstreamHttp.close() })
const upstream = `http://127.0.0.1:${(upstreamHttp.address() as AddressInfo).port}`
const deadUpstream = `http://127.0.0.1:${await freePort()}`

const issuer = await startTestIssuer(t)
const clock = new MovableClock()
const { app, url } = await startGateway(t, gatewayConfig(issuer.url, `client: { id: gateway, secret: ${SECRETS.gateway} }
routes:
  - { prefix: /ws, upstreams: ['${upstream}'], audience: demo-api, scopes: { GET: [api:read] }, websocket: { maxMessageSize: 1024 }, cors: { origins: ['http://127.0.0.1:3000'] } }
  - { prefix: /plain, upstreams: ['${upstream}'], audience: demo-api }
  - { prefix: /down, upstreams: ['${deadUpstream}'], websocket: {} }
`), { listen: true, clock })
const wsUrl = url.replace('http:', 'ws:')

interface Opened { socket: WebSocket, messages: Array<string | Buffer>, closed: Promise<{ code: number, reason: string }> }

/** Opens a WebSocket through the gateway; resolves once open (with the upstream's greeting awaited). */
async function open (path: string, options: { token?: string, protocols?: string[], origin?: string } = {}): Promise<Opened> {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.origin !== undefined) headers.origin = options.origin
  const socket = new WebSocket(`${wsUrl}${path}`, options.protocols ?? [], { headers })
  const messages: Array<string | Buffer> = []
  socket.on('message', (data, isBinary) => { messages.push(isBinary ? data as Buffer : String(data)) })
  const closed = new Promise<{ code: number, reason: string }>((resolve) => {
    socket.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }) })
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => { resolve() })
    socket.once('unexpected-response', (_req, res) => { reject(Object.assign(new Error(`status ${String(res.statusCode)}`), { status: res.statusCode, headers: res.headers })) })
    socket.once('error', reject)
  })
  await waitFor(() => messages.includes('hello'))
  return { socket, messages, closed }
}

/** The status of a refused upgrade. */
async function refusedStatus (path: string, options: Parameters<typeof open>[1] = {}): Promise<number> {
  try {
    const opened = await open(path, options)
    opened.socket.close()
    return 101
  } catch (err) {
    return (err as { status?: number }).status ?? 0
  }
}

const sidOf = (token: string): string => (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sid: string }).sid

async function waitFor (check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function reply (opened: Opened, message: string | Buffer): Promise<string | Buffer> {
  const before = opened.messages.length
  opened.socket.send(message)
  await waitFor(() => opened.messages.length > before)
  return opened.messages[before] as string | Buffer
}

t.test('the upgrade is authenticated like a GET, before any upstream connection', async (t) => {
  const before = handshakes.length
  t.equal(await refusedStatus('/ws/chat'), 401, 'no token: 401')
  t.equal(await refusedStatus('/ws/chat', { token: 'not.a.token' }), 401, 'a bad token: 401')
  t.equal(await refusedStatus('/ws/chat', { token: await userAccessToken(issuer, 'alice', 'api:write') }), 403, 'without the GET scope: 403')
  t.equal(await refusedStatus('/plain/chat', { token: await userAccessToken(issuer) }), 400, 'a route without websocket: refused')
  t.equal(await refusedStatus('/nowhere', { token: await userAccessToken(issuer) }), 404)
  t.equal(await refusedStatus('/ws/chat', { token: await userAccessToken(issuer), origin: 'https://evil.example' }), 403, 'a browser page on an origin the route does not allow')
  t.equal(handshakes.length, before, 'the upstream saw none of them')
})

t.test('relayed both ways, with the identity headers and never the token', async (t) => {
  const token = await userAccessToken(issuer, 'alice', 'api:read')
  const opened = await open('/ws/chat?room=1', { token, origin: 'http://127.0.0.1:3000' })
  const seen = handshakes.at(-1) ?? {}
  t.equal(seen['x-auth-subject'], 'alice', 'the upstream handshake says who')
  t.equal(seen['x-auth-client-id'], 'cli')
  t.notOk('authorization' in seen, 'no Authorization forwarded (forwardAuthorization is off)')
  t.equal(opened.messages[0], 'hello', 'the upstream spoke first, and it arrived')
  t.equal(await reply(opened, 'ping'), 'echo:ping', 'text')
  const binary = await reply(opened, Buffer.from([0, 1, 2, 255]))
  t.ok(Buffer.isBuffer(binary), 'binary stays binary')
  t.same([...(binary as Buffer)], [...Buffer.from('echo:'), 0, 1, 2, 255])
  opened.socket.close(1000, 'bye')
  t.match(await opened.closed, { code: 1000 })
})

t.test('a browser sends its token as a subprotocol; it goes no further', async (t) => {
  const token = await userAccessToken(issuer)
  const alone = await open('/ws/chat', { protocols: ['gatehouse.bearer', `gatehouse.bearer.${token}`] })
  t.equal(alone.socket.protocol, 'gatehouse.bearer', 'the marker is selected when the upstream selects none')
  t.notOk(JSON.stringify(handshakes.at(-1)).includes(token), 'the upstream never sees the token')
  alone.socket.close()
  const chat = await open('/ws/chat', { protocols: ['chat', `gatehouse.bearer.${token}`] })
  t.equal(chat.socket.protocol, 'chat', 'the upstream\'s choice among the others')
  t.equal(handshakes.at(-1)?.['sec-websocket-protocol'], 'chat', 'only the application\'s subprotocols reach it')
  chat.socket.close()
})

t.test('a revoked session closes its connections; others stay open', async (t) => {
  const session = await userAccessToken(issuer, 'alice', 'api:read')
  const other = await open('/ws/x', { token: await userAccessToken(issuer, 'bob', 'api:read') })
  const first = await open('/ws/a', { token: session })
  const second = await open('/ws/b', { token: session })

  const started = Date.now()
  const res = await httpGet(`${url}/oauth2/logout`, { authorization: `Bearer ${session}` }, 'POST')
  t.equal(res.status, 200, 'logged out through the gateway')
  for (const opened of [first, second]) t.match(await opened.closed, { code: 1008, reason: 'session revoked' })
  const took = Date.now() - started
  t.ok(took < 5000, `both closed ${took} ms after the logout began (the sweep runs every ${SWEEP_MS} ms)`)
  t.equal(await refusedStatus('/ws/a', { token: session }), 401, 'and the token opens no new one')
  t.equal(await reply(other, 'still here'), 'echo:still here', 'another session\'s connection is untouched')

  // Any source of the mirror (a Shared Signals event, Redis): here written to the list directly.
  const thirdToken = await userAccessToken(issuer, 'bob', 'api:read')
  const third = await open('/ws/c', { token: thirdToken })
  const bobToken = await userAccessToken(issuer, 'bob', 'api:read')
  const bob = await open('/ws/d', { token: bobToken })
  const bobSid = sidOf(bobToken)
  await app.gateway.revocations.revoke({ sid: bobSid }, 60)
  t.match(await bob.closed, { code: 1008, reason: 'session revoked' }, 'an entry reaching the mirror closes it')
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /^gatehouse_gateway_websocket_revoked_closes_total 3$/m, 'counted: three connections closed for revocation')
  t.match(metrics, /^gatehouse_gateway_websocket_connections 2$/m, 'two still open (bob\'s other session, another user)')
  t.not(sidOf(thirdToken), bobSid, 'bob\'s other sign-in is another session')
  t.equal(await reply(third, 'ok'), 'echo:ok', 'while bob\'s other session stays')
  for (const opened of [other, third]) opened.socket.close()
})

t.test('a connection is closed when its token expires', async (t) => {
  const token = await userAccessToken(issuer)
  const exp = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp: number }).exp
  const opened = await open('/ws/e', { token })
  t.equal(await reply(opened, 'a'), 'echo:a')
  clock.advance(exp - Date.now() / 1000 + 10)
  t.teardown(() => { clock.reset() })
  t.match(await opened.closed, { code: 1008, reason: 'token expired' })
})

t.test('oversized and malformed frames close that connection only', async (t) => {
  const token = await userAccessToken(issuer)
  const bystander = await open('/ws/f', { token })
  const big = await open('/ws/g', { token })
  big.socket.send('x'.repeat(2048))
  t.match(await big.closed, { code: 1009 }, 'a message over maxMessageSize: 1009')

  // A raw client: a valid handshake, then a frame with a reserved opcode.
  const { port } = new URL(url)
  const raw = connect(Number(port), '127.0.0.1')
  await once(raw, 'connect')
  raw.write(`GET /ws/h HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  let received = Buffer.alloc(0)
  raw.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]) })
  await waitFor(() => received.includes('\r\n\r\n'))
  t.match(received.toString('latin1'), /^HTTP\/1\.1 101 /, 'the raw client got its upgrade')
  raw.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4])) // FIN + opcode 3 (reserved), masked, empty
  await once(raw, 'close')
  const frames = received.subarray(received.indexOf('\r\n\r\n') + 4)
  t.ok(frames.includes(Buffer.from([0x88, 0x02, 0x03, 0xea])), 'the gateway closed it with 1002 (protocol error)')
  t.equal(await reply(bystander, 'fine'), 'echo:fine', 'the other connection never noticed')
  bystander.socket.close()
})

t.test('a reader that does not keep up slows the writer; the gateway does not buffer it all', async (t) => {
  const ws = gatewayConfig(issuer.url, `routes: [{ prefix: /big, upstreams: ['${upstream}'], auth: none, websocket: { maxMessageSize: 1048576 } }]`)
  const { url: bigUrl } = await startGateway(t, ws, { listen: true })
  const client = new WebSocket(`${bigUrl.replace('http:', 'ws:')}/big/x`)
  let received = 0
  client.on('message', (data: Buffer) => { received += data.length })
  await once(client, 'open')
  await waitFor(() => received > 0) // the greeting
  const upstreamSide = upstreamSockets.at(-1)!
  client.pause() // stops reading: TCP fills up back to the gateway
  client.send('flood')
  await waitFor(() => upstreamSide.bufferedAmount > 0)
  // Give the relay time to go as far as it will (until nothing moves for 300 ms), then look.
  for (let last = -1; upstreamSide.bufferedAmount !== last;) {
    last = upstreamSide.bufferedAmount
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  t.ok(upstreamSide.bufferedAmount > 12 * 1024 * 1024, `the upstream still holds ${(upstreamSide.bufferedAmount / 1048576).toFixed(1)} MiB: the gateway stopped reading it`)
  client.resume()
  await waitFor(() => received >= 32 * 1024 * 1024 + 5, 20_000)
  t.equal(received, 32 * 1024 * 1024 + 5, 'once the reader reads again, every byte arrives')
  client.close()
})

/** A raw upgrade request (headers as given, nothing added): the status line, or 'closed'. */
async function rawUpgrade (path: string, headers: Record<string, string>, leaveAtOnce = false): Promise<string> {
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  if (leaveAtOnce) {
    socket.destroy()
    return 'closed'
  }
  let data = ''
  socket.on('data', (chunk: Buffer) => { data += chunk.toString('latin1') })
  await once(socket, 'close')
  return data.split('\r\n')[0] ?? ''
}

t.test('handshakes ws would refuse: 400 before any upstream connection (review finding)', async (t) => {
  const token = await userAccessToken(issuer)
  const base = { Upgrade: 'websocket', Connection: 'Upgrade', Authorization: `Bearer ${token}` }
  const key = randomBytes(16).toString('base64')
  const before = handshakes.length
  t.match(await rawUpgrade('/ws/x', { ...base, 'Sec-WebSocket-Version': '13' }), /^HTTP\/1\.1 400 /, 'no Sec-WebSocket-Key')
  t.match(await rawUpgrade('/ws/x', { ...base, 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '99' }), /^HTTP\/1\.1 400 /, 'an unknown version')
  for (const protocols of ['a b', 'chat, chat', 'x{y}', 'a,,b', `gatehouse.bearer.${token}, gatehouse.bearer.${token}`]) {
    t.match(await rawUpgrade('/ws/x', { ...base, 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': protocols }), /^HTTP\/1\.1 400 /, `subprotocols "${protocols.slice(0, 30)}": 400, never a 500`)
  }
  t.equal(handshakes.length, before, 'the upstream saw none of them')
})

t.test('a client that leaves during the upgrade leaves no upstream connection behind (review finding)', async (t) => {
  const token = await userAccessToken(issuer)
  const openBefore = echo.clients.size
  for (let i = 0; i < 10; i++) {
    await rawUpgrade('/ws/gone', { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), Authorization: `Bearer ${token}` }, true)
  }
  // Each either never reached the upstream or was closed there once the gateway saw the client gone.
  await waitFor(() => echo.clients.size === openBefore)
  t.equal(echo.clients.size, openBefore, 'no connection left open at the upstream')
  const counted = /^gatehouse_gateway_websocket_connections (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]
  t.equal(counted, String(openBefore), 'none of them counted as open at the gateway')
})

t.test('another Upgrade (h2c) is served as the plain request it is (review finding)', async (t) => {
  const status = await rawUpgrade('/plain/x', { Upgrade: 'h2c', Connection: 'Upgrade, HTTP2-Settings', 'HTTP2-Settings': 'AAMAAABkAAQCAAAAAAIAAAAA', Authorization: `Bearer ${await userAccessToken(issuer)}` })
  t.match(status, /^HTTP\/1\.1 426 /, 'the upstream answered it (this echo upstream says 426 to plain HTTP)')
})

t.test('an upstream that is down: 503 before the handshake (no upstream could be reached)', async (t) => {
  t.equal(await refusedStatus('/down/x', { token: await userAccessToken(issuer) }), 503)
})

t.test('an emergency key rollover closes the connections of tokens signed with the revoked key', async (t) => {
  // A gateway of its own: the revoked key stays revoked there.
  const other = await startGateway(t, gatewayConfig(issuer.url, `routes: [{ prefix: /ws, upstreams: ['${upstream}'], audience: demo-api, websocket: {} }]`), { listen: true })
  const token = await userAccessToken(issuer)
  const { kid } = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }
  const socket = new WebSocket(`${other.url.replace('http:', 'ws:')}/ws/k`, { headers: { authorization: `Bearer ${token}` } })
  const closed = new Promise<{ code: number, reason: string }>((resolve) => { socket.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }) }) })
  await once(socket, 'open')
  await other.app.gateway.verifier.keyChanged({ change: 'revoked', kid })
  t.match(await closed, { code: 1008, reason: 'signing key revoked' })
})

t.test('a revocation list too stale to trust closes connections, as it refuses requests (review finding)', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const stale = await startGateway(t, gatewayConfig(issuer.url, `redis: { url: '${redis.url}' }
revocation: { maxStaleness: 1 }
routes: [{ prefix: /ws, upstreams: ['${upstream}'], audience: demo-api, websocket: {} }]`), { listen: true })
  const socket = new WebSocket(`${stale.url.replace('http:', 'ws:')}/ws/s`, { headers: { authorization: `Bearer ${await userAccessToken(issuer)}` } })
  const closed = new Promise<{ code: number, reason: string }>((resolve) => { socket.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }) }) })
  await once(socket, 'open')
  await redis.stop()
  t.match(await closed, { code: 1013, reason: 'revocations stale' }, 'closed with 1013 (try again later) once the mirror is staler than maxStaleness')
})

t.test('shutdown closes open connections with 1001', async (t) => {
  const opened = await open('/ws/z', { token: await userAccessToken(issuer) })
  await app.close()
  t.match(await opened.closed, { code: 1001 })
})
