/**
 * WebSockets through gateway processes (issue 12), with a real ws client and an echo upstream:
 * two gateways, one with Redis and one without (it hears the issuer's Shared Signals stream
 * only). A session ended anywhere closes its open connections at both: a revocation at the
 * issuer (RFC 7009) and a logout through the other gateway. Real processes: redis-server,
 * issuer, gateways.
 */
import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import * as oauth from 'oauth4webapi'
import { startStack, waitFor, type GatewayConfig, type GatewayProcess } from '../fixtures/processes.ts'
import { CLIENTS, discover, insecure } from '../fixtures/oauth.ts'

// The echo upstream, in this process.
const upstreamHttp = createServer((_req, res) => { res.writeHead(426).end() })
const echo = new WebSocketServer({ server: upstreamHttp })
echo.on('connection', (socket, req) => {
  socket.send(`hello ${String(req.headers['x-auth-subject'])}`)
  socket.on('message', (data) => { socket.send(`echo:${String(data)}`) })
})
upstreamHttp.listen(0, '127.0.0.1')
await once(upstreamHttp, 'listening')
t.teardown(() => { echo.close(); upstreamHttp.close() })
const upstream = `http://127.0.0.1:${(upstreamHttp.address() as AddressInfo).port}`

const withWebSocketRoute = (config: GatewayConfig): void => {
  config.routes.push({ name: 'live', prefix: '/live', upstreams: [upstream], stripPrefix: true, auth: 'required', validation: 'local', audience: 'demo-api', scopes: { GET: ['api:read'] }, timeout: 30, websocket: { maxMessageSize: 65_536 } })
}
const stack = await startStack(t, {
  redis: true,
  gateways: [
    { name: 'gateway-redis', configure: withWebSocketRoute },
    { name: 'gateway-ssf', redis: false, configure: withWebSocketRoute }
  ]
})
const [withRedis, withoutRedis] = stack.gateways as [GatewayProcess, GatewayProcess]
const as = await discover(stack.issuer)

async function signIn (username: string): Promise<oauth.TokenEndpointResponse> {
  const { client, auth } = CLIENTS.cli
  const res = await oauth.genericTokenEndpointRequest(as, client, auth, 'password', new URLSearchParams({ username, password: `${username}-password`, scope: 'openid api:read' }), insecure)
  return await oauth.processGenericTokenEndpointResponse(as, client, res)
}

interface Live { socket: WebSocket, messages: string[], closed: Promise<{ code: number, reason: string, at: number }> }

async function connect (gateway: GatewayProcess, token: string): Promise<Live> {
  const socket = new WebSocket(`${gateway.url.replace('http:', 'ws:')}/live/feed`, ['gatehouse.bearer', `gatehouse.bearer.${token}`])
  const messages: string[] = []
  socket.on('message', (data) => { messages.push(String(data)) })
  const closed = new Promise<{ code: number, reason: string, at: number }>((resolve) => {
    socket.on('close', (code, reason) => { resolve({ code, reason: reason.toString(), at: Date.now() }) })
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => { resolve() })
    socket.once('unexpected-response', (_req, res) => { reject(new Error(`upgrade refused: ${String(res.statusCode)}`)) })
    socket.once('error', reject)
  })
  await waitFor('the greeting', () => messages.length > 0 ? true : undefined)
  return { socket, messages, closed }
}

t.test('a revocation at the issuer closes the session\'s connections at both gateways', async (t) => {
  const alice = await signIn('alice')
  const bob = await signIn('bob')
  const atRedis = await connect(withRedis, alice.access_token)
  const atSsf = await connect(withoutRedis, alice.access_token)
  const bystander = await connect(withoutRedis, bob.access_token)
  t.equal(atRedis.messages[0], 'hello alice', 'the upstream knows who connected')

  const started = Date.now()
  const { client, auth } = CLIENTS.cli
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, alice.access_token, insecure))
  const [viaRedis, viaSsf] = await Promise.all([atRedis.closed, atSsf.closed])
  t.match(viaRedis, { code: 1008, reason: 'session revoked' }, 'closed at the gateway with Redis')
  t.match(viaSsf, { code: 1008, reason: 'session revoked' }, 'closed at the gateway without Redis (Shared Signals)')
  t.comment(`closed ${viaRedis.at - started} ms (Redis) and ${viaSsf.at - started} ms (Shared Signals) after the revocation request began`)

  bystander.socket.send('ping')
  await waitFor('bob\'s echo', () => bystander.messages.includes('echo:ping') ? true : undefined)
  t.pass('another session\'s connection is untouched')
  bystander.socket.close()
})

t.test('a logout through one gateway closes the session\'s connection at the other', async (t) => {
  const alice = await signIn('alice')
  const elsewhere = await connect(withoutRedis, alice.access_token)
  const res = await fetch(`${withRedis.url}/oauth2/logout`, { method: 'POST', headers: { authorization: `Bearer ${alice.access_token}` } })
  t.equal(res.status, 200)
  t.match(await elsewhere.closed, { code: 1008, reason: 'session revoked' })
})
