/**
 * Discovery (RFC 8414, OIDC Discovery 1.0) and the JWKS: both documents, accepted by a strict
 * client, every advertised endpoint answering, public keys only, and tokens that verify
 * against the JWKS for each supported signing algorithm.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { decodeProtectedHeader } from 'jose'
import { build } from '../src/app.ts'
import { forEachStore, insecure, startIssuer } from './fixtures/harness.ts'
import { fixtureConfig } from './fixtures/issuer.ts'
import { serviceToken } from './fixtures/flows.ts'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
/** Endpoints a browser (or a relying party) reaches with GET; the others take a form POST. */
const GET_ENDPOINTS = new Set(['jwks_uri', 'authorization_endpoint', 'userinfo_endpoint', 'end_session_endpoint'])

interface Jwk extends Record<string, unknown> { kid?: unknown, alg?: unknown, use?: unknown, kty?: unknown }

async function jwksOf (uri: string): Promise<{ status: number, contentType: string | null, keys: Jwk[] }> {
  const res = await fetch(uri)
  const body = await res.json() as { keys: Jwk[] }
  return { status: res.status, contentType: res.headers.get('content-type'), keys: body.keys }
}

forEachStore(t, async (t, kind) => {
  const { url } = await startIssuer(t, kind)
  const issuer = new URL(url)

  t.test('both well-known documents are identical and a strict client accepts each', async (t) => {
    const docs = []
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const res = await fetch(`${url}${path}`)
      t.equal(res.status, 200, path)
      t.match(res.headers.get('content-type'), /^application\/json/, `${path}: JSON`)
      docs.push(await res.json())
    }
    t.same(docs[0], docs[1], 'same content')
    const oidc = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }))
    const rfc8414 = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
    t.equal(oidc.issuer, url, 'issuer is the configured identifier')
    t.same(oidc, rfc8414)
    t.equal(oidc.token_endpoint, `${url}/oauth2/token`)
    t.equal(oidc.revocation_endpoint, `${url}/oauth2/revoke`)
    t.equal(oidc.introspection_endpoint, `${url}/oauth2/introspect`)
    t.equal(oidc.jwks_uri, `${url}/.well-known/jwks.json`)
    t.same(oidc.code_challenge_methods_supported, ['S256'], 'plain PKCE is never advertised')
    t.same(oidc.id_token_signing_alg_values_supported, ['ES256'])
    const wrongIssuer = new URL('http://127.0.0.1:1/')
    await t.rejects(oauth.processDiscoveryResponse(wrongIssuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' })),
      'a client expecting another issuer refuses the document (so the issuer check above means something)')
  })

  t.test('every advertised endpoint answers (never 404, never 5xx)', async (t) => {
    const doc = await (await fetch(`${url}/.well-known/openid-configuration`)).json() as Record<string, unknown>
    const endpoints = Object.entries(doc).filter(([name]) => name.endsWith('_endpoint') || name === 'jwks_uri')
    t.ok(endpoints.length >= 4, `${endpoints.length} endpoints advertised`)
    for (const [name, value] of endpoints) {
      t.type(value, 'string', name)
      const target = new URL(String(value))
      t.equal(target.origin, issuer.origin, `${name} is on the issuer's origin`)
      const res = GET_ENDPOINTS.has(name)
        ? await fetch(target, { redirect: 'manual' })
        : await fetch(target, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' })
      await res.arrayBuffer()
      t.not(res.status, 404, `${name} (${GET_ENDPOINTS.has(name) ? 'GET' : 'POST'} ${target.pathname}) exists`)
      t.ok(res.status < 500, `${name}: ${res.status} is not a server error`)
    }
  })

  t.test('the JWKS: kid, alg, use=sig, and no private members', async (t) => {
    const jwks = await jwksOf(`${url}/.well-known/jwks.json`)
    t.equal(jwks.status, 200)
    t.match(jwks.contentType, /^application\/(jwk-set\+)?json/)
    t.ok(jwks.keys.length >= 1, 'at least one key')
    for (const key of jwks.keys) {
      t.type(key.kid, 'string')
      t.equal(key.alg, 'ES256')
      t.equal(key.use, 'sig')
      t.match(key, { kty: 'EC', crv: 'P-256' })
      for (const member of PRIVATE_MEMBERS) t.notOk(member in key, `no "${member}" in ${String(key.kid)}`)
    }
    t.equal(new Set(jwks.keys.map((k) => k.kid)).size, jwks.keys.length, 'kids are unique')
  })
})

t.test('discovery advertises the algorithms of the keys that actually sign', async (t) => {
  // Changing keys.algorithm keeps the stored keys (the setting is for *newly generated* keys),
  // so the issuer keeps signing ES256 while the metadata says RS256 only.
  const dataDir = t.testdir()
  const first = await build(await fixtureConfig(dataDir), { logger: false })
  await first.close()
  const config = await fixtureConfig(dataDir, 'keys: { algorithm: RS256 }\n')
  const app = await build(config, { logger: false })
  t.teardown(async () => await app.close())
  await app.listen({ host: config.listen.host, port: config.listen.port })
  const issuer = new URL(config.issuer)
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }))
  const jwks = await jwksOf(as.jwks_uri ?? '')
  const { alg } = decodeProtectedHeader((await serviceToken(as)).access_token)
  t.equal(alg, 'ES256', 'the stored ES256 key still signs (as documented)')
  for (const name of ['id_token_signing_alg_values_supported', 'access_token_signing_alg_values_supported'] as const) {
    const advertised = as[name] as string[] | undefined
    t.ok(advertised?.includes(String(alg)), `${name} ${JSON.stringify(advertised)} includes the signing alg ${String(alg)}`)
    for (const key of jwks.keys) t.ok(advertised?.includes(String(key.alg)), `${name} includes the alg of published key ${String(key.kid)}`)
  }
})

for (const [algorithm, shape] of [['ES256', { kty: 'EC', crv: 'P-256' }], ['RS256', { kty: 'RSA' }], ['EdDSA', { kty: 'OKP', crv: 'Ed25519' }]] as const) {
  t.test(`keys.algorithm ${algorithm}: JWKS and a verifiable client_credentials token`, async (t) => {
    const { as, url } = await startIssuer(t, 'memory', `keys: { algorithm: ${algorithm} }\n`)
    t.same(as.id_token_signing_alg_values_supported, [algorithm], 'advertised')
    const jwks = await jwksOf(`${url}/.well-known/jwks.json`)
    t.equal(jwks.keys.length, 1)
    const [jwk] = jwks.keys
    t.match(jwk, { ...shape, alg: algorithm, use: 'sig', kid: String })
    for (const member of PRIVATE_MEMBERS) t.notOk(jwk !== undefined && member in jwk, `no "${member}"`)

    const { access_token: token } = await serviceToken(as)
    const header = decodeProtectedHeader(token)
    t.equal(header.alg, algorithm, 'alg header')
    t.equal(header.typ, 'at+jwt')
    t.equal(header.kid, jwk?.kid, 'kid of the published key')
    const request = new Request('http://rs.example/api', { headers: { authorization: `Bearer ${token}` } })
    const claims = await oauth.validateJwtAccessToken(as, request, 'demo-api', { ...insecure, signingAlgorithms: [algorithm] })
    t.equal(claims.client_id, 'service')
    t.equal(claims.iss, url)
    const tampered = `${token.slice(0, token.lastIndexOf('.') + 1)}${Buffer.alloc(algorithm === 'RS256' ? 256 : 64).toString('base64url')}`
    const bad = new Request('http://rs.example/api', { headers: { authorization: `Bearer ${tampered}` } })
    await t.rejects(oauth.validateJwtAccessToken(as, bad, 'demo-api', { ...insecure, signingAlgorithms: [algorithm] }), 'a bad signature is refused (so the check above verifies)')
  })
}
