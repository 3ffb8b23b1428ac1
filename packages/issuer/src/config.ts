/**
 * The issuer's one config schema (TypeBox): it gives the TypeScript type, the defaults and
 * the documented reference. `additionalProperties: false` everywhere, so a typo fails at boot.
 */
import { Type, type Static } from '@sinclair/typebox'
import { AdminSchema } from '@gatehouse/shared/admin'
import { RedisSchema } from '@gatehouse/shared/redis-schema'
import { TrustProxySchema } from '@gatehouse/shared/trust-proxy'
import { tlsSchema } from '@gatehouse/shared/tls'

export { RedisSchema }

const Strict = { additionalProperties: false } as const

const Scope = Type.Object({
  name: Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$', description: 'Scope token (RFC 6749 3.3 characters).' }),
  description: Type.String({ default: '', description: 'Plain words shown on the consent page.' }),
  audience: Type.Optional(Type.String({ minLength: 1, description: 'Access tokens carrying this scope get this `aud` (a resource server identifier).' }))
}, Strict)

export const GrantType = Type.Union([
  Type.Literal('authorization_code'), Type.Literal('refresh_token'),
  Type.Literal('client_credentials'), Type.Literal('password'), Type.Literal('implicit')
])

export const AuthMethod = Type.Union([
  Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')
])

const Client = Type.Object({
  clientId: Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x20-\\x7E]+$', description: 'The `client_id`.' }),
  name: Type.Optional(Type.String({ description: 'Shown on the consent page; defaults to the client id.' })),
  // eslint-disable-next-line no-template-curly-in-string
  secret: Type.Optional(Type.String({ minLength: 16, description: 'Client secret in clear (use `${ENV_VAR}`); prefer `secretHash`.' })),
  secretHash: Type.Optional(Type.String({ pattern: '^sha256\\$[A-Za-z0-9_-]+\\$[A-Za-z0-9_-]{43}$', description: 'Salted SHA-256 of the secret, from `gatehouse-issuer hash-secret`.' })),
  tokenEndpointAuthMethod: Type.Optional(Type.Union([AuthMethod], { description: 'Only this authentication method is accepted. Default: `none` for clients without a secret, else either secret method.' })),
  grants: Type.Array(GrantType, { minItems: 1, uniqueItems: true, description: 'Grant types the client may use.' }),
  scopes: Type.Array(Type.String(), { default: [], uniqueItems: true, description: 'Scopes the client may be granted; requests never exceed these.' }),
  redirectUris: Type.Array(Type.String({ format: 'uri' }), { default: [], description: 'Registered redirect URIs, matched exactly.' }),
  postLogoutRedirectUris: Type.Array(Type.String({ format: 'uri' }), { default: [], description: 'Registered post-logout redirect URIs, matched exactly.' }),
  webOrigins: Type.Array(Type.String({ minLength: 1 }), { default: ['+'], uniqueItems: true, description: 'Origins (`scheme://host[:port]`, as browsers send them) whose scripts may call the token, revocation and userinfo endpoints, and read discovery and the JWKS, for this client (CORS); `+` stands for the origins of its redirect URIs, as in Keycloak. Default `[+]`; `[]` allows none. The authorization and logout endpoints are navigations and never answer CORS.' }),
  consentRequired: Type.Boolean({ default: false, description: 'Ask the user to consent to the scopes.' }),
  requirePkce: Type.Optional(Type.Boolean({ description: 'Require PKCE (S256) even for a confidential client. Public clients always need it.' })),
  backchannelLogoutUri: Type.Optional(Type.String({ format: 'uri', description: 'Where OIDC Back-Channel Logout tokens are posted.' })),
  accessTokenTtl: Type.Optional(Type.Integer({ minimum: 1, description: 'Seconds; overrides tokens.accessTokenTtl for this client.' })),
  revokesAnyToken: Type.Boolean({ default: false, description: 'A trusted gateway: may revoke or introspect tokens issued to other clients.' })
}, Strict)

const User = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 200 }),
  passwordHash: Type.String({ pattern: '^\\$scrypt\\$', description: 'From `gatehouse-issuer hash-password` (scrypt, PHC string).' }),
  subject: Type.Optional(Type.String({ minLength: 1, description: 'The `sub`; defaults to the username.' })),
  claims: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'OIDC claims (name, email, ...) for id_token and userinfo.' })
}, Strict)

export const IssuerConfigSchema = Type.Object({
  issuer: Type.String({ format: 'uri', pattern: '^https?://[^?#]+$', description: 'The `iss`: public base URL of the issuer, no query or fragment.' }),
  listen: Type.Object({
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 4000, description: 'Port to listen on.' }),
    tls: Type.Optional(tlsSchema('Serve https on this port, no proxy needed. The certificate is reloaded when its files change (new connections get it; a pair that does not load is logged and the old one keeps serving). `issuer` must then be an https URL: a mismatch is refused at start, since every endpoint the discovery document names is reached through it. The session cookies are `Secure` and `__Host-` prefixed, as with any https `issuer`.'))
  }, { ...Strict, default: {}, description: 'Where the HTTP server listens.' }),
  admin: Type.Optional(AdminSchema),
  dataDir: Type.String({ default: '.data/issuer', description: 'Embedded store: where signing keys are kept (mode 0600). Relative to the config file.' }),
  redis: Type.Optional(RedisSchema),
  keys: Type.Object({
    algorithm: Type.Union([Type.Literal('ES256'), Type.Literal('RS256'), Type.Literal('EdDSA')], { default: 'ES256', description: 'Algorithm of newly generated signing keys.' }),
    activationDelay: Type.Integer({ minimum: 0, default: 300, description: 'Seconds between `keys rotate` publishing a key and signing with it.' }),
    refreshInterval: Type.Integer({ minimum: 1, default: 10, description: 'Seconds between re-reads of the key store (rotations by other instances).' })
  }, { ...Strict, default: {}, description: 'Signing keys (generated at first start, rotated with `gatehouse-issuer keys rotate`).' }),
  tokens: Type.Object({
    accessTokenTtl: Type.Integer({ minimum: 1, default: 300, description: 'Access token lifetime, seconds.' }),
    idTokenTtl: Type.Integer({ minimum: 1, default: 300, description: 'id_token lifetime, seconds.' }),
    refreshTokenTtl: Type.Integer({ minimum: 1, default: 1_209_600, description: 'Refresh token idle lifetime, seconds: each rotation gets this much.' }),
    refreshTokenMaxTtl: Type.Integer({ minimum: 1, default: 2_592_000, description: 'Absolute lifetime of a refresh token family, seconds.' }),
    defaultAudience: Type.Optional(Type.String({ minLength: 1, description: '`aud` when no granted scope names one; default: the client id.' }))
  }, { ...Strict, default: {}, description: 'Token lifetimes and audience.' }),
  rateLimit: Type.Object({
    tokenPerClient: Type.Integer({ minimum: 1, default: 600, description: 'Token endpoint requests per client (or per IP when unidentified) per window.' }),
    window: Type.Integer({ minimum: 1, default: 60, description: 'Window, seconds.' }),
    loginPerUsername: Type.Integer({ minimum: 1, default: 10, description: 'FAILED sign-ins (login page and password grant together) per username that lock it until its loginWindow ends: the right password is refused too (login page: 429 page; password grant: 429 `temporarily_unavailable` with Retry-After). A successful sign-in clears the count. Unknown usernames are counted alike, so a lock tells nothing about which exist.' }),
    loginPerIp: Type.Integer({ minimum: 1, default: 50, description: 'FAILED sign-ins per client IP, over every username, that lock the address until its loginWindow ends. Keep it above loginPerUsername: people share addresses. Successes neither count nor clear it.' }),
    loginWindow: Type.Integer({ minimum: 1, default: 300, description: 'Sign-in throttling window, seconds: it opens at the first failure, and a lock lasts until it ends.' }),
    clientAuthPerClient: Type.Integer({ minimum: 1, default: 100, description: 'FAILED client authentications (token, introspection, revocation, session end) per registered client_id, from any address, past which its wrong secrets get 429 `temporarily_unavailable` with Retry-After (instead of 401) until its clientAuthWindow ends; its right secret keeps working, so nobody can lock a client (the gateway) out.' }),
    clientAuthPerIp: Type.Integer({ minimum: 1, default: 20, description: 'FAILED client authentications per client IP, over every client_id (unknown ones too), that lock the address until its clientAuthWindow ends.' }),
    clientAuthWindow: Type.Integer({ minimum: 1, default: 60, description: 'Client authentication throttling window, seconds: it opens at the first failure, and a lock lasts until it ends.' }),
    passwordHashConcurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'Password checks (scrypt, about 32 MiB and one libuv thread-pool thread each) run at once, at most. Default: the CPU cores available to the process (`os.availableParallelism()`).' })),
    passwordHashQueue: Type.Integer({ minimum: 0, default: 4, description: 'Password checks waiting for a free slot, at most (first come, first served). Beyond that a sign-in is refused at once (503 `temporarily_unavailable`, Retry-After: 1), so a burst of guesses cannot starve the other endpoints of CPU.' })
  }, { ...Strict, default: {}, description: 'Rate limits and sign-in throttling (shared through Redis when configured).' }),
  session: Type.Object({
    ttl: Type.Integer({ minimum: 60, default: 36_000, description: 'SSO session lifetime, seconds (absolute; a new login starts a new session).' }),
    cookieName: Type.String({ pattern: '^[A-Za-z0-9_-]+$', default: 'gatehouse_session', description: 'Name of the session cookie (signed, httpOnly, SameSite=Lax; under https, an https `issuer` or `listen.tls`, prefixed `__Host-` and Secure, else scoped to /oauth2).' }),
    cookieSecret: Type.Optional(Type.String({ minLength: 32, description: 'Cookie-signing secret; default: generated once and shared through the store.' })),
    consentTtl: Type.Integer({ minimum: 60, default: 15_552_000, description: 'How long a consent is remembered per user, client and scope, seconds.' })
  }, { ...Strict, default: {}, description: 'The issuer\'s SSO session and remembered consents.' }),
  authorization: Type.Object({
    codeTtl: Type.Integer({ minimum: 5, maximum: 600, default: 60, description: 'Authorization code lifetime, seconds (single use).' }),
    requirePkce: Type.Boolean({ default: false, description: 'Require PKCE (S256) for every client, not only public ones.' })
  }, { ...Strict, default: {}, description: 'The authorization endpoint.' }),
  backchannelLogout: Type.Object({
    timeout: Type.Number({ minimum: 0.1, maximum: 60, default: 5, description: 'Seconds to wait for each back-channel logout receiver.' }),
    resourceServers: Type.Array(Type.Object({
      audience: Type.String({ minLength: 1, description: '`aud` of the logout_token for this receiver.' }),
      uri: Type.String({ format: 'uri', description: 'Where the logout_token is POSTed.' })
    }, Strict), { default: [], description: 'Resource servers told of every session logout (clients get theirs through backchannelLogoutUri).' })
  }, { ...Strict, default: {}, description: 'OIDC Back-Channel Logout 1.0.' }),
  sharedSignals: Type.Object({
    enabled: Type.Boolean({ default: true, description: 'Be an OpenID Shared Signals (SSF 1.0) transmitter: every revocation becomes a CAEP session-revoked event that receivers (gateways) poll or get pushed. Adds the scopes `ssf.manage` and `ssf.read` (audience: the issuer) unless `scopes` declares them; a client listing `ssf.manage` is a receiver.' }),
    retention: Type.Optional(Type.Integer({ minimum: 1, description: 'Seconds an event is kept for receivers (a receiver down for less misses nothing; a new stream starts with every event kept). Default: the longest access token lifetime (tokens.accessTokenTtl and every client\'s accessTokenTtl), at least 3600; never shorter than that lifetime.' })),
    pollWait: Type.Number({ minimum: 0.01, maximum: 300, default: 25, description: 'Seconds a poll (RFC 8936) with nothing to deliver is held open waiting for an event before it answers with no events.' }),
    inactivityTimeout: Type.Integer({ minimum: 1, default: 3600, description: 'Seconds after which a stream whose receiver neither polled nor managed it is deleted (SSF inactivity_timeout).' }),
    maxStreamsPerClient: Type.Integer({ minimum: 1, default: 50, description: 'Streams one receiver client may hold at once (each gateway process has its own); beyond, creating one is a 409.' })
  }, { ...Strict, default: {}, description: 'OpenID Shared Signals transmitter (docs/shared-signals.md).' }),
  log: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'pino log level.' })
  }, { ...Strict, default: {}, description: 'Logging (JSON lines on stdout; secrets and tokens are never logged).' }),
  metrics: Type.Object({
    path: Type.String({ pattern: '^/[A-Za-z0-9._~/-]*$', default: '/metrics', description: 'Prometheus text endpoint (counts only, no secrets; keep it off the public edge if the counts are private).' })
  }, { ...Strict, default: {}, description: 'Prometheus metrics.' }),
  trustProxy: TrustProxySchema,
  scopes: Type.Array(Scope, { default: [], description: 'Scopes this issuer knows.' }),
  clients: Type.Array(Client, { default: [], description: 'Registered clients.' }),
  users: Type.Array(User, { default: [], description: 'Users (for the password grant and the login page).' })
}, { ...Strict, description: 'gatehouse-issuer configuration' })

export type IssuerConfig = Static<typeof IssuerConfigSchema>
export type ClientConfig = IssuerConfig['clients'][number]
export type UserConfig = IssuerConfig['users'][number]
export type RedisConfig = Static<typeof RedisSchema>
