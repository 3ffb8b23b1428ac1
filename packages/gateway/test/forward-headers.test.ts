/** The header rewriting on the per-request path, as a unit: what passes, what is set, what is left alone. */
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { AccessClaims } from '@gatehouse/fastify-auth'
import type { GatewayConfig } from '../src/config.ts'
import { requestHeaderRewriter, rewriteResponseHeaders } from '../src/forward-headers.ts'

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
    host: 'gw.example',
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

t.test('response headers lose hop-by-hop fields only', async (t) => {
  const upstream = { 'content-type': 'application/json', connection: 'close', 'transfer-encoding': 'chunked', 'x-custom': '1' }
  t.same(rewriteResponseHeaders(upstream), { 'content-type': 'application/json', 'x-custom': '1' })
  t.equal(upstream.connection, 'close', 'the upstream\'s object is not changed')
})
