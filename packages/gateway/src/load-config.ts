/**
 * Reads and checks the gateway's YAML: the schema first, then the rules a schema cannot say
 * (duplicate prefixes, combinations). Every problem names file:line:column and the field.
 */
import { METHODS } from 'node:http'
import { ConfigError, loadConfigFile, parseConfig, type LoadOptions } from '@gatehouse/shared/config'
import type { IssuerMismatchError } from '@gatehouse/fastify-auth'
import { checkTrustProxy } from '@gatehouse/shared/trust-proxy'
import { originProblem } from '@gatehouse/shared/origin'
import { GatewayConfigSchema, type CorsConfig, type GatewayConfig } from './config.ts'

/** One broken cross-field rule, pointing at the offending field. */
export interface ConfigRuleViolation {
  path: Array<string | number>
  message: string
}

const ENV_OVERRIDES = { REDIS_URL: 'redis.url' }

/** The methods a request can have: those Node's HTTP parser accepts. */
const HTTP_METHODS = new Set(METHODS)

/** True when `path` is `prefix` or lies under it, on segment boundaries. */
export function isUnder (path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`)
}

/** The paths the gateway answers itself; no route may take them. */
export function ownPaths (config: GatewayConfig): string[] {
  // With an admin listener the probes and metrics live there, and routes may take their paths.
  return config.admin === undefined ? ['/healthz', '/readyz', config.metrics.path, config.logout.path] : [config.logout.path]
}

/** Rules across fields. */
export function checkGatewayConfig (config: GatewayConfig): ConfigRuleViolation[] {
  const problems: ConfigRuleViolation[] = []
  const problem = (path: Array<string | number>, message: string): void => { problems.push({ path, message }) }
  if (config.redis !== undefined) {
    const modes = (['url', 'sentinel', 'cluster'] as const).filter((k) => config.redis?.[k] !== undefined)
    if (modes.length !== 1) problem(['redis'], 'needs exactly one of url, sentinel, cluster')
  }
  if (config.metrics.path === config.logout.path) problem(['metrics', 'path'], 'same path as logout.path')
  // Clients speak HTTP/2 only over TLS (browsers never without it; no cleartext h2c here).
  if (config.listen.http2 === true && config.listen.tls === undefined) problem(['listen', 'http2'], 'needs listen.tls (HTTP/2 is offered to clients through TLS)')
  problems.push(...checkTrustProxy(config.trustProxy))
  if (config.admin !== undefined && config.admin.listen.port === config.listen.port && config.listen.port !== 0 && sameAddress(config.admin.listen.host, config.listen.host)) problem(['admin', 'listen', 'port'], 'is the public port: the admin listener needs a port of its own')
  for (const own of ['/healthz', '/readyz']) {
    if (config.metrics.path === own) problem(['metrics', 'path'], `${own} is taken by the health checks`)
    if (config.logout.path === own) problem(['logout', 'path'], `${own} is taken by the health checks`)
  }
  const prefixes = new Map<string, number>()
  const names = new Map<string, number>()
  let hasBackchannel = false
  config.routes.forEach((route, i) => {
    const at = (...rest: Array<string | number>): Array<string | number> => ['routes', i, ...rest]
    const first = prefixes.get(route.prefix)
    if (first !== undefined) problem(at('prefix'), `duplicate prefix "${route.prefix}" (also routes[${first}])`)
    else prefixes.set(route.prefix, i)
    const name = route.name ?? route.prefix
    const named = names.get(name)
    if (named !== undefined && route.name !== undefined) problem(at('name'), `duplicate name "${name}" (also routes[${named}])`)
    else names.set(name, i)
    for (const own of ownPaths(config)) {
      // A route may contain one (`/oauth2` around the logout path), but not be one or lie under one.
      if (isUnder(route.prefix, own) && route.prefix !== '/') problem(at('prefix'), `${own} is answered by the gateway itself`)
    }
    if (route.rewritePrefix !== undefined && !route.stripPrefix) problem(at('rewritePrefix'), 'set rewritePrefix or stripPrefix: false, not both')
    if (route.auth === 'none') {
      if (route.scopes !== undefined) problem(at('scopes'), 'scopes need auth: required or optional (this route has auth: none)')
      if (route.audience !== undefined) problem(at('audience'), 'audience needs auth: required or optional (this route has auth: none)')
      if (route.rateLimit !== undefined && route.rateLimit.key !== 'ip') problem(at('rateLimit', 'key'), `auth: none has no token to take a ${route.rateLimit.key} from: use key: ip`)
    }
    if (route.validation === 'introspect' && config.client === undefined) problem(at('validation'), 'introspect needs client (the gateway\'s credentials at the issuer)')
    if (route.logoutAudience !== undefined && route.backchannelLogoutUri === undefined) problem(at('logoutAudience'), 'logoutAudience needs backchannelLogoutUri')
    if (route.backchannelLogoutUri !== undefined) {
      hasBackchannel = true
      if ((route.logoutAudience ?? route.audience ?? config.auth.audience) === undefined) problem(at('backchannelLogoutUri'), 'needs logoutAudience (or audience, or auth.audience) for the logout_token')
    }
    if (route.cors !== undefined) checkCors(route.cors, at('cors'), problem)
    const passive = route.health?.passive
    if (passive !== undefined && passive.maxBackoff < passive.backoff) problem(at('health', 'passive', 'maxBackoff'), `(${passive.maxBackoff}) is below backoff (${passive.backoff})`)
    if (route.scopes !== undefined && Object.keys(route.scopes).length === 0) problem(at('scopes'), 'is empty: list scopes per method, or remove it')
    for (const method of Object.keys(route.scopes ?? {})) {
      // A typo (GTE) would leave GET to the `*` entry's scopes, silently.
      if (method !== '*' && !HTTP_METHODS.has(method)) problem(at('scopes', method), `"${method}" is not an HTTP method: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (or another method Node accepts), or "*" for every method not listed`)
    }
  })
  config.sharedSignals.transmitters.forEach((t, i) => {
    const at = ['sharedSignals', 'transmitters', i]
    if ((t.client === undefined) === (t.bearerToken === undefined)) problem(at, 'needs exactly one of client, bearerToken (how the gateway authenticates to the transmitter)')
    if (t.tokenEndpoint !== undefined && t.client === undefined) problem([...at, 'tokenEndpoint'], 'tokenEndpoint needs client')
    const first = config.sharedSignals.transmitters.findIndex((o) => o.issuer === t.issuer)
    if (first !== i) problem([...at, 'issuer'], `duplicate transmitter "${t.issuer}" (also sharedSignals.transmitters[${first}])`)
    if (config.sharedSignals.fromIssuer && config.client !== undefined && t.issuer === config.issuer) problem([...at, 'issuer'], 'is the gateway\'s issuer, already received through sharedSignals.fromIssuer')
  })
  if (config.logout.cors !== undefined) {
    if (config.logout.cors.handledBy === 'upstream') problem(['logout', 'cors', 'handledBy'], 'the logout path is the gateway\'s own: no upstream answers it')
    else checkCors(config.logout.cors, ['logout', 'cors'], problem)
  }
  if (hasBackchannel && config.client === undefined) problem(['routes'], 'back-channel logout needs client (the gateway\'s credentials at the issuer)')
  return problems
}

/** A `cors` block: origins as browsers send them, no `*` with credentials, nothing set for `upstream`. */
function checkCors (cors: CorsConfig, at: Array<string | number>, problem: (path: Array<string | number>, message: string) => void): void {
  if (cors.handledBy === 'upstream') {
    if (cors.origins.length > 0) problem([...at, 'origins'], 'handledBy: upstream leaves CORS to the upstream: remove origins (or handle it here)')
    return
  }
  if (cors.origins.length === 0) problem([...at, 'origins'], 'lists no origin: add the origins allowed, or set handledBy: upstream')
  cors.origins.forEach((origin, i) => {
    if (origin === '*') {
      if (cors.credentials) problem([...at, 'origins', i], '"*" cannot go with credentials: true (browsers refuse it): list the origins')
      return
    }
    const why = originProblem(origin)
    if (why !== undefined) problem([...at, 'origins', i], `"${origin}" ${why}`)
  })
  cors.methods.forEach((method, i) => {
    if (!HTTP_METHODS.has(method)) problem([...at, 'methods', i], `"${method}" is not an HTTP method`)
  })
}

const options = (env?: LoadOptions['env']): LoadOptions => ({
  ...(env === undefined ? {} : { env }),
  envOverrides: ENV_OVERRIDES,
  check: (config) => checkGatewayConfig(config as GatewayConfig)
})

/** Loads `file`; throws a ConfigError listing every problem. */
export function loadGatewayConfig (file: string, env?: LoadOptions['env']): GatewayConfig {
  return loadConfigFile<GatewayConfig>(file, GatewayConfigSchema, options(env))
}

/** Parses YAML text (tests, reload); throws a ConfigError listing every problem. */
export function parseGatewayConfig (text: string, file = 'gateway.yaml', env?: LoadOptions['env']): GatewayConfig {
  return parseConfig<GatewayConfig>(text, file, GatewayConfigSchema, options(env))
}

/**
 * The located problem for an issuer that answers but names itself differently (found at boot:
 * main.ts). Its `iss` is compared exactly (RFC 8414 3.3, RFC 9068 4), so the gateway neither
 * guesses nor normalises: a Gatehouse issuer may have a trailing slash in its identifier.
 */
export function issuerMismatchProblem (file: string, err: IssuerMismatchError, env?: LoadOptions['env']): ConfigError {
  const message = `is ${JSON.stringify(err.expected)} but the issuer there calls itself ${JSON.stringify(err.found)} (its discovery document); tokens' iss must match exactly, a trailing slash included: set issuer to ${JSON.stringify(err.found)}`
  try {
    // The file loaded a moment ago: loaded again with this one rule, the loader locates it.
    loadConfigFile<GatewayConfig>(file, GatewayConfigSchema, { ...options(env), check: () => [{ path: ['issuer'], message }] })
  } catch (located) {
    if (located instanceof ConfigError) return located
  }
  return new ConfigError([{ file, line: 0, column: 0, path: 'issuer', message }])
}

/**
 * What `check` and the start log warn about: a gateway that hears no key announcements (no
 * Redis, no Shared Signals stream at its issuer) learns a new signing key only from an unknown
 * `kid` (once per jwksCooldown) or its background refresh.
 */
export function configWarnings (config: GatewayConfig): string[] {
  const warnings: string[] = []
  if (config.redis === undefined && (config.client === undefined || !config.sharedSignals.fromIssuer)) {
    warnings.push(`this gateway hears no key announcements (no redis, and no client for a Shared Signals stream at the issuer): keep the issuer's keys.activationDelay above auth.jwksRefreshInterval (${config.auth.jwksRefreshInterval} s), and an emergency key rollover reaches it only at its next key refresh`)
  }
  return warnings
}

/** True when two listen hosts would take the same port (equal, or either is every interface). */
function sameAddress (a: string, b: string): boolean {
  const any = new Set(['0.0.0.0', '::', ''])
  return a === b || any.has(a) || any.has(b)
}
