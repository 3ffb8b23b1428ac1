/**
 * The gateway's one config schema (TypeBox): it gives the TypeScript type, the defaults and
 * the documented reference. `additionalProperties: false` everywhere, so a typo fails at boot.
 * Rules across fields (duplicate prefixes, ...) live in load-config.ts.
 */
import { Type, type Static } from '@sinclair/typebox'
import { AdminSchema } from '@gatehouse/shared/admin'
import { RedisSchema } from '@gatehouse/shared/redis-schema'
import { TrustProxySchema } from '@gatehouse/shared/trust-proxy'
import { tlsSchema } from '@gatehouse/shared/tls'

const Strict = { additionalProperties: false } as const

const HttpUrl = (description: string) => Type.String({ format: 'uri', pattern: '^https?://[^?#]+$', description })

/** Unreserved characters only (RFC 3986 2.3), so a prefix means the same encoded or decoded. */
export const PREFIX_PATTERN = '^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$'

const HeaderName = (fallback: string, description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', default: fallback, description })

const Method = Type.String({ pattern: '^([A-Z]+|\\*)$' })

const CorsSchema = Type.Object({
  handledBy: Type.Union([Type.Literal('gateway'), Type.Literal('upstream')], { default: 'gateway', description: '`gateway`: the gateway answers preflights itself, before authentication, and never forwards them; `upstream`: the upstream does CORS itself, so preflights are forwarded to it without a token check and its headers pass unchanged (the other fields must then be left out).' }),
  origins: Type.Array(Type.String({ minLength: 1 }), { default: [], uniqueItems: true, description: 'Origins whose scripts may call this route (`https://app.example`, as browsers send them: scheme://host[:port], no path), or `*` for any (not with `credentials`).' }),
  methods: Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { default: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], uniqueItems: true, description: 'Methods a preflight may ask for.' }),
  headers: Type.Array(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), { default: ['authorization', 'content-type'], uniqueItems: true, description: 'Request headers a preflight may ask for, beyond the CORS-safelisted ones (compared case-insensitively).' }),
  exposedHeaders: Type.Array(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), { default: ['www-authenticate', 'retry-after', 'x-request-id'], uniqueItems: true, description: 'Response headers a script may read beyond the safelisted ones (`WWW-Authenticate` tells it why a token was refused).' }),
  credentials: Type.Boolean({ default: false, description: 'Send `Access-Control-Allow-Credentials: true`, letting scripts send cookies: only for routes that authenticate by cookie. Bearer tokens need no credentials.' }),
  maxAge: Type.Integer({ minimum: 0, maximum: 86_400, default: 600, description: 'Seconds a browser may cache a preflight answer.' })
}, { ...Strict, description: 'CORS for browser scripts on other origins (docs: README, CORS). Without it the gateway does no CORS on the route, and an OPTIONS request is an ordinary request.' })

export type CorsConfig = Static<typeof CorsSchema>

const Route = Type.Object({
  name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Label in metrics and logs; default: the prefix.' })),
  prefix: Type.String({ pattern: PREFIX_PATTERN, description: 'Path prefix, matched on whole segments (`/api` matches `/api` and `/api/x`, not `/apix`); the longest match wins. Starts with `/`, no trailing slash except `/` itself.' }),
  upstreams: Type.Array(HttpUrl('Upstream base URL (may carry a base path).'), { minItems: 1, description: 'Upstream base URLs, used in turn (round robin) among those in rotation (see `health`). A request that could not reach one (connection refused, unreachable, connect timeout, TLS handshake failed: nothing sent) goes to the next, whatever its method.' }),
  // Optional in the type (the loader fills the defaults): routes built by hand need not say them.
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 5, default: 1, description: 'Extra attempts, on another upstream when there is one, for a request that may have reached the upstream before failing (reset, no answer in `timeout`): only for `retryMethods` and requests without a body. Requests that reached no upstream are always sent to the next one and do not count here.' })),
  retryMethods: Type.Optional(Type.Array(Type.Union(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'].map((m) => Type.Literal(m))), { default: ['GET', 'HEAD', 'OPTIONS'], uniqueItems: true, description: 'Methods `retries` applies to: idempotent ones only (RFC 9110 9.2.2), so a POST or a PATCH is never sent twice.' })),
  health: Type.Optional(Type.Object({
    passive: Type.Object({
      failures: Type.Integer({ minimum: 0, default: 3, description: 'Failed requests in a row (connection refused, reset, timeout, a status in `statuses`) that eject an upstream from rotation; 0 turns passive checks off.' }),
      backoff: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Seconds an ejected upstream gets no traffic; then one request is let through (half-open): answered, the upstream rejoins; failed, the back-off doubles. The last upstream in rotation is never ejected for failures of requests it received (statuses, resets, timeouts): its answers beat a 503; only connection failures (and active checks) take every upstream out.' }),
      maxBackoff: Type.Number({ exclusiveMinimum: 0, default: 120, description: 'Longest back-off, seconds.' }),
      statuses: Type.Array(Type.Integer({ minimum: 500, maximum: 599 }), { default: [502, 503, 504], uniqueItems: true, description: 'Upstream answers counted as failures (still passed on to the caller, never retried).' })
    }, { ...Strict, default: {}, description: 'Passive health checks: what the requests themselves show.' }),
    active: Type.Optional(Type.Object({
      path: Type.String({ pattern: '^/[^?#\\s]*(\\?[^#\\s]*)?$', description: 'Path (after the upstream\'s base path) the gateway GETs; a 2xx or 3xx answer is healthy.' }),
      interval: Type.Number({ minimum: 0.05, default: 5, description: 'Seconds between checks of each upstream.' }),
      timeout: Type.Number({ exclusiveMinimum: 0, default: 2, description: 'Seconds a check may take; longer is a failure.' }),
      healthy: Type.Integer({ minimum: 1, default: 2, description: 'Successes in a row that bring an upstream back into rotation.' }),
      unhealthy: Type.Integer({ minimum: 1, default: 3, description: 'Failures in a row that take an upstream out of rotation.' })
    }, { ...Strict, description: 'Active health checks: the gateway polls every upstream of the route (each instance of the gateway on its own). An upstream failing them gets no traffic until it passes them again.' }))
  }, { ...Strict, default: {}, description: 'Upstream health, per gateway instance (README: Upstreams that fail). When no upstream of a route is in rotation, requests get 503 at once, with `Retry-After`.' })),
  stripPrefix: Type.Boolean({ default: true, description: 'Remove the prefix before forwarding (`/api/x` -> `/x`). Set false to forward the path as received.' }),
  rewritePrefix: Type.Optional(Type.String({ pattern: PREFIX_PATTERN, description: 'Replace the prefix with this one (`/api/x` -> `/v2/x`); excludes `stripPrefix: false`.' })),
  auth: Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('none')], { default: 'required', description: '`required`: no valid token is 401; `optional`: a token is checked (and its identity forwarded) when present; `none`: no check, and no Authorization header is forwarded.' }),
  validation: Type.Union([Type.Literal('local'), Type.Literal('introspect')], { default: 'local', description: '`local`: the JWT is verified here (issuer keys, revocation mirror); `introspect`: the issuer is asked (RFC 7662, short cache), only about a JWT whose `iss` is `issuer` and whose `exp` is not past; anything else is refused without asking, and a refusal is remembered for 10 s.' }),
  scopes: Type.Optional(Type.Record(Method, Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true, description: 'Scopes needed for this method.' }), { additionalProperties: false, description: 'Scopes needed, per HTTP method (`GET`, `POST`, ...; a key that is no HTTP method is an error), with `*` for every other method; every listed scope is needed. E.g. `{ GET: [api:read], "*": [api:write] }`.' })),
  audience: Type.Optional(Type.String({ minLength: 1, description: 'Expected `aud` of tokens on this route; default: `auth.audience`.' })),
  rateLimit: Type.Optional(Type.Object({
    max: Type.Integer({ minimum: 1, description: 'Requests allowed per key per window.' }),
    window: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'Window, seconds.' }),
    key: Type.Union([Type.Literal('client_id'), Type.Literal('subject'), Type.Literal('ip')], { default: 'client_id', description: 'What is counted: the token\'s `client_id`, its `sub`, or the caller\'s IP (used as well when there is no token).' })
  }, { ...Strict, description: 'Per-route rate limit (shared through Redis when configured); 429 when exceeded.' })),
  timeout: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'Seconds to wait for the upstream\'s response headers (and between body chunks); then 504.' }),
  cors: Type.Optional(CorsSchema),
  websocket: Type.Optional(Type.Object({
    maxMessageSize: Type.Integer({ minimum: 1, maximum: 104_857_600, default: 1_048_576, description: 'Largest message, bytes, taken in either direction; a larger one closes that connection (1009).' })
  }, { ...Strict, description: 'Proxy WebSocket upgrades on this route (`websocket: {}` for the defaults). The upgrade is checked as a GET (token, scopes, rate limit; browsers send the token as the subprotocol `gatehouse.bearer.<token>`), then relayed both ways; a connection is closed (1008) when its session or token is revoked or its token expires.' })),
  backchannelLogoutUri: Type.Optional(HttpUrl('The resource server\'s OIDC Back-Channel Logout endpoint: the gateway posts it a `logout_token` on logout.')),
  logoutAudience: Type.Optional(Type.String({ minLength: 1, description: '`aud` of the logout_token for `backchannelLogoutUri`; default: `audience`, else `auth.audience`.' }))
}, Strict)

export const GatewayConfigSchema = Type.Object({
  listen: Type.Object({
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Port to listen on.' }),
    tls: Type.Optional(tlsSchema('Serve https on this port. The certificate is reloaded when its files change and on SIGHUP (new connections get it; a pair that does not load is logged and the old one keeps serving). Upstreams and the issuer are called as their URLs say.')),
    // Optional in the type (the loader still fills the default): configs built by hand need not say it.
    http2: Type.Optional(Type.Boolean({ default: false, description: 'Also serve HTTP/2 to clients that offer it (ALPN); HTTP/1.1 clients are still served on the same port. Needs `tls`. Upstreams are still called over HTTP/1.1.' }))
  }, { ...Strict, default: {}, description: 'Where the HTTP server listens.' }),
  admin: Type.Optional(AdminSchema),
  proxy: Type.Optional(Type.Object({
    connectTimeout: Type.Number({ exclusiveMinimum: 0, maximum: 300, default: 5, description: 'Seconds to open a connection to an upstream; past it the request goes to the next upstream (nothing was sent).' })
  }, { ...Strict, default: {}, description: 'How the gateway connects to upstreams (all routes).' })),
  issuer: HttpUrl('The issuer (`iss`); keys come from its discovery document and JWKS.'),
  client: Type.Optional(Type.Object({
    id: Type.String({ minLength: 1, description: 'The gateway\'s `client_id` at the issuer (a client with `revokesAnyToken: true`).' }),
    // eslint-disable-next-line no-template-curly-in-string
    secret: Type.String({ minLength: 1, description: 'Its secret (use `${ENV_VAR}`).' })
  }, { ...Strict, description: 'The gateway\'s client credentials at the issuer, for logout (session end) and introspection. Without them the logout path is not served.' })),
  redis: Type.Optional(RedisSchema),
  auth: Type.Object({
    algorithms: Type.Array(Type.String({ pattern: '^(ES256|ES384|ES512|RS256|RS384|RS512|PS256|PS384|PS512|EdDSA|Ed25519)$' }), { minItems: 1, uniqueItems: true, default: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'], description: 'Asymmetric algorithms accepted (never `none`, never HS*).' }),
    clockTolerance: Type.Integer({ minimum: 0, maximum: 300, default: 5, description: 'Seconds of tolerance on exp, nbf and iat.' }),
    maxTokenLength: Type.Integer({ minimum: 256, default: 8192, description: 'Longest token accepted, characters.' }),
    cacheSize: Type.Integer({ minimum: 0, default: 10_000, description: 'Verified tokens kept, so a repeated token costs no signature check (never used past exp).' }),
    jwksCooldown: Type.Number({ minimum: 0, default: 30, description: 'Least seconds between JWKS refetches triggered by an unknown `kid` (a flood of made-up kids costs the issuer one fetch per cooldown). Key changes the issuer announces (Redis, Shared Signals) refetch at once, outside it.' }),
    jwksRefreshInterval: Type.Number({ minimum: 1, default: 60, description: 'Seconds after which the known keys are refetched in the background (so a key the issuer removed stops being trusted without an announcement). Without announcements, keep the issuer\'s `keys.activationDelay` above this.' }),
    audience: Type.Optional(Type.String({ minLength: 1, description: 'Expected `aud` where a route does not say; omitted: any audience.' }))
  }, { ...Strict, default: {}, description: 'Access token validation (RFC 9068 JWTs, checked locally).' }),
  revocation: Type.Object({
    maxStaleness: Type.Number({ minimum: 0, default: 30, description: 'Seconds the revocation mirror may go without hearing from Redis; past that, `failOpen` decides.' }),
    failOpen: Type.Boolean({ default: false, description: 'When the mirror is staler than `maxStaleness`: false refuses tokens (503), true serves from the stale mirror.' }),
    sidTtl: Type.Integer({ minimum: 1, default: 3600, description: 'Seconds a session logged out here, or an entry received as a Shared Signal, stays on this gateway\'s list: at least the longest access token lifetime of the issuers concerned.' })
  }, { ...Strict, default: {}, description: 'The shared revocation list (Redis, mirrored in memory; in memory only without Redis).' }),
  sharedSignals: Type.Object({
    fromIssuer: Type.Boolean({ default: true, description: 'Receive every revocation the issuer makes (logout, token revocation, refresh reuse, code replay) as Shared Signals (OpenID SSF 1.0, CAEP session-revoked, poll stream), authenticated with `client` (the client needs scope `ssf.manage`). This is how a gateway without Redis learns of revocations made at the issuer. Needs `client`; set false for an issuer that is no SSF transmitter.' }),
    pollWait: Type.Integer({ minimum: 1, maximum: 300, default: 25, description: 'Seconds a transmitter may hold a poll open waiting for events (long polling); the gateway gives up on an answer 5 s later.' }),
    transmitters: Type.Array(Type.Object({
      issuer: HttpUrl('The transmitter\'s issuer identifier: its metadata is read from `/.well-known/ssf-configuration` there (SSF 1.0 6.2) and must name this issuer.'),
      metadataUrl: Type.Optional(HttpUrl('Where the transmitter metadata is, when not at the well-known location.')),
      client: Type.Optional(Type.Object({
        id: Type.String({ minLength: 1, description: 'The gateway\'s `client_id` at the transmitter\'s authorization server.' }),
        // eslint-disable-next-line no-template-curly-in-string
        secret: Type.String({ minLength: 1, description: 'Its secret (use `${ENV_VAR}`).' })
      }, { ...Strict, description: 'Client credentials for an access token with scope `ssf.manage` (client credentials grant).' })),
      tokenEndpoint: Type.Optional(HttpUrl('Token endpoint for `client`; default: from the transmitter issuer\'s discovery document.')),
      // eslint-disable-next-line no-template-curly-in-string
      bearerToken: Type.Optional(Type.String({ minLength: 1, description: 'A long-lived access token for the transmitter, instead of `client` (use `${ENV_VAR}`).' })),
      appliesTo: Type.Optional(Type.Array(HttpUrl('A token issuer.'), { minItems: 1, uniqueItems: true, description: 'Token issuers whose sessions and tokens this transmitter\'s events may revoke; default: `issuer` (the gateway\'s). Events about other issuers are ignored.' }))
    }, Strict), { default: [], description: 'Other SSF transmitters (another identity provider, a risk engine) whose CAEP session-revoked events cut sessions at this gateway.' })
  }, { ...Strict, default: {}, description: 'Revocations received as Shared Signals (docs/shared-signals.md). Applied to the revocation mirror beside Redis, if any; the mirror\'s staleness is the worst of its sources.' }),
  identityHeaders: Type.Object({
    subject: HeaderName('x-auth-subject', 'Header carrying the token\'s `sub` to the upstream.'),
    clientId: HeaderName('x-auth-client-id', 'Header carrying the token\'s `client_id`.'),
    scope: HeaderName('x-auth-scope', 'Header carrying the token\'s scope (space-separated).'),
    forwardAuthorization: Type.Boolean({ default: false, description: 'Also forward the caller\'s Authorization header (routes with `auth: none` never get it).' })
  }, { ...Strict, default: {}, description: 'Identity passed to upstreams, as percent-encoded UTF-8: `%`, space, controls and non-ASCII bytes become `%XX`, other printable ASCII is sent as is, so upstreams percent-decode every value (`Łukasz` -> `%C5%81ukasz`). Copies of these headers sent by callers are always removed.' }),
  logout: Type.Object({
    path: Type.String({ pattern: PREFIX_PATTERN, default: '/oauth2/logout', description: 'Where the gateway answers `POST` with a Bearer token to log the session out.' }),
    sessionEndpoint: Type.Optional(HttpUrl('The issuer\'s session-end endpoint; default `<issuer>/oauth2/session/end`.')),
    timeout: Type.Number({ exclusiveMinimum: 0, default: 5, description: 'Seconds to wait for the issuer, and for each back-channel receiver attempt.' }),
    retry: Type.Integer({ minimum: 0, maximum: 5, default: 1, description: 'Extra attempts per back-channel receiver after a failure.' }),
    cors: Type.Optional(CorsSchema)
  }, { ...Strict, default: {}, description: 'Logout through the gateway. Its `cors` (for browser scripts that log out by `fetch`) takes a route\'s fields; its `methods` is always POST.' }),
  metrics: Type.Object({
    path: Type.String({ pattern: PREFIX_PATTERN, default: '/metrics', description: 'Prometheus text endpoint.' })
  }, { ...Strict, default: {}, description: 'Prometheus metrics.' }),
  log: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'pino log level.' })
  }, { ...Strict, default: {}, description: 'Logging (JSON lines on stdout; tokens are never logged).' }),
  trustProxy: TrustProxySchema,
  routes: Type.Array(Route, { default: [], description: 'Upstream routes. Unmatched paths get 404.' })
}, { ...Strict, description: 'gatehouse-gateway configuration' })

export type GatewayConfig = Static<typeof GatewayConfigSchema>
export type RouteConfig = GatewayConfig['routes'][number]
export type HealthConfig = NonNullable<RouteConfig['health']>

/** A route's `health` with its defaults, for routes built by hand (the loader fills them). */
export function healthOf (route: RouteConfig): HealthConfig {
  const passive = route.health?.passive
  return {
    passive: { failures: passive?.failures ?? 3, backoff: passive?.backoff ?? 10, maxBackoff: passive?.maxBackoff ?? 120, statuses: passive?.statuses ?? [502, 503, 504] },
    ...(route.health?.active === undefined ? {} : { active: route.health.active })
  }
}

/** Seconds to connect to an upstream. */
export const connectTimeoutOf = (config: GatewayConfig): number => config.proxy?.connectTimeout ?? 5
