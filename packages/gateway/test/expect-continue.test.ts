/**
 * `Expect: 100-continue` over real HTTP (Node's client, as .NET and some Java clients send it):
 * the token is checked before the 100 goes out, `Expect` never reaches the upstream, and a
 * refused request gets its final status with no 100.
 */
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream, type Echo } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const { url } = await startGateway(t, gatewayConfig(issuer.url, `
client: { id: gateway, secret: ${SECRETS.gateway} }
routes:
  - { prefix: /api, upstreams: ['${upstream.url}'], audience: demo-api, scopes: { GET: [api:read], '*': [api:write] } }
  - { prefix: /public, upstreams: ['${upstream.url}'], auth: none }
`), { listen: true })
const write = await serviceAccessToken(issuer, 'api:write')
const read = await serviceAccessToken(issuer, 'api:read')

interface Outcome { status: number, continued: boolean, body: string }

/** POSTs `body` with Expect: 100-continue; the body goes out only after a 100, as RFC 9110 10.1.1 has it. */
async function postExpecting (path: string, body: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return await new Promise((resolve, reject) => {
    let continued = false
    const req = httpRequest(`${url}${path}`, {
      method: 'POST',
      headers: { expect: '100-continue', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers }
    })
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.on('response', (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, continued, body: text })
        if (!continued) req.destroy() // the body was never asked for
      })
    })
    req.on('error', reject)
    req.flushHeaders()
  })
}

t.test('a public route: 100, then the body reaches the upstream without Expect', async (t) => {
  const res = await postExpecting('/public/items', '{"a":1}')
  t.equal(res.status, 200, res.body)
  t.ok(res.continued, '100 Continue')
  const echo = JSON.parse(res.body) as Echo
  t.equal(echo.body, '{"a":1}')
  t.equal(echo.headers.expect, undefined, 'Expect is not forwarded')
})

t.test('an auth route with a good token: 100 after the check, then 200', async (t) => {
  const res = await postExpecting('/api/items', '{"b":2}', { authorization: `Bearer ${write}` })
  t.equal(res.status, 200, res.body)
  t.ok(res.continued)
  t.equal((JSON.parse(res.body) as Echo).body, '{"b":2}')
})

t.test('no token, a missing scope, no route: the final status and no 100', async (t) => {
  const seen = upstream.seen.length
  const none = await postExpecting('/api/items', '{"c":3}')
  t.equal(none.status, 401)
  t.notOk(none.continued, 'no 100 Continue before the 401')
  t.match(JSON.parse(none.body), { error: 'invalid_token' })
  const scope = await postExpecting('/api/items', '{"c":3}', { authorization: `Bearer ${read}` })
  t.equal(scope.status, 403)
  t.notOk(scope.continued, 'no 100 Continue before the 403')
  const missing = await postExpecting('/nowhere', '{}')
  t.equal(missing.status, 404)
  t.notOk(missing.continued)
  t.equal(upstream.seen.length, seen, 'nothing reached the upstream')
})

t.test('the gateway\'s own routes still read their body', async (t) => {
  const res = await postExpecting('/oauth2/logout', '{}')
  t.equal(res.status, 401, res.body)
})
