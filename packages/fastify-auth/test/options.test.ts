/** Bad options fail at boot (at register time), with a message naming the option. */
import t from 'tap'
import Fastify from 'fastify'
import gatehouseAuth, { AuthOptionsError, TokenVerifier, type AuthOptions } from '../src/index.ts'

const issuer = 'https://issuer.example'

const bad: Array<[string, unknown]> = [
  ['options.issuer', {}],
  ['options.issuer', { issuer: 'not a url' }],
  ['options.issuer', { issuer: 'ftp://issuer.example' }],
  ['options.jwksUri', { issuer, jwksUri: 42 }],
  ['options.audience', { issuer, audience: '' }],
  ['options.audience', { issuer, audience: [] }],
  ['options.algorithms', { issuer, algorithms: ['none'] }],
  ['options.algorithms', { issuer, algorithms: ['HS256'] }],
  ['options.algorithms', { issuer, algorithms: [] }],
  ['options.clockTolerance', { issuer, clockTolerance: -1 }],
  ['options.maxTokenLength', { issuer, maxTokenLength: 1.5 }],
  ['options.cacheSize', { issuer, cacheSize: Number.NaN }],
  ['options.jwksCooldown', { issuer, jwksCooldown: '30s' }],
  ['options.maxStaleness', { issuer, maxStaleness: -5 }],
  ['options.failOpen', { issuer, failOpen: 'yes' }],
  ['options.revocations', { issuer, revocations: {} }],
  ['options.introspection.clientSecret', { issuer, introspection: { clientId: 'gw' } }],
  ['options.introspection.endpoint', { issuer, introspection: { clientId: 'gw', clientSecret: 's', endpoint: 'x' } }],
  ['options.onFailure', { issuer, onFailure: 'metrics' }],
  ['options.realm', { issuer, realm: 'say "hi"' }],
  ['options.clock', { issuer, clock: {} }]
]

for (const [option, options] of bad) {
  t.test(`${option}: ${JSON.stringify(options)}`, async (t) => {
    t.throws(() => new TokenVerifier(options as AuthOptions), { name: 'AuthOptionsError', option })
    t.throws(() => new TokenVerifier(options as AuthOptions), new RegExp(`^gatehouse-auth: ${option.replace(/\./g, '\\.')} `))
  })
}

t.test('the defaults need only the issuer', async (t) => {
  const v = new TokenVerifier({ issuer })
  t.equal(v.realm, 'gatehouse')
  t.equal(v.hasIntrospection, false)
  await v.close()
})

t.test('the plugin fails at register time', async (t) => {
  const app = Fastify()
  app.register(gatehouseAuth, { issuer, algorithms: ['HS256'] })
  await t.rejects(async () => await app.ready(), /options\.algorithms/)
  await app.close()
})

t.test('requireAuth checks the route at boot', async (t) => {
  const app = Fastify()
  await app.register(gatehouseAuth, { issuer })
  t.teardown(async () => await app.close())
  t.throws(() => app.requireAuth({ scopes: 'api:read' as unknown as string[] }), AuthOptionsError)
  t.throws(() => app.requireAuth({ scopes: ['api read'] }), /route\.scopes/)
  t.throws(() => app.requireAuth({ mode: 'sometimes' as 'optional' }), /route\.mode/)
  t.throws(() => app.requireAuth({ audience: [''] }), /route\.audience/)
  t.throws(() => app.requireAuth({ validation: 'introspect' }), /options\.introspection is not set/)
  t.type(app.requireAuth({ scopes: ['api:read'], audience: ['demo-api'] }), 'function')
})
