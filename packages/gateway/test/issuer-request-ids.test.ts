/**
 * The gateway's calls to the issuer on behalf of a request carry its id (X-Request-Id): the
 * logout's session end and a route's introspection. The issuer here lists loopback (the
 * gateway) in `trustProxy`, as an operator who wants the ids joined does, so its log lines
 * for those calls carry the gateway request's id. Real issuer, its log captured.
 */
import t from 'tap'
import type { FastifyServerOptions } from 'fastify'
import { loggerOptions } from '@gatehouse/shared/logging'
import { startIssuer } from '../../issuer/test/fixtures/harness.ts'
import { gatewayConfig, SECRETS, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, userAccessToken } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

type LoggerOptions = Exclude<NonNullable<FastifyServerOptions['logger']>, boolean>

const chunks: string[] = []
const logger: LoggerOptions = { ...(loggerOptions('info') as LoggerOptions), stream: { write: (chunk: string): void => { chunks.push(chunk) } } }
const issuer = await startIssuer(t, 'memory', 'trustProxy: [loopback]', { logger })
const upstream = await startUpstream(t)
const { app } = await startGateway(t, gatewayConfig(issuer.url, `
client: { id: gateway, secret: ${SECRETS.gateway} }
routes:
  - { prefix: /asked, upstreams: ['${upstream.url}'], validation: introspect, audience: demo-api }
`))

/** The issuer's request lines for `path`. */
const issuerLines = (path: string): Array<Record<string, unknown>> => chunks.join('').split('\n').filter((l) => l !== '')
  .map((l) => JSON.parse(l) as Record<string, unknown>)
  .filter((l) => l.msg === 'request completed' && l.url === path)

t.test('the logout\'s session end carries the logout request\'s id', async (t) => {
  const token = await serviceAccessToken(issuer, 'api:read')
  const res = await app.inject({ method: 'POST', url: '/oauth2/logout', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  const id = res.headers['x-request-id']
  t.match(id, /^[0-9a-f-]{36}$/, 'the gateway\'s id of the logout')
  const lines = issuerLines('/oauth2/session/end')
  t.equal(lines.length, 1)
  t.equal(lines[0]?.reqId, id, 'the issuer\'s line for the session end has the same id')
})

t.test('an introspection made for a request carries its id', async (t) => {
  const token = await userAccessToken(issuer, 'alice', 'api:read')
  const res = await app.inject({ url: '/asked/x', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  const id = res.headers['x-request-id']
  t.match(id, /^[0-9a-f-]{36}$/)
  t.equal(upstream.seen.at(-1)?.headers['x-request-id'], id, 'the upstream got the same id')
  const lines = issuerLines('/oauth2/introspect')
  t.equal(lines.length, 1)
  t.equal(lines[0]?.reqId, id, 'the issuer\'s line for the introspection has the same id')
})
