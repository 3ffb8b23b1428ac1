/**
 * Seeds: "Validate token locally in API Gateway", in both of its drawings. In one the gateway
 * validates the token itself (`API_Gateway ->> API_Gateway: Validate Token Locally`); in the
 * other it asks the authorization server (`API_Gateway ->> Authorization_Server: Validate
 * Token`), which is a route with `validation: introspect` (RFC 7662). Both start with the
 * authorization code flow and end with the data from the resource server.
 *
 * Real processes and a real redis-server. The gateway's own counters (/metrics) show which
 * way each request was validated, and stopping the issuer shows the difference a user feels:
 * a locally validated route keeps serving, an introspected one cannot.
 */
import t from 'tap'
import { bearer, request, startStack, type Echo, type GatewayProcess } from '../fixtures/processes.ts'
import * as oauth from 'oauth4webapi'
import { CLIENTS, codeFlow, discover, insecure } from '../fixtures/oauth.ts'

const stack = await startStack(t, {
  redis: true,
  gateways: [{
    configure: (config) => {
      const api = config.routes.find((route) => route.name === 'api')
      if (api === undefined) throw new Error('the demo gateway has no api route')
      const { backchannelLogoutUri: _, ...rest } = api
      config.routes.push({ ...rest, name: 'introspected', prefix: '/introspected', validation: 'introspect' })
    }
  }]
})
const { issuer } = stack
const gateway = stack.gateways[0] as GatewayProcess
const as = await discover(issuer)

/** The gateway's validation counters, from its Prometheus text. */
async function counters (): Promise<{ signatures: number, cacheHits: number, introspections: number }> {
  const text = await gateway.metrics()
  const read = (name: string): number => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)
    if (m === null) throw new Error(`no ${name} in /metrics`)
    return Number(m[1])
  }
  return {
    signatures: read('gatehouse_gateway_token_signature_checks_total'),
    cacheHits: read('gatehouse_gateway_token_cache_hits_total'),
    introspections: read('gatehouse_gateway_introspection_requests_total')
  }
}

/** What changed in the counters while `fn` ran. */
async function delta (fn: () => Promise<void>): Promise<{ signatures: number, cacheHits: number, introspections: number }> {
  const before = await counters()
  await fn()
  const after = await counters()
  return { signatures: after.signatures - before.signatures, cacheHits: after.cacheHits - before.cacheHits, introspections: after.introspections - before.introspections }
}

t.test('Validate token in the API Gateway by asking the Authorization Server (introspection)', async (t) => {
  const tokens = await codeFlow(as, 'web', { scope: 'openid api:read' })
  let echo: Echo | undefined
  const first = await delta(async () => {
    const res = await request<Echo>(`${gateway.url}/introspected/orders`, { headers: bearer(tokens.access_token) })
    t.equal(res.status, 200, 'Return Data')
    echo = res.body
  })
  t.same(first, { signatures: 0, cacheHits: 0, introspections: 1 }, 'the gateway asked the issuer, and checked no signature itself')
  t.equal(echo?.path, '/introspected/orders', 'Forward Request')
  t.equal(echo?.headers['x-auth-subject'], 'alice', 'the identity the issuer vouched for')
  t.equal(echo?.headers['x-auth-scope'], 'openid api:read')

  const again = await delta(async () => {
    t.equal((await request(`${gateway.url}/introspected/orders`, { headers: bearer(tokens.access_token) })).status, 200)
  })
  t.equal(again.introspections, 0, 'the answer is cached for a short while (a busy route asks once per token)')

  const write = await request(`${gateway.url}/introspected/orders`, { method: 'POST', headers: bearer(tokens.access_token) })
  t.equal(write.status, 403, 'scopes still apply: POST needs api:write')
  t.match(write.headers.get('www-authenticate'), /error="insufficient_scope"/)

  // A token the issuer no longer vouches for: revoked by its client (RFC 7009) before its first use.
  const revoked = await codeFlow(as, 'web', { scope: 'api:read' })
  const { client, auth } = CLIENTS.web
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, revoked.access_token, insecure))
  const refused = await request(`${gateway.url}/introspected/orders`, { headers: bearer(revoked.access_token) })
  t.equal(refused.status, 401, 'inactive at the issuer: refused')
  t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/)
  const garbage = await request(`${gateway.url}/introspected/orders`, { headers: bearer('not-a-token') })
  t.equal(garbage.status, 401, 'a token the issuer never issued: refused')
})

t.test('Validate token locally in API Gateway', async (t) => {
  const tokens = await codeFlow(as, 'web', { scope: 'openid api:read' })
  const unseen = await codeFlow(as, 'web', { scope: 'api:read' })
  let echo: Echo | undefined
  const first = await delta(async () => {
    const res = await request<Echo>(`${gateway.url}/api/orders`, { headers: bearer(tokens.access_token) })
    t.equal(res.status, 200, 'Return Data')
    echo = res.body
  })
  t.same(first, { signatures: 1, cacheHits: 0, introspections: 0 }, 'Validate Token Locally: one signature check, no call to the issuer')
  t.equal(echo?.path, '/api/orders', 'Forward Request')
  t.equal(echo?.headers['x-auth-subject'], 'alice')
  t.equal(echo?.headers['x-auth-client-id'], 'demo-web')

  const again = await delta(async () => {
    t.equal((await request(`${gateway.url}/api/orders`, { headers: bearer(tokens.access_token) })).status, 200)
  })
  t.same(again, { signatures: 0, cacheHits: 1, introspections: 0 }, 'a repeated token costs no signature check')

  // Without the issuer: local validation needs only the keys the gateway already holds.
  await issuer.stop()
  t.teardown(async () => { await issuer.start() })
  const offline = await delta(async () => {
    const res = await request<Echo>(`${gateway.url}/api/orders`, { headers: bearer(unseen.access_token) })
    t.equal(res.status, 200, 'a token never seen before is validated while the issuer is down')
  })
  t.same(offline, { signatures: 1, cacheHits: 0, introspections: 0 })
  const introspected = await request<{ error: string }>(`${gateway.url}/introspected/orders`, { headers: bearer(unseen.access_token) })
  t.equal(introspected.status, 503, 'while a route that asks the issuer cannot answer (503, not a 401 or a 500)')
  t.equal(introspected.body.error, 'temporarily_unavailable')

  const [header = '', payload = '', signature = ''] = unseen.access_token.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'api:read api:write' })).toString('base64url')}.${signature}`
  const tampered = await request(`${gateway.url}/api/orders`, { method: 'POST', headers: bearer(forged) })
  t.equal(tampered.status, 401, 'a token whose claims were changed fails the local signature check')
  t.match(tampered.headers.get('www-authenticate'), /error="invalid_token"/)
})
