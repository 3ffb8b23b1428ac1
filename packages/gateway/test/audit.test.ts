/**
 * The gateway's audit events (docs/operations.md, Audit events), over real HTTP in front of a
 * real issuer: token.refused for each kind of refusal (with the route, the client's IP behind
 * the trusted proxy, and whose token it was once the token itself was valid), logout.succeeded
 * with its back-channel deliveries (one delivered, one refused), a WebSocket closed by that
 * logout (websocket.closed), logout.failed when the issuer cannot be reached. Each act logs its
 * event once; no token or secret is logged.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { decodeJwt } from 'jose'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { MovableClock, passwordTokens, waitFor } from '../../issuer/test/fixtures/flows.ts'
import { captureLog, LEVELS, type LogLine } from '../../issuer/test/fixtures/log-capture.ts'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

/** Back-channel receivers: `/api-rs` takes logout tokens, `/bad-rs` refuses them. */
async function startReceivers (t: Test): Promise<string> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => { res.writeHead(req.url === '/api-rs' ? 200 : 400).end() })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const address = server.address()
  return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
}

/** A WebSocket upstream that greets each connection. */
async function startWebSocketUpstream (t: Test): Promise<string> {
  const server = createServer((_req, res) => { res.writeHead(426).end() })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (socket) => { socket.send('hello') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { wss.close(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const receivers = await startReceivers(t)
const wsUpstream = await startWebSocketUpstream(t)
const clock = new MovableClock()
const log = captureLog('info')
const routes = `
trustProxy: [127.0.0.1]
client: { id: gateway, secret: ${SECRETS.gateway} }
routes:
  - prefix: /api
    upstreams: ['${upstream.url}']
    audience: demo-api
    scopes: { GET: [api:read], '*': [api:write] }
    backchannelLogoutUri: '${receivers}/api-rs'
  - { prefix: /other, upstreams: ['${upstream.url}'], audience: other-api }
  - { prefix: /bad, upstreams: ['${upstream.url}'], backchannelLogoutUri: '${receivers}/bad-rs', logoutAudience: bad-api }
  - { prefix: /ws, upstreams: ['${wsUpstream}'], audience: demo-api, websocket: {} }
`
const gateway = await startGateway(t, gatewayConfig(issuer.url, routes), { clock, logger: log.logger, listen: true })
// The same, but its issuer's session-end endpoint is down.
const deadPort = await freePort()
const cutOff = await startGateway(t, gatewayConfig(issuer.url, `${routes}logout: { timeout: 1, sessionEndpoint: 'http://127.0.0.1:${deadPort}/oauth2/session/end' }\n`), { logger: log.logger, listen: true })

const tokens: string[] = []
const IP = '203.0.113.60'

/** A request from `IP` (the trusted proxy's X-Forwarded-For); returns the status and request id. */
async function send (base: string, path: string, token?: string, method = 'GET'): Promise<{ status: number, id: string }> {
  const res = await fetch(`${base}${path}`, { method, headers: { 'x-forwarded-for': IP, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) } })
  await res.arrayBuffer()
  return { status: res.status, id: res.headers.get('x-request-id') ?? '' }
}

const of = (event: string, id: string): LogLine[] => log.events(event).filter((l) => l.reqId === id)

function one (t: Test, event: string, id: string): LogLine {
  const lines = of(event, id)
  t.equal(lines.length, 1, `one ${event} line for the request`)
  return lines[0] ?? {}
}

t.test('token.refused: the reason, the route, the IP; whose token when it was valid', async (t) => {
  const missing = await send(gateway.url, '/api/x')
  t.equal(missing.status, 401)
  const line = one(t, 'token.refused', missing.id)
  t.match(line, { level: LEVELS.info, msg: 'token.refused', reason: 'missing', status: 401, route: '/api', ip: IP })
  t.notOk('jti' in line || 'client_id' in line, 'no token, nobody to name')

  const garbage = await send(gateway.url, '/api/x', 'abc.def.ghi')
  t.match(one(t, 'token.refused', garbage.id), { reason: 'malformed', route: '/api' })

  const read = await serviceAccessToken(issuer, 'api:read')
  tokens.push(read)
  const readJti = decodeJwt(read).jti
  const audience = await send(gateway.url, '/other/x', read)
  t.equal(audience.status, 401)
  t.match(one(t, 'token.refused', audience.id), { reason: 'bad_audience', route: '/other', client_id: 'service', sub: 'service', jti: readJti })
  const scope = await send(gateway.url, '/api/x', read, 'POST')
  t.equal(scope.status, 403)
  t.match(one(t, 'token.refused', scope.id), { reason: 'insufficient_scope', status: 403, route: '/api', client_id: 'service', jti: readJti })

  const served = await send(gateway.url, '/api/x', read)
  t.equal(served.status, 200)
  t.same(of('token.refused', served.id), [], 'a served request has none')

  clock.advance(600)
  try {
    const expired = await send(gateway.url, '/api/x', read)
    t.equal(expired.status, 401)
    t.match(one(t, 'token.refused', expired.id), { reason: 'expired', route: '/api' })
  } finally {
    clock.reset()
  }
})

t.test('logout.succeeded with its deliveries; the session\'s token is then token.refused as revoked', async (t) => {
  const session = await passwordTokens(issuer.as, 'alice', 'api:read')
  tokens.push(session.access_token, session.refresh_token ?? '')
  const { jti, sid } = decodeJwt(session.access_token)
  const socket = new WebSocket(`${gateway.url.replace('http:', 'ws:')}/ws`, { headers: { authorization: `Bearer ${session.access_token}` } })
  const closed = new Promise<number>((resolve) => { socket.on('close', (code) => { resolve(code) }) })
  await once(socket, 'message')
  const logout = await send(gateway.url, '/oauth2/logout', session.access_token, 'POST')
  t.equal(logout.status, 200)
  t.match(one(t, 'logout.succeeded', logout.id), { level: LEVELS.info, client_id: 'cli', sub: 'alice', jti, sid, ip: IP, ended: true, notified: 2, failed: 1 })
  t.match(one(t, 'backchannel_logout.delivered', logout.id), { uri: `${receivers}/api-rs`, status: 200, sid, sub: 'alice' })
  t.match(one(t, 'backchannel_logout.failed', logout.id), { level: LEVELS.warn, uri: `${receivers}/bad-rs`, status: 400, reason: 'refused', sid })

  t.equal(await closed, 1008, 'the logout closed the WebSocket')
  await waitFor(() => log.events('websocket.closed').length > 0)
  t.match(log.events('websocket.closed'), [{ level: LEVELS.info, reason: 'session_revoked', route: '/ws', client_id: 'cli', sub: 'alice', jti, sid }], 'one websocket.closed line')

  const after = await send(gateway.url, '/api/x', session.access_token)
  t.equal(after.status, 401)
  t.match(one(t, 'token.refused', after.id), { reason: 'revoked', route: '/api', client_id: 'cli', sub: 'alice', jti, sid })

  const anonymous = await send(gateway.url, '/oauth2/logout', undefined, 'POST')
  t.equal(anonymous.status, 401)
  t.match(one(t, 'token.refused', anonymous.id), { reason: 'missing', route: '/oauth2/logout' })
  t.same(of('logout.failed', anonymous.id), [], 'a refused token is not also a failed logout')
})

t.test('logout.failed when the issuer cannot end the session', async (t) => {
  const session = await passwordTokens(issuer.as, 'bob', 'api:read')
  tokens.push(session.access_token, session.refresh_token ?? '')
  const failed = await send(cutOff.url, '/oauth2/logout', session.access_token, 'POST')
  t.equal(failed.status, 502)
  t.match(one(t, 'logout.failed', failed.id), { level: LEVELS.warn, reason: 'bad_gateway', client_id: 'cli', sub: 'bob', jti: decodeJwt(session.access_token).jti, ip: IP })
  t.same(of('logout.succeeded', failed.id), [])
})

t.test('no token or secret is in the log', async (t) => {
  const text = log.text()
  t.ok(tokens.length >= 5)
  for (const token of tokens) {
    t.ok(token.length > 20)
    t.notOk(text.includes(token), 'no token')
  }
  t.notOk(text.includes(SECRETS.gateway), 'no gateway secret')
  t.ok(log.events().length >= 10, 'control: the audit lines are in this log')
})
