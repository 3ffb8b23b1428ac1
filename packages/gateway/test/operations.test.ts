/** /healthz, /readyz (keys loaded, revocation mirror fresh) and the Prometheus text. */
import t from 'tap'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import type { RevocationList } from '@gatehouse/fastify-auth/revocation'
import { gatewayConfig, startGateway } from './fixtures/gateway.ts'
import { serviceAccessToken, startTestIssuer } from './fixtures/issuer.ts'
import { startUpstream } from './fixtures/upstream.ts'

const issuer = await startTestIssuer(t)
const upstream = await startUpstream(t)
const routes = `routes: [{ name: api, prefix: /api, upstreams: ['${upstream.url}'], audience: demo-api }]`

t.test('healthy and ready; metrics count requests, failures and upstream latency', async (t) => {
  const { app } = await startGateway(t, gatewayConfig(issuer.url, routes))
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })

  const token = await serviceAccessToken(issuer, 'api:read')
  await app.gateway.revocations.revoke({ jti: 'some-jti' }, 60)
  t.equal((await app.inject({ url: '/api/x', headers: { authorization: `Bearer ${token}` } })).statusCode, 200)
  t.equal((await app.inject('/api/x')).statusCode, 401)
  t.equal((await app.inject({ url: '/api/x', headers: { authorization: 'Bearer nope' } })).statusCode, 401)
  t.equal((await app.inject('/nowhere')).statusCode, 404)

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body
  t.match(text, 'gatehouse_gateway_requests_total{route="api",status="200"} 1')
  t.match(text, 'gatehouse_gateway_requests_total{route="api",status="401"} 2')
  t.match(text, 'gatehouse_gateway_requests_total{route="(none)",status="404"} 1')
  t.match(text, 'gatehouse_gateway_auth_failures_total{reason="missing"} 1')
  t.match(text, 'gatehouse_gateway_auth_failures_total{reason="malformed"} 1')
  t.match(text, 'gatehouse_gateway_revocation_list_size 1')
  t.match(text, 'gatehouse_gateway_revocation_staleness_seconds 0')
  t.match(text, /gatehouse_gateway_upstream_duration_seconds_bucket\{le="\+Inf",route="api"\} 1\n/)
  t.match(text, /gatehouse_gateway_request_duration_seconds_count\{route="api",status="200"\} 1\n/, 'request durations by route and status')
  t.match(text, /gatehouse_gateway_token_check_duration_seconds_count\{route="api"\} 3\n/, 'the time spent on tokens, by route')
  t.match(text, /gatehouse_gateway_requests_total\{route="\/healthz",status="200"\} 1\n/, 'the gateway\'s own endpoints by their path, not (none)')
  t.match(text, /^gatehouse_build_info\{service="gateway",version="\d+\.\d+\.\d+",nodejs="v\d+[^"]*"\} 1$/m, 'build info')
  t.match(text, /^process_cpu_user_seconds_total /m, 'process metrics')
  t.match(text, /^nodejs_eventloop_lag_seconds /m, 'Node.js runtime metrics')
  t.match(text, 'gatehouse_gateway_upstream_duration_seconds_count{route="api"} 1')
  t.match(text, 'gatehouse_gateway_token_signature_checks_total 1', 'one signature checked (the other requests carried no valid token)')
  t.match(text, 'gatehouse_gateway_token_cache_hits_total 0')
  t.match(text, /gatehouse_gateway_jwks_fetches_total [1-9]/)
  t.match(text, 'gatehouse_gateway_introspection_requests_total 0')
  t.notMatch(text, token, 'no token in the metrics')
})

t.test('not ready: keys never loaded', async (t) => {
  const { app } = await startGateway(t, gatewayConfig(`http://127.0.0.1:${await freePort()}`, routes))
  t.equal((await app.inject('/healthz')).statusCode, 200)
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'unavailable', problems: [/signing keys/] })
})

t.test('not ready: the revocation mirror is stale; tokens are refused (fail closed)', async (t) => {
  // A mirror that never synced (Redis unreachable since boot).
  const stale: RevocationList = {
    revoke: async () => {},
    isRevoked: () => false,
    staleness: Infinity,
    size: 0,
    ready: async () => {},
    close: async () => {}
  }
  const { app } = await startGateway(t, gatewayConfig(issuer.url, routes), { revocations: stale })
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { problems: [/revocation list is stale/] })
  const token = await serviceAccessToken(issuer, 'api:read')
  const refused = await app.inject({ url: '/api/x', headers: { authorization: `Bearer ${token}` } })
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), { error: 'temporarily_unavailable' })
})
