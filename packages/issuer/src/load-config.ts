/**
 * Reads and checks the issuer's YAML: the schema first, then the rules a schema cannot say
 * (cross-references, combinations). Every problem names file:line:column and the field.
 */
import { loadConfigFile, parseConfig, type LoadOptions } from '@gatehouse/shared/config'
import { originProblem } from '@gatehouse/shared/origin'
import { checkTrustProxy } from '@gatehouse/shared/trust-proxy'
import { IssuerConfigSchema, type IssuerConfig } from './config.ts'
import { declaredScopes } from './checks/scope.ts'
import { longestAccessTokenTtl } from './ssf/retention.ts'

export interface ConfigRuleViolation {
  path: Array<string | number>
  message: string
}

const ENV_OVERRIDES = { REDIS_URL: 'redis.url' }

/** Rules across fields. Each violation points at the offending field. */
export function checkIssuerConfig (config: IssuerConfig): ConfigRuleViolation[] {
  const problems: ConfigRuleViolation[] = []
  if (config.redis !== undefined) {
    const modes = (['url', 'sentinel', 'cluster'] as const).filter((k) => config.redis?.[k] !== undefined)
    if (modes.length !== 1) problems.push({ path: ['redis'], message: 'needs exactly one of url, sentinel, cluster' })
  }
  const scopeNames = new Set<string>()
  config.scopes.forEach((s, i) => {
    if (scopeNames.has(s.name)) problems.push({ path: ['scopes', i, 'name'], message: `duplicate scope "${s.name}"` })
    scopeNames.add(s.name)
  })
  // The built-in ones (ssf.manage, ssf.read) count as declared.
  for (const s of declaredScopes(config)) scopeNames.add(s.name)
  const { retention } = config.sharedSignals
  const longest = longestAccessTokenTtl(config)
  if (retention !== undefined && retention < longest) {
    problems.push({ path: ['sharedSignals', 'retention'], message: `must be at least the longest access token lifetime (${longest} s): a receiver must not miss a revocation of a token still alive` })
  }
  const clientIds = new Set<string>()
  config.clients.forEach((c, i) => {
    const at = (...rest: Array<string | number>): Array<string | number> => ['clients', i, ...rest]
    if (clientIds.has(c.clientId)) problems.push({ path: at('clientId'), message: `duplicate client "${c.clientId}"` })
    clientIds.add(c.clientId)
    const hasSecret = c.secret !== undefined || c.secretHash !== undefined
    if (c.secret !== undefined && c.secretHash !== undefined) problems.push({ path: at('secretHash'), message: 'set secret or secretHash, not both' })
    if (c.tokenEndpointAuthMethod === 'none' && hasSecret) problems.push({ path: at('tokenEndpointAuthMethod'), message: 'a public client (none) has no secret' })
    if (c.tokenEndpointAuthMethod !== undefined && c.tokenEndpointAuthMethod !== 'none' && !hasSecret) problems.push({ path: at('tokenEndpointAuthMethod'), message: `${c.tokenEndpointAuthMethod} needs a secret or secretHash` })
    const isPublic = !hasSecret
    if (isPublic && c.grants.includes('client_credentials')) problems.push({ path: at('grants'), message: 'client_credentials needs a confidential client (RFC 6749 4.4)' })
    // RFC 6749 4.3 / RFC 9700 2.4: the password grant is for first-party clients that can keep a
    // secret; a public one would let anyone holding its client_id guess passwords as that app.
    if (isPublic && c.grants.includes('password')) problems.push({ path: at('grants', c.grants.indexOf('password')), message: 'password needs a confidential client (a secret or secretHash): the grant is for trusted first-party clients (RFC 6749 4.3)' })
    if ((c.grants.includes('authorization_code') || c.grants.includes('implicit')) && c.redirectUris.length === 0) problems.push({ path: at('redirectUris'), message: 'authorization_code and implicit need at least one redirect URI' })
    c.scopes.forEach((s, j) => {
      if (!scopeNames.has(s)) problems.push({ path: at('scopes', j), message: `unknown scope "${s}" (not in scopes)` })
    })
    c.redirectUris.forEach((u, j) => {
      // RFC 6749 3.1.2: absolute, no fragment.
      if (u.includes('#')) problems.push({ path: at('redirectUris', j), message: 'a redirect URI has no fragment' })
    })
    c.webOrigins.forEach((o, j) => {
      const problem = o === '+' ? undefined : originProblem(o)
      if (problem !== undefined) problems.push({ path: at('webOrigins', j), message: `"${o}" ${problem}, or + for the origins of the redirect URIs` })
    })
  })
  if (config.admin !== undefined && config.admin.listen.port === config.listen.port && config.listen.port !== 0 && sameAddress(config.admin.listen.host, config.listen.host)) problems.push({ path: ['admin', 'listen', 'port'], message: 'is the public port: the admin listener needs a port of its own' })
  // The issuer's own paths: a metrics path on one of them would stop the server from starting.
  const metricsPath = config.metrics.path
  if (['/', '/healthz', '/readyz'].includes(metricsPath) || /^\/(oauth2|\.well-known)(\/|$)/.test(metricsPath)) {
    problems.push({ path: ['metrics', 'path'], message: `${metricsPath} is taken by the issuer's own endpoints` })
  }
  // Browsers and clients reach every endpoint through `issuer`; a TLS port answers no http.
  if (config.listen.tls !== undefined && !config.issuer.startsWith('https:')) {
    problems.push({ path: ['issuer'], message: 'must be an https URL when listen.tls is set (clients reach every endpoint through it, and this port speaks https only)' })
  }
  problems.push(...checkTrustProxy(config.trustProxy))
  const usernames = new Set<string>()
  config.users.forEach((u, i) => {
    if (usernames.has(u.username)) problems.push({ path: ['users', i, 'username'], message: `duplicate user "${u.username}"` })
    usernames.add(u.username)
  })
  return problems
}

const options = (env?: LoadOptions['env']): LoadOptions & { check: (config: unknown) => ConfigRuleViolation[] } => ({
  ...(env === undefined ? {} : { env }),
  envOverrides: ENV_OVERRIDES,
  check: (config) => checkIssuerConfig(config as IssuerConfig)
})

export function loadIssuerConfig (file: string, env?: LoadOptions['env']): IssuerConfig {
  return loadConfigFile<IssuerConfig>(file, IssuerConfigSchema, options(env))
}

export function parseIssuerConfig (text: string, file = 'issuer.yaml', env?: LoadOptions['env']): IssuerConfig {
  return parseConfig<IssuerConfig>(text, file, IssuerConfigSchema, options(env))
}

/** True when two listen hosts would take the same port (equal, or either is every interface). */
function sameAddress (a: string, b: string): boolean {
  const any = new Set(['0.0.0.0', '::', ''])
  return a === b || any.has(a) || any.has(b)
}
