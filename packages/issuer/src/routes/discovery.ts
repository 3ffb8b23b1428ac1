/**
 * GET /.well-known/openid-configuration and /.well-known/oauth-authorization-server
 * (RFC 8414; OIDC Discovery 1.0), and the JWKS.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { IssuerContext } from '../context.ts'

export function discoveryDocument (ctx: IssuerContext): Record<string, unknown> {
  // What actually signs (a key generated before an algorithm change keeps signing) and what will.
  const algorithms = [...new Set([...ctx.keys.describe().map((k) => k.alg), ctx.config.keys.algorithm])]
  const base = ctx.config.issuer.replace(/\/$/, '')
  const secretMethods = ['client_secret_basic', 'client_secret_post']
  return {
    issuer: ctx.config.issuer,
    authorization_endpoint: `${base}/oauth2/authorise`,
    token_endpoint: `${base}/oauth2/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    userinfo_endpoint: `${base}/oauth2/userinfo`,
    end_session_endpoint: `${base}/oauth2/logout`,
    response_types_supported: ['code', 'token'],
    response_modes_supported: ['query', 'fragment'],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    // RFC 9207
    authorization_response_iss_parameter_supported: true,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'password', 'implicit'],
    token_endpoint_auth_methods_supported: [...secretMethods, 'none'],
    revocation_endpoint_auth_methods_supported: [...secretMethods, 'none'],
    introspection_endpoint_auth_methods_supported: secretMethods,
    scopes_supported: ctx.scopes.supported,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algorithms,
    // RFC 9068 access tokens are signed with the same keys.
    access_token_signing_alg_values_supported: algorithms,
    code_challenge_methods_supported: ['S256'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'sid', 'name', 'email', 'email_verified']
  }
}

export function discoveryRoutes (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    // Rebuilt per request (it is small): the algorithms follow key rotation.
    const send = async (_request: unknown, reply: FastifyReply): Promise<void> => {
      await reply.type('application/json').header('cache-control', 'public, max-age=300').send(JSON.stringify(discoveryDocument(ctx)))
    }
    app.get('/.well-known/openid-configuration', send)
    app.get('/.well-known/oauth-authorization-server', send)
    app.get('/.well-known/jwks.json', async (_request, reply) => {
      // Short max-age: a rotated key is published `activationDelay` before it signs.
      await reply.type('application/jwk-set+json').header('cache-control', 'public, max-age=60').send(ctx.keys.jwks)
    })
  }
}
