/**
 * The comparison proxy of bench/gateway.ts: @fastify/jwt (fast-jwt, with its verified-token
 * cache) in front of @fastify/http-proxy. It checks what the gateway checks of the same ES256
 * tokens, except revocation (it has no list): algorithm ES256, typ at+jwt, iss, aud, exp/nbf,
 * scope api:read; and forwards the identity headers, without the Authorization header.
 * The public key comes from the issuer's discovery document and JWKS at start.
 * Environment: BENCH_PORT, BENCH_UPSTREAM, BENCH_ISSUER_URL, BENCH_AUDIENCE.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import proxy from '@fastify/http-proxy'

function required (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is not set`)
  return value
}

interface AccessToken { sub: string, client_id: string, scope?: string }

declare module '@fastify/jwt' {
  interface FastifyJWT { user: AccessToken }
}

const issuer = required('BENCH_ISSUER_URL')
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as { jwks_uri: string }
const { keys } = await (await fetch(discovery.jwks_uri)).json() as { keys: Array<JsonWebKey & { alg?: string }> }
const jwk = keys.find((k) => k.alg === 'ES256')
if (jwk === undefined) throw new Error('the issuer publishes no ES256 key')
const publicKey = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()

const app = Fastify({ logger: false })
await app.register(fastifyJwt, {
  secret: { public: publicKey },
  verify: {
    algorithms: ['ES256'],
    allowedIss: issuer,
    allowedAud: required('BENCH_AUDIENCE'),
    checkTyp: 'at+jwt',
    clockTolerance: 5000,
    // fast-jwt's LRU of verified tokens: `true` is 1000 entries.
    cache: true
  }
})
app.get('/healthz', async () => ({ status: 'ok' }))
await app.register(async (api) => {
  api.addHook('onRequest', async (request, reply) => {
    // Rejects with a 401 (FST_JWT_*) for a missing or invalid token.
    await request.jwtVerify()
    if (!(request.user.scope ?? '').split(' ').includes('api:read')) {
      return reply.code(403).header('www-authenticate', 'Bearer error="insufficient_scope", scope="api:read"').send({ error: 'insufficient_scope' })
    }
  })
  await api.register(proxy, {
    upstream: required('BENCH_UPSTREAM'),
    rewritePrefix: '',
    undici: { connections: 256, pipelining: 1 },
    replyOptions: {
      rewriteRequestHeaders: (request, headers) => {
        const { authorization: _dropped, ...rest } = headers
        const user = (request as unknown as { user: AccessToken }).user
        return { ...rest, 'x-auth-subject': user.sub, 'x-auth-client-id': user.client_id, 'x-auth-scope': user.scope ?? '' }
      }
    }
  })
}, { prefix: '/api' })
await app.listen({ host: '127.0.0.1', port: Number(required('BENCH_PORT')) })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
