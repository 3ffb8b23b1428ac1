/** The gateway's YAML: defaults, env overrides, schema errors and the cross-field rules. */
import t from 'tap'
import { ConfigError } from '@gatehouse/shared/config'
import { loadGatewayConfig, parseGatewayConfig } from '../src/load-config.ts'

const problems = (yaml: string, env: Record<string, string> = {}): string[] => {
  try {
    parseGatewayConfig(yaml, 'gateway.yaml', env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

t.test('defaults fill every section', async (t) => {
  const config = parseGatewayConfig('issuer: http://127.0.0.1:4000\nroutes: [{ prefix: /api, upstreams: [http://127.0.0.1:4001] }]', 'gateway.yaml', {})
  t.match(config, {
    listen: { host: '127.0.0.1', port: 8080 },
    auth: { clockTolerance: 5, maxTokenLength: 8192, cacheSize: 10000, jwksCooldown: 30 },
    revocation: { maxStaleness: 30, failOpen: false },
    identityHeaders: { subject: 'x-auth-subject', clientId: 'x-auth-client-id', scope: 'x-auth-scope', forwardAuthorization: false },
    logout: { path: '/oauth2/logout', timeout: 5, retry: 1 },
    metrics: { path: '/metrics' },
    trustProxy: false,
    routes: [{ prefix: '/api', stripPrefix: true, auth: 'required', validation: 'local', timeout: 30 }]
  })
  t.ok(Object.isFrozen(config.routes[0]), 'deep-frozen')
})

t.test('REDIS_URL sets redis.url', async (t) => {
  const config = parseGatewayConfig('issuer: http://127.0.0.1:4000', 'gateway.yaml', { REDIS_URL: 'redis://127.0.0.1:6390' })
  t.equal(config.redis?.url, 'redis://127.0.0.1:6390')
})

t.test('the demo file loads', async (t) => {
  const config = loadGatewayConfig(new URL('../../../docker/demo/gateway.yaml', import.meta.url).pathname, {})
  t.equal(config.client?.secret, 'demo-gateway-secret', 'the secret defaults from the environment')
  t.match(config.routes, [{ prefix: '/api', stripPrefix: false, audience: 'demo-api' }, { prefix: '/public', auth: 'none' }])
})

t.test('schema problems are located', async (t) => {
  const found = problems(`issuer: http://127.0.0.1:4000
listen: { port: 80800 }
identityHeaders: { subject: 'bad header' }
routes:
  - prefix: /api/
    upstreams: [ftp://x]
    scopes: { get: [api:read] }
    stripPrefx: false
`)
  t.match(found.join('\n'), /gateway\.yaml:2:17 listen\.port must be <= 65535/)
  t.match(found.join('\n'), /gateway\.yaml:3:29 identityHeaders\.subject/)
  t.match(found.join('\n'), /gateway\.yaml:5:13 routes\[0\]\.prefix/)
  t.match(found.join('\n'), /gateway\.yaml:6:17 routes\[0\]\.upstreams\[0\]/)
  t.match(found.join('\n'), /gateway\.yaml:7:15 routes\[0\]\.scopes unknown key "get"/)
  t.match(found.join('\n'), /gateway\.yaml:8:5 routes\[0\] unknown key "stripPrefx"/)
})

t.test('cross-field rules', async (t) => {
  const found = problems(`issuer: http://127.0.0.1:4000
redis: { url: 'redis://a:1', sentinel: { name: m, sentinels: [{ host: a, port: 1 }] } }
metrics: { path: /healthz }
routes:
  - { prefix: /a, upstreams: [http://u], stripPrefix: false, rewritePrefix: /b }
  - { prefix: /a, upstreams: [http://u] }
  - { prefix: /n, upstreams: [http://u], auth: none, scopes: { GET: [x] }, audience: y, rateLimit: { max: 1, key: client_id } }
  - { prefix: /i, upstreams: [http://u], validation: introspect }
  - { prefix: /l, upstreams: [http://u], backchannelLogoutUri: 'http://rs/logout' }
  - { prefix: /m, upstreams: [http://u], logoutAudience: x }
  - { prefix: /oauth2/logout, upstreams: [http://u] }
  - { prefix: /x, name: dup, upstreams: [http://u] }
  - { prefix: /y, name: dup, upstreams: [http://u] }
`).join('\n')
  for (const expected of [
    /2:1 redis needs exactly one of url, sentinel, cluster/,
    /3:18 metrics\.path \/healthz is taken/,
    /5:77 routes\[0\]\.rewritePrefix set rewritePrefix or stripPrefix: false, not both/,
    /6:15 routes\[1\]\.prefix duplicate prefix "\/a"/,
    /routes\[2\]\.scopes scopes need auth: required or optional/,
    /routes\[2\]\.audience audience needs auth/,
    /routes\[2\]\.rateLimit\.key auth: none has no token/,
    /routes\[3\]\.validation introspect needs client/,
    /routes\[4\]\.backchannelLogoutUri needs logoutAudience/,
    /routes back-channel logout needs client/,
    /routes\[5\]\.logoutAudience logoutAudience needs backchannelLogoutUri/,
    /routes\[6\]\.prefix \/oauth2\/logout is answered by the gateway itself/,
    /routes\[8\]\.name duplicate name "dup"/
  ]) t.match(found, expected)
})

t.test('a route may contain the gateway\'s own paths', async (t) => {
  t.same(problems('issuer: http://127.0.0.1:4000\nroutes: [{ prefix: /oauth2, upstreams: [http://u] }, { prefix: /, upstreams: [http://u] }]'), [])
})

t.test('a scopes key must be an HTTP method or *', async (t) => {
  const found = problems(`issuer: http://127.0.0.1:4000
routes:
  - prefix: /api
    upstreams: [http://u]
    scopes:
      GTE: [api:read]
      GET: [api:read]
      PROPFIND: [dav:read]
      '*': [api:write]
`)
  t.same(found, ['gateway.yaml:6:7 routes[0].scopes.GTE "GTE" is not an HTTP method: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (or another method Node accepts), or "*" for every method not listed'])
})

t.test('Shared Signals transmitters: how to authenticate, no duplicates, not the issuer twice', async (t) => {
  const found = problems(`issuer: http://127.0.0.1:4000
client: { id: gw, secret: s }
sharedSignals:
  transmitters:
    - { issuer: 'http://tx:1' }
    - { issuer: 'http://tx:2', bearerToken: t, client: { id: a, secret: b } }
    - { issuer: 'http://tx:3', bearerToken: t, tokenEndpoint: 'http://tx:3/token' }
    - { issuer: 'http://tx:4', bearerToken: t }
    - { issuer: 'http://tx:4', bearerToken: t }
    - { issuer: 'http://127.0.0.1:4000', bearerToken: t }
`).join('\n')
  for (const expected of [
    /5:7 sharedSignals\.transmitters\[0\] needs exactly one of client, bearerToken/,
    /sharedSignals\.transmitters\[1\] needs exactly one of client, bearerToken/,
    /sharedSignals\.transmitters\[2\]\.tokenEndpoint tokenEndpoint needs client/,
    /sharedSignals\.transmitters\[4\]\.issuer duplicate transmitter "http:\/\/tx:4" \(also sharedSignals\.transmitters\[3\]\)/,
    /sharedSignals\.transmitters\[5\]\.issuer is the gateway's issuer, already received through sharedSignals\.fromIssuer/
  ]) t.match(found, expected)
  t.match(problems(`issuer: http://127.0.0.1:4000
sharedSignals: { transmitters: [{ issuer: 'http://tx:5', bearerToken: t, appliesTo: [] }] }
`).join('\n'), /2:\d+ sharedSignals\.transmitters\[0\]\.appliesTo must NOT have fewer than 1 items/, 'appliesTo names at least one issuer')
  t.same(problems(`issuer: http://127.0.0.1:4000
sharedSignals: { fromIssuer: false, transmitters: [{ issuer: 'http://127.0.0.1:4000', client: { id: a, secret: b }, appliesTo: ['http://127.0.0.1:4000'] }] }
`), [], 'the issuer as an explicit transmitter once fromIssuer is off')
})

t.test('admin.listen needs a port of its own, whatever the hosts say (review finding)', async (t) => {
  const yaml = (publicHost: string, adminHost: string, adminPort: number): string => `issuer: http://127.0.0.1:4000
listen: { host: ${publicHost}, port: 8080 }
admin: { listen: { host: ${adminHost}, port: ${adminPort} } }
`
  t.match(problems(yaml('127.0.0.1', '127.0.0.1', 8080)).join('\n'), /admin\.listen\.port is the public port/)
  t.match(problems(yaml('0.0.0.0', '127.0.0.1', 8080)).join('\n'), /admin\.listen\.port is the public port/, 'every interface includes loopback')
  t.same(problems(yaml('0.0.0.0', '127.0.0.1', 8090)), [], 'another port is fine')
})
