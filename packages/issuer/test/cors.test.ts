/**
 * CORS at the issuer (issue 12): the endpoints a browser script calls answer preflights and
 * responses for the clients' web origins only; navigations (authorization, logout) never do;
 * a response keeps Access-Control-Allow-Origin only for the origins of the client it concerns;
 * bad or unknown origins get no CORS header and never a 500. Real HTTP on a real listener.
 */
import t from 'tap'
import { build } from '../src/app.ts'
import { freePort } from '@gatehouse/test-kit/redis-harness'
import { fixtureYaml, SECRETS } from './fixtures/issuer.ts'
import { basic } from './fixtures/harness.ts'
import { parseIssuerConfig } from '../src/load-config.ts'
import { ConfigError } from '@gatehouse/shared/config'

const SPA = 'http://127.0.0.1:3000' // the `spa` fixture client's redirect URI origin (the default `+`)
const CLI = 'https://cli.example'
const STRANGER = 'https://evil.example'

const yaml = (await fixtureYaml(await freePort(), t.testdir())).replace('  - clientId: cli\n', `  - clientId: cli\n    webOrigins: ['${CLI}']\n`)
const config = parseIssuerConfig(yaml, 'issuer.yaml', {})
if (!config.clients.some((c) => c.webOrigins.includes(CLI))) throw new Error('the fixture has no cli client to give an origin')
const app = await build(config, { logger: false })
t.teardown(async () => await app.close())
await app.listen({ host: config.listen.host, port: config.listen.port })
const url = config.issuer

const corsHeaders = (res: Response): Record<string, string> =>
  Object.fromEntries([...res.headers].filter(([name]) => name.startsWith('access-control-')))

async function preflight (path: string, origin: string, method = 'POST', headers?: string): Promise<Response> {
  return await fetch(`${url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, ...(headers === undefined ? {} : { 'access-control-request-headers': headers }) }
  })
}

async function passwordGrant (origin: string): Promise<Response> {
  return await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { origin, authorization: basic('cli', SECRETS.cli), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'openid api:read' })
  })
}

t.test('a preflight from a registered origin is answered before anything else', async (t) => {
  for (const path of ['/oauth2/token', '/oauth2/revoke', '/oauth2/userinfo', '/.well-known/openid-configuration', '/.well-known/jwks.json']) {
    const res = await preflight(path, SPA, 'POST', 'Content-Type, Authorization')
    t.equal(res.status, 204, `${path}: 204`)
    t.equal(res.headers.get('access-control-allow-origin'), SPA, `${path}: the origin is allowed`)
    t.match(res.headers.get('access-control-allow-methods'), /POST/)
    t.match(res.headers.get('access-control-allow-headers'), /authorization/)
    t.equal(res.headers.get('access-control-max-age'), '600')
    t.notOk(res.headers.has('access-control-allow-credentials'), 'no credentials: these endpoints take no cookies')
    t.match(res.headers.get('vary'), /origin/i, 'caches keep answers per origin')
  }
})

t.test('preflights that are not allowed get no CORS header at all', async (t) => {
  const cases: Array<[string, Response]> = [
    ['an unknown origin', await preflight('/oauth2/token', STRANGER)],
    ['a method not allowed', await preflight('/oauth2/token', SPA, 'DELETE')],
    ['a header not allowed', await preflight('/oauth2/token', SPA, 'POST', 'content-type, x-made-up')],
    ['the authorization endpoint (a navigation)', await preflight('/oauth2/authorise', SPA, 'GET')],
    ['the logout endpoint (a navigation)', await preflight('/oauth2/logout', SPA, 'GET')],
    ['introspection (server to server)', await preflight('/oauth2/introspect', SPA)],
    ['origin "null" (a sandboxed page)', await preflight('/oauth2/token', 'null')],
    ['a malformed origin', await preflight('/oauth2/token', 'http://[::1')],
    ['the origin with a path', await preflight('/oauth2/token', `${SPA}/`)],
    ['no Access-Control-Request-Method', await fetch(`${url}/oauth2/token`, { method: 'OPTIONS', headers: { origin: SPA } })]
  ]
  for (const [what, res] of cases) {
    t.same(corsHeaders(res), {}, `${what}: no access-control-* header`)
    t.ok(res.status < 500, `${what}: ${res.status}, not a server error`)
  }
})

t.test('responses carry the origin only for the client they concern', async (t) => {
  const own = await passwordGrant(CLI)
  t.equal(own.status, 200)
  t.equal(own.headers.get('access-control-allow-origin'), CLI, 'the token response to the client\'s own origin')
  t.match(own.headers.get('access-control-expose-headers'), /www-authenticate/, 'RFC 6750 errors are readable by the script')
  const { access_token: token } = await own.json() as { access_token: string }

  const other = await passwordGrant(SPA)
  t.equal(other.status, 200, 'CORS never changes what the server does')
  t.notOk(other.headers.has('access-control-allow-origin'), 'another client\'s origin cannot read cli\'s tokens')
  t.same(corsHeaders(await passwordGrant(STRANGER)), {}, 'an unknown origin: nothing')

  const userinfo = async (origin: string): Promise<Response> => await fetch(`${url}/oauth2/userinfo`, { headers: { origin, authorization: `Bearer ${token}` } })
  t.equal((await userinfo(CLI)).headers.get('access-control-allow-origin'), CLI, 'userinfo: the token\'s client\'s origin')
  t.notOk((await userinfo(SPA)).headers.has('access-control-allow-origin'), 'userinfo: not another client\'s origin')

  // The public spa revokes (RFC 7009: an unknown token is a 200) from its own origin.
  const revoke = await fetch(`${url}/oauth2/revoke`, {
    method: 'POST',
    headers: { origin: SPA, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'spa', token: 'not-a-token-of-anyone' })
  })
  t.equal(revoke.status, 200)
  t.equal(revoke.headers.get('access-control-allow-origin'), SPA, 'revocation: the public client\'s origin')

  // An authentication failure from an allowed origin stays readable (the script learns why).
  const failed = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { origin: SPA, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'spa', code: 'made-up', redirect_uri: `${SPA}/cb`, code_verifier: 'x'.repeat(43) })
  })
  t.equal(failed.status, 400)
  t.equal(failed.headers.get('access-control-allow-origin'), SPA)
  t.match(await failed.json(), { error: 'invalid_grant' })
})

t.test('discovery and the JWKS: every client\'s origins, nobody else', async (t) => {
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/.well-known/jwks.json']) {
    for (const origin of [SPA, CLI]) {
      const res = await fetch(`${url}${path}`, { headers: { origin } })
      t.equal(res.headers.get('access-control-allow-origin'), origin, `${path} for ${origin}`)
    }
    t.same(corsHeaders(await fetch(`${url}${path}`, { headers: { origin: STRANGER } })), {}, `${path}: not for a stranger`)
  }
})

t.test('the authorization page never answers CORS', async (t) => {
  const res = await fetch(`${url}/oauth2/authorise?client_id=spa&response_type=code`, { headers: { origin: SPA }, redirect: 'manual' })
  t.ok(res.status < 500, `answered ${res.status}`)
  t.same(corsHeaders(res), {})
})

t.test('webOrigins in the YAML: origins as browsers send them, or +', async (t) => {
  const yaml = (origins: string): string => `issuer: http://127.0.0.1:4000
scopes: [{ name: openid }]
clients:
  - clientId: app
    grants: [authorization_code]
    redirectUris: [https://app.example/cb]
    webOrigins: ${origins}
`
  t.same(parseIssuerConfig(yaml('[+, "https://other.example:8443"]'), 'issuer.yaml', {}).clients[0]?.webOrigins, ['+', 'https://other.example:8443'])
  for (const [bad, message] of [['https://app.example/', /webOrigins\[0\] "https:\/\/app.example\/" is not written as browsers send it: https:\/\/app.example/], ['HTTPS://App.example', /is not written as browsers send it/], ['https://app.example:443', /is not written as browsers send it: https:\/\/app.example /], ['ftp://app.example', /must be an http or https origin/], ['app.example', /is not an origin/], ['*', /is not an origin/]] as const) {
    try {
      parseIssuerConfig(yaml(`["${bad}"]`), 'issuer.yaml', {})
      t.fail(`${bad} was accepted`)
    } catch (err) {
      t.type(err, ConfigError)
      t.match((err as Error).message, /^issuer\.yaml:7:\d+ clients\[0\]\.webOrigins\[0\]/, `${bad}: located`)
      t.match((err as Error).message, message, `${bad}: says why`)
    }
  }
})
