/**
 * What the upstream learns of the caller: identity values percent-encoded as UTF-8 (so any
 * subject gets through, losslessly), and no method-override header from the caller.
 */
import t from 'tap'
import { gatewayConfig, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream, type Echo } from './fixtures/upstream.ts'
import { encodeIdentityValue, encodeScope } from '../src/identity-value.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const { app } = await startGateway(t, gatewayConfig(issuer.url, `
routes:
  - { prefix: /api, upstreams: ['${upstream.url}'], audience: demo-api, scopes: { GET: [api:read], '*': [api:write] } }
  - { prefix: /public, upstreams: ['${upstream.url}'], auth: none }
`))

/** An access token signed by the fixture issuer's own key, for any subject and client id. */
async function tokenFor (subject: string, clientId = 'service', scope = ['api:read']): Promise<string> {
  const minted = await issuer.app.issuer.tokens.mintAccessToken({ clientId, subject, scope, audience: ['demo-api'], ttl: 300 })
  return minted.token
}

t.test('non-ASCII subjects reach the upstream, percent-encoded UTF-8', async (t) => {
  const cases: Array<[string, string]> = [
    ['Łukasz', '%C5%81ukasz'],
    ['山田', '%E5%B1%B1%E7%94%B0'],
    ['josé', 'jos%C3%A9'],
    ['100%', '100%25'],
    [' padded ', '%20padded%20'],
    ['tab\there', 'tab%09here'],
    ['alice', 'alice'],
    ['user@example.com', 'user@example.com']
  ]
  for (const [subject, wire] of cases) {
    const res = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${await tokenFor(subject)}` } })
    t.equal(res.statusCode, 200, `${JSON.stringify(subject)}: 200, not 502`)
    const sent = res.json<Echo>().headers['x-auth-subject']
    t.equal(sent, wire, `${JSON.stringify(subject)} is sent as ${wire}`)
    t.equal(decodeURIComponent(String(sent)), subject, 'and decodes back to the subject')
  }
})

t.test('client ids and scope tokens follow the same rule', async (t) => {
  const token = await tokenFor('alice', 'café-app', ['api:read', 'ünïcode', 'a%b'])
  const echo = (await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).json<Echo>()
  t.equal(echo.headers['x-auth-client-id'], 'caf%C3%A9-app')
  t.equal(echo.headers['x-auth-scope'], 'api:read %C3%BCn%C3%AFcode a%25b')
  t.same(String(echo.headers['x-auth-scope']).split(' ').map(decodeURIComponent), ['api:read', 'ünïcode', 'a%b'], 'split on spaces, then decode')
})

t.test('encoding: plain values untouched, never a throw', async (t) => {
  t.equal(encodeIdentityValue('demo-web'), 'demo-web')
  t.equal(encodeIdentityValue('a+b=c'), 'a+b=c', '+ is not a space: no form encoding')
  t.equal(encodeIdentityValue('\ud800'), '%EF%BF%BD', 'a lone surrogate becomes U+FFFD')
  t.equal(encodeScope(['openid', 'api:read']), 'openid api:read')
  t.equal(encodeScope([]), '')
})

t.test('method-override headers never reach the upstream', async (t) => {
  const token = await serviceAccessToken(issuer, 'api:read')
  const overrides = { 'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'DELETE', 'X-HTTP-Method-Override': 'PUT' }
  for (const url of ['/api/items/1', '/public/items/1']) {
    const res = await app.inject({ url, headers: { authorization: `Bearer ${token}`, ...overrides } })
    t.equal(res.statusCode, 200)
    const echo = res.json<Echo>()
    t.equal(echo.method, 'GET')
    for (const name of Object.keys(overrides)) t.equal(echo.headers[name.toLowerCase()], undefined, `${url}: ${name} dropped`)
  }
})
