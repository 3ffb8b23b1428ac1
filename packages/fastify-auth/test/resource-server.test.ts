/**
 * End to end: a plain Fastify resource server registers the plugin and protects routes with
 * `app.requireAuth(...)`, against a real issuer stand-in over HTTP.
 */
import t from 'tap'
import Fastify from 'fastify'
import gatehouseAuth, { AuthError, sendAuthError, TokenVerifier } from '../src/index.ts'
import { startIssuer } from './fixtures/issuer.ts'
import { startResourceServer } from './fixtures/resource-server.ts'

const issuer = await startIssuer()
await issuer.addKey('ES256')
const server = await startResourceServer({ issuer: issuer.url, audience: 'demo-api' })
t.teardown(async () => {
  await server.app.close()
  await issuer.close()
})

const bearer = (token: string): string => `Bearer ${token}`

t.test('requireAuth({ scopes: [\'api:read\'] }): 200 with request.auth', async (t) => {
  t.ok(server.app.gatehouseAuth instanceof TokenVerifier)
  const res = await server.get('/read', bearer(await issuer.sign({ scope: 'api:read api:write', sid: 's-1' })))
  t.equal(res.statusCode, 200)
  const auth = res.json()
  t.match(auth, { iss: issuer.url, sub: 'alice', aud: ['demo-api'], client_id: 'demo-web', sid: 's-1' })
  t.same(auth.scope, ['api:read', 'api:write'])
  t.equal(auth.raw.scope, 'api:read api:write', 'raw claims as received')
})

t.test('a missing scope: 403 insufficient_scope naming the scope (RFC 6750 3.1)', async (t) => {
  const res = await server.get('/write', bearer(await issuer.sign({ scope: 'api:read' })))
  t.equal(res.statusCode, 403)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="gatehouse", error="insufficient_scope", ' +
    'error_description="the access token lacks a required scope", scope="api:write"')
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(res.json(), { error: 'insufficient_scope', error_description: 'the access token lacks a required scope' })
  t.equal(server.failures.at(-1), 'insufficient_scope')
})

t.test('scheme and spacing per RFC 6750 2.1', async (t) => {
  const token = await issuer.sign()
  t.equal((await server.get('/read', `bearer ${token}`)).statusCode, 200, 'the scheme is case-insensitive')
  t.equal((await server.get('/read', `Bearer   ${token}`)).statusCode, 200, '1*SP')
  t.equal((await server.get('/read', `Bearer\t${token}`)).statusCode, 401, 'a tab is not SP')
  t.equal((await server.get('/read', `Bearer${token}`)).statusCode, 401, 'no space at all')
})

t.test('an optional route: no token is fine, a bad one is not', async (t) => {
  t.same((await server.get('/open')).json(), { auth: null })
  t.equal((await server.get('/open', 'Bearer nope')).statusCode, 401)
  const res = await server.get('/open', bearer(await issuer.sign()))
  t.equal(res.json().auth.sub, 'alice')
})

t.test('request.auth is null where requireAuth does not run', async (t) => {
  const app = Fastify()
  await app.register(gatehouseAuth, { issuer: issuer.url })
  app.get('/public', async (request) => ({ auth: request.auth }))
  t.teardown(async () => await app.close())
  t.same((await app.inject('/public')).json(), { auth: null })
})

t.test('sendAuthError from a hook of the app\'s own, with the plugin\'s realm', async (t) => {
  const app = Fastify()
  await app.register(gatehouseAuth, { issuer: issuer.url, realm: 'api' })
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/denied') return sendAuthError(reply, new AuthError('revoked'))
    if (request.url === '/down') return sendAuthError(reply, new AuthError('issuer_unavailable'))
  })
  app.get('/denied', async () => 'never')
  app.get('/down', async () => 'never')
  t.teardown(async () => await app.close())
  const denied = await app.inject('/denied')
  t.equal(denied.statusCode, 401)
  t.equal(denied.headers['www-authenticate'],
    'Bearer realm="api", error="invalid_token", error_description="the access token has been revoked"')
  const down = await app.inject('/down')
  t.equal(down.statusCode, 503)
  t.equal(down.headers['www-authenticate'], undefined)
  t.equal(down.json().error, 'temporarily_unavailable')
})

t.test('never a 500 for bad input', async (t) => {
  const inputs = ['Bearer ' + '.'.repeat(50), 'Bearer a.b.c', 'Bearer e30.e30.e30', 'Bearer ===', 'Bearer eyJ.eyJ.', 'x']
  for (const authorization of inputs) {
    t.equal((await server.get('/read', authorization)).statusCode, 401, authorization)
  }
})
