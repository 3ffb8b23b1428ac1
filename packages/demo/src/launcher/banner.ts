/** What the launcher prints once everything answers: URLs, the demo fixture, copy-paste curls. */
import type { painter } from './log-lines.ts'

// The demo's ports; ISSUER_PORT, GATEWAY_PORT, API_PORT and APP_PORT move them (the demo YAML
// reads the same variables), so the demo can run beside something that holds 4000, 4001, 8080
// or 3000.
const port = (name: string, fallback: number): string => process.env[name] ?? String(fallback)
export const ISSUER_URL = `http://127.0.0.1:${port('ISSUER_PORT', 4000)}`
export const GATEWAY_URL = `http://127.0.0.1:${port('GATEWAY_PORT', 8080)}`
export const API_URL = `http://127.0.0.1:${port('API_PORT', 4001)}`
/** The demo client app: the browser clients' redirect URIs (docker/demo/issuer.yaml) are under it. */
export const APP_URL = `http://127.0.0.1:${port('APP_PORT', 3000)}`

/** The first line printed when everything is up; tests wait for it. */
export const READY_LINE = 'Gatehouse demo is running'

/** The copy-paste lines: a client_credentials token, a call through the gateway, a logout. */
export function curlLines (): string[] {
  return [
    `TOKEN=$(curl -s -u demo-service:demo-service-secret -d grant_type=client_credentials -d scope=api:read ${ISSUER_URL}/oauth2/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
    `curl -s -H "Authorization: Bearer $TOKEN" ${GATEWAY_URL}/api/hello`,
    `curl -s -X POST -H "Authorization: Bearer $TOKEN" ${GATEWAY_URL}/oauth2/logout`
  ]
}

/** `redis://user:secret@host:port` without the secret. */
function safeRedisUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'REDIS_URL (unparsable)'
  }
}

export interface BannerOptions {
  gatewayRunning: boolean
  redisUrl: string | undefined
  paint: ReturnType<typeof painter>
}

export function banner ({ gatewayRunning, redisUrl, paint }: BannerOptions): string {
  const gateway = gatewayRunning
    ? `${GATEWAY_URL}   /api/* needs a token (api:read for GET), /public/* does not; POST /oauth2/logout`
    : `${GATEWAY_URL}   not started (packages/gateway or docker/demo/gateway.yaml is missing)`
  const store = redisUrl === undefined
    ? 'in-memory, one instance of each (set REDIS_URL=redis://host:port to keep the state in Redis)'
    : `Redis at ${safeRedisUrl(redisUrl)} (shared by every instance)`
  return [
    '',
    paint('bold', READY_LINE),
    `  issuer    ${ISSUER_URL}   discovery at /.well-known/openid-configuration`,
    `  gateway   ${gateway}`,
    `  api       ${API_URL}   the demo resource server: echoes every request; back-channel logouts at /backchannel-logout/sessions`,
    `  app       ${APP_URL}   the demo client app: open it in a browser (demo-web at /, demo-spa at /spa/)`,
    `  store     ${store}`,
    '',
    paint('bold', 'Users'),
    '  alice / alice-password (Alice Liddell, alice@example.com)',
    '  bob / bob-password',
    paint('bold', 'Clients'),
    `  demo-web       confidential, secret demo-web-secret; authorization_code + refresh_token, redirect ${APP_URL}/callback, consent`,
    `  demo-spa       public (PKCE); authorization_code + refresh_token, redirect ${APP_URL}/spa/callback; its origin may call the issuer and /api (CORS)`,
    '  demo-service   confidential, secret demo-service-secret; client_credentials',
    '  demo-cli       confidential, secret demo-cli-secret; password + refresh_token',
    `  demo-legacy    public; implicit, redirect ${APP_URL}/legacy/callback`,
    '  demo-gateway   confidential, secret demo-gateway-secret; the gateway\'s own client (session end, introspection)',
    '',
    `${paint('bold', 'Try it')} in a browser: ${APP_URL} (sign in as alice, call the API, refresh, log out; the web app at /, the single-page app at /spa/)`,
    'Or with curl (a token, a call through the gateway, a logout; then the call again is a 401):',
    ...curlLines().map((line) => `  ${line}`),
    '',
    'Ctrl-C stops everything.',
    ''
  ].join('\n')
}
