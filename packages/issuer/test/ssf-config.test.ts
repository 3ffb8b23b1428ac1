/**
 * The `sharedSignals` config: defaults, the retention rule (located like every config
 * problem), the built-in `ssf.manage` / `ssf.read` scopes, and an issuer with it turned off.
 */
import t from 'tap'
import { readdir } from 'node:fs/promises'
import { ConfigError } from '@gatehouse/shared/config'
import { build } from '../src/app.ts'
import { parseIssuerConfig } from '../src/load-config.ts'
import { signalRetention } from '../src/ssf/retention.ts'
import { basic, postForm } from './fixtures/harness.ts'
import { ssfConfig, RECEIVER_SECRET } from './fixtures/ssf.ts'
import { SECRETS } from './fixtures/issuer.ts'

const problems = (yaml: string): string[] => {
  try {
    parseIssuerConfig(yaml, 'issuer.yaml', {})
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

const RECEIVER = '  - { clientId: gw, secret: gateway-secret-0123456789, grants: [client_credentials], scopes: [ssf.manage] }\n'

t.test('defaults', async (t) => {
  const config = parseIssuerConfig(`issuer: http://127.0.0.1:4000\nclients:\n${RECEIVER}`, 'issuer.yaml', {})
  t.same(config.sharedSignals, { enabled: true, pollWait: 25, inactivityTimeout: 3600, maxStreamsPerClient: 50 })
  t.equal(signalRetention(config), 3600, 'at least an hour')
  const long = parseIssuerConfig(`issuer: http://127.0.0.1:4000\ntokens: { accessTokenTtl: 600 }\nclients:\n${RECEIVER}  - { clientId: slow, secret: slow-secret-0123456789, grants: [client_credentials], accessTokenTtl: 7200 }\n`, 'issuer.yaml', {})
  t.equal(signalRetention(long), 7200, 'the longest access token lifetime, a client\'s own included')
  t.equal(signalRetention(parseIssuerConfig('issuer: http://127.0.0.1:4000\nsharedSignals: { retention: 86400 }\n', 'issuer.yaml', {})), 86400, 'or what is set')
})

t.test('a retention shorter than the longest access token lifetime is refused, at the field', async (t) => {
  const found = problems(`issuer: http://127.0.0.1:4000
tokens: { accessTokenTtl: 300 }
sharedSignals:
  retention: 1800
clients:
  - { clientId: slow, secret: slow-secret-0123456789, grants: [client_credentials], accessTokenTtl: 3600 }
`)
  t.match(found, [/^issuer\.yaml:4:14 sharedSignals\.retention must be at least the longest access token lifetime \(3600 s\)/])
  t.equal(found.length, 1)
  t.same(problems('issuer: http://127.0.0.1:4000\ntokens: { accessTokenTtl: 300 }\nsharedSignals: { retention: 300 }\n'), [], 'equal is enough')
  t.match(problems('issuer: http://127.0.0.1:4000\nsharedSignals: { pollWait: 0, maxStreamsPerClient: 0, bogus: 1 }\n').join('\n'), /pollWait[\s\S]*maxStreamsPerClient|maxStreamsPerClient[\s\S]*pollWait/, 'the schema checks the rest')
})

t.test('ssf.manage and ssf.read are built in unless declared or turned off', async (t) => {
  t.same(problems(`issuer: http://127.0.0.1:4000\nclients:\n${RECEIVER}`), [], 'a receiver lists ssf.manage without declaring it')
  const off = problems(`issuer: http://127.0.0.1:4000\nsharedSignals: { enabled: false }\nclients:\n${RECEIVER}`)
  t.match(off, [/clients\[0\]\.scopes\[0\] unknown scope "ssf\.manage"/], 'not when Shared Signals is off')
  const declared = parseIssuerConfig(`issuer: http://127.0.0.1:4000
scopes: [{ name: ssf.manage, description: Our own words, audience: https://elsewhere }]
clients:
${RECEIVER}`, 'issuer.yaml', {})
  t.same(problems(`issuer: http://127.0.0.1:4000\nscopes: [{ name: ssf.read }]\nclients:\n${RECEIVER}`), [], 'declaring one leaves the other built in')
  const app = await build(declared, { logger: false })
  t.teardown(async () => await app.close())
  t.equal(app.issuer.scopes.description('ssf.manage'), 'Our own words', 'a declared one is the config\'s')
  t.same(app.issuer.scopes.supported.filter((s) => s.startsWith('ssf.')).sort(), ['ssf.manage', 'ssf.read'], 'once each')
})

t.test('a receiver\'s token: the built-in scope gives the issuer as audience', async (t) => {
  const config = await ssfConfig(t.testdir())
  const app = await build(config, { logger: false })
  t.teardown(async () => await app.close())
  await app.listen({ host: '127.0.0.1', port: config.listen.port })
  const res = await postForm(`${config.issuer}/oauth2/token`, { grant_type: 'client_credentials', scope: 'ssf.manage' }, { authorization: basic('receiver-a', RECEIVER_SECRET) })
  t.equal(res.status, 200)
  const claims = JSON.parse(Buffer.from(String(res.json.access_token).split('.')[1]!, 'base64url').toString())
  t.equal(claims.aud, config.issuer)
  t.equal(claims.scope, 'ssf.manage')
  t.equal((await postForm(`${config.issuer}/oauth2/token`, { grant_type: 'client_credentials', scope: 'ssf.manage' }, { authorization: basic('service', SECRETS.service) })).json.error, 'invalid_scope', 'only for a client that lists it')
})

t.test('turned off: no endpoints, no events, no files', async (t) => {
  const dir = t.testdir()
  const config = await ssfConfig(dir, 'sharedSignals: { enabled: false }\n').catch(() => undefined)
  t.equal(config, undefined, 'the receivers of the fixture need the scope')
  const plain = parseIssuerConfig(`issuer: http://127.0.0.1:4000\ndataDir: ${dir}\nlog: { level: silent }\nsharedSignals: { enabled: false }\nusers: []\n`, 'issuer.yaml', {})
  const app = await build(plain, { logger: false })
  t.teardown(async () => await app.close())
  t.equal((await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/ssf/streams', payload: {} })).statusCode, 404)
  t.notOk((await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json().scopes_supported.includes('ssf.manage'))
  const minted = await app.issuer.tokens.mintAccessToken({ clientId: 'x', subject: 'x', scope: [], audience: ['x'], ttl: 60 })
  await app.issuer.signals.accessTokensRevoked({ txn: 't', reason: 'token revoked', initiatingEntity: 'user', announced: new Set() }, [minted.jti])
  t.notOk((await readdir(dir)).some((f) => f.startsWith('ssf-')), 'nothing written')
})
