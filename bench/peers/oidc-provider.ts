/**
 * The comparison peer: npm `oidc-provider` configured like bench/fixtures/issuer.yaml. One
 * confidential client (client_secret_basic, client_credentials, scope api:read); access tokens
 * are RFC 9068 JWTs signed ES256, aud "demo-api", 300 s, through the resourceIndicators feature.
 *
 * Started by bench/token-issuance.ts as its own process; everything comes from the environment:
 * BENCH_PORT, BENCH_ISSUER_URL, BENCH_SIGNING_JWK (private JWK, JSON), BENCH_CLIENT_ID,
 * BENCH_CLIENT_SECRET.
 */
import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'
import Provider, { errors } from 'oidc-provider'

function required (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is not set`)
  return value
}

const port = Number(required('BENCH_PORT'))
const issuer = required('BENCH_ISSUER_URL')
const signingJwk = JSON.parse(required('BENCH_SIGNING_JWK'))

/** RFC 8707 resource indicator of the demo API; the token's `aud` is its audience. */
const RESOURCE = 'urn:gatehouse:demo-api'
const resourceServer = {
  scope: 'api:read',
  audience: 'demo-api',
  accessTokenTTL: 300,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'ES256' } }
} as const

const provider = new Provider(issuer, {
  clients: [{
    client_id: required('BENCH_CLIENT_ID'),
    client_secret: required('BENCH_CLIENT_SECRET'),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    // The default is RS256 and there is no RSA key: everything signs with the one ES256 key.
    id_token_signed_response_alg: 'ES256',
    scope: 'api:read'
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['api:read'],
  ttl: { ClientCredentials: 300 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: unknown, resource: string) => {
        if (resource !== RESOURCE) throw new errors.InvalidTarget()
        return resourceServer
      }
    }
  }
})

const server = createServer(provider.callback())
server.listen(port, '127.0.0.1')
const stop = (): void => { server.close(() => process.exit(0)) }
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
