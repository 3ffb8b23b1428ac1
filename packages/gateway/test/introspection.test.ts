/**
 * Routes with `validation: introspect` against the real issuer: tokens that cannot be active
 * (random strings, another issuer's, expired) are refused by the gateway without asking, and
 * a refused token repeated is asked about once. Requests are counted at the issuer's metrics.
 */
import t from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { startTestIssuer, userAccessToken } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const { app } = await startGateway(t, gatewayConfig(issuer.url, `
client: { id: gateway, secret: ${SECRETS.gateway} }
routes:
  - { prefix: /asked, upstreams: ['${upstream.url}'], validation: introspect, audience: demo-api }
`))

/** Introspection requests the issuer has answered, from its Prometheus counters. */
async function introspections (): Promise<number> {
  const text = (await issuer.app.inject('/metrics')).body
  let sum = 0
  for (const [, n] of text.matchAll(/^gatehouse_issuer_requests_total\{route="\/oauth2\/introspect"[^}]*\} (\d+)$/gm)) sum += Number(n)
  return sum
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const forged = (payload: Record<string, unknown>): string => `${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })}.${b64(payload)}.${randomBytes(64).toString('base64url')}`
const now = (): number => Math.floor(Date.now() / 1000)
const get = async (token: string): Promise<number> => (await app.inject({ url: '/asked/x', headers: { authorization: `Bearer ${token}` } })).statusCode

t.test('30 random strings: 401 each, no introspection request', async (t) => {
  const tokens = [
    ...Array.from({ length: 12 }, () => randomBytes(randomInt(1, 64)).toString('base64url')),
    ...Array.from({ length: 10 }, () => [1, 2, 3].map(() => randomBytes(randomInt(1, 30)).toString('base64url')).join('.')),
    ...Array.from({ length: 4 }, (_, i) => forged({ iss: `http://127.0.0.1:${i + 1}`, exp: now() + 300, sub: 'alice' })),
    ...Array.from({ length: 4 }, (_, i) => forged({ iss: issuer.url, exp: now() - 60 - i, sub: 'alice' }))
  ]
  t.equal(tokens.length, 30)
  const before = await introspections()
  for (const token of tokens) t.equal(await get(token), 401)
  t.equal(await introspections(), before, 'the issuer was not asked')
  t.equal(app.gateway.verifier.stats.introspections, 0)
})

t.test('a well-formed forgery is asked about once, then refused from the cache', async (t) => {
  const token = forged({ iss: issuer.url, exp: now() + 300, sub: 'alice' })
  const before = await introspections()
  for (let i = 0; i < 10; i++) t.equal(await get(token), 401)
  t.equal(await introspections(), before + 1)
})

t.test('a real token still passes', async (t) => {
  t.equal(await get(await userAccessToken(issuer, 'alice', 'api:read')), 200)
})
