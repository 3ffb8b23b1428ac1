/** The header rewriting on the per-request path, as a unit: what passes, what is set, what is left alone. */
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { AccessClaims } from '@gatehouse/fastify-auth'
import type { GatewayConfig } from '../src/config.ts'
import { answerHeaders, requestHeaderRewriter } from '../src/forward-headers.ts'

const config = {
  identityHeaders: { subject: 'X-Auth-Subject', clientId: 'x-auth-client-id', scope: 'x-auth-scope', forwardAuthorization: false },
  trustProxy: false
} as unknown as GatewayConfig
const request = { raw: { socket: { remoteAddress: '10.0.0.9' } }, protocol: 'http', host: 'gw.example', id: 'req-1' } as unknown as FastifyRequest
const claims = { sub: 'alice', client_id: 'web', scope: ['api:read', 'openid'] } as unknown as AccessClaims

t.test('caller copies of identity, forwarding and hop-by-hop fields never pass; ours are set', async (t) => {
  const incoming = {
    host: 'gw.example',
    accept: 'application/json',
    authorization: 'Bearer abc',
    connection: 'keep-alive, x-secret-hop',
    'x-secret-hop': 'drop me',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    'x-auth-subject': 'mallory',
    x_auth_scope: 'admin',
    'x-forwarded-for': '1.2.3.4',
    'x-request-id': 'spoofed',
    forwarded: 'for=1.2.3.4',
    'x-real-ip': '1.2.3.4'
  }
  const before = JSON.stringify(incoming)
  const out = requestHeaderRewriter(config)(request, incoming, claims, false)
  t.same(out, {
    accept: 'application/json',
    'x-auth-subject': 'alice',
    'x-auth-client-id': 'web',
    'x-auth-scope': 'api:read openid',
    'x-forwarded-for': '10.0.0.9',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'gw.example',
    'x-request-id': 'req-1'
  })
  t.equal(JSON.stringify(incoming), before, 'the request\'s own headers are left as they came')
  t.equal(requestHeaderRewriter(config)(request, { authorization: 'Bearer abc' }, null, true).authorization, 'Bearer abc', 'forwardAuthorization keeps it')
  t.equal(requestHeaderRewriter(config)(request, { 'x-auth-subject': 'mallory' }, null, false)['x-auth-subject'], undefined, 'no token: no identity at all')
})

t.test('a trusted proxy\'s chain is kept from the client it names; a client\'s is replaced', async (t) => {
  const trusted = { ...config, trustProxy: ['10.0.0.0/8'] } as unknown as GatewayConfig
  // request.ips as Fastify gives it: the peer, then X-Forwarded-For right to left up to the client.
  const viaProxy = { ...request, ips: ['10.0.0.9', '203.0.113.7'] } as unknown as FastifyRequest
  const out = requestHeaderRewriter(trusted)(viaProxy, { 'x-forwarded-for': '6.6.6.6, 203.0.113.7', forwarded: 'for=203.0.113.7', 'x-real-ip': '203.0.113.7' }, null, false)
  t.equal(out['x-forwarded-for'], '203.0.113.7, 10.0.0.9', 'the made-up left-most entry is gone')
  t.equal(out.forwarded, 'for=203.0.113.7', 'Forwarded from a trusted proxy passes')
  t.equal(out['x-real-ip'], '203.0.113.7')
  const direct = { ...request, raw: { socket: { remoteAddress: '192.0.2.1' } }, ips: ['192.0.2.1'] } as unknown as FastifyRequest
  const fromClient = requestHeaderRewriter(trusted)(direct, { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6' }, null, false)
  t.equal(fromClient['x-forwarded-for'], '192.0.2.1')
  t.equal(fromClient.forwarded, undefined, 'not from a client')
  t.equal(fromClient['x-real-ip'], undefined)
})

t.test('Expect and method overrides are never forwarded', async (t) => {
  const out = requestHeaderRewriter(config)(request, { expect: '100-continue', 'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'DELETE' }, null, false)
  for (const name of ['expect', 'x-http-method-override', 'x-http-method', 'x-method-override']) t.equal(out[name], undefined, name)
})

t.test('HTTP/2 pseudo-header fields are not copied; Host is the upstream\'s (undici sets it)', async (t) => {
  const out = requestHeaderRewriter(config)(request, { ':method': 'GET', ':path': '/api', ':authority': 'gw.example', ':scheme': 'https', host: 'gw.example', accept: '*/*' }, null, false)
  t.same(Object.keys(out).filter((name) => name.startsWith(':') || name === 'host'), [])
  t.equal(out.accept, '*/*')
})

const raw = (...pairs: string[]): Buffer[] => pairs.map((s) => Buffer.from(s, 'latin1'))

t.test('answer headers lose hop-by-hop fields and those Connection names; repeats become lists', async (t) => {
  const upstream = raw('Content-Type', 'application/json', 'Connection', 'close, X-Hop', 'Transfer-Encoding', 'chunked', 'X-Hop', 'secret',
    'Keep-Alive', 'timeout=5', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Custom', '1', 'Upgrade', 'h2c', 'HTTP2-Settings', 'AAA', 'Host', 'up')
  t.same(answerHeaders(upstream, false), { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'x-custom': '1', host: 'up' })
  t.same(answerHeaders(upstream, true), { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'x-custom': '1' }, 'HTTP/2: no Host either')
  const polluted = answerHeaders(raw('__proto__', 'x', 'X-Ok', '1', 'Constructor', 'c', 'toString', 't'), false)
  t.same(Object.keys(polluted), ['x-ok', 'constructor', 'tostring'])
  t.equal(polluted.constructor, 'c', 'a name the prototype has is a field like any other')
  t.equal(Object.getPrototypeOf(polluted), Object.prototype, 'a field named __proto__ changes nothing')
})
