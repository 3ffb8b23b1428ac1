/**
 * Checks AuthOptions once, at construction (so a bad option fails at boot, not on a request),
 * and fills in the defaults.
 */
import { MemoryRevocationList } from './revocation/memory.ts'
import { systemClock } from './revocation/mirror.ts'
import type { Clock, RevocationList, RevocationLog } from './revocation/types.ts'
import type { AuthFailureReason, AuthOptions, IntrospectionOptions, RouteAuth } from './types.ts'

/** Asymmetric JWS algorithms (RFC 7518 3.1, RFC 8037) this plugin can check. Never `none`, never HS*. */
export const SUPPORTED_ALGORITHMS: readonly string[] = [
  'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'
]
const DEFAULT_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']

/** A bad option: the message names it (`gatehouse-auth: options.audience must be ...`). */
export class AuthOptionsError extends Error {
  readonly option: string
  constructor (option: string, problem: string) {
    super(`gatehouse-auth: ${option} ${problem}`)
    this.name = 'AuthOptionsError'
    this.option = option
  }
}

export interface ResolvedIntrospection {
  endpoint: string | undefined
  clientId: string
  clientSecret: string
  cacheTtl: number
  cacheSize: number
  negativeCacheTtl: number
  negativeCacheSize: number
  opaqueTokens: boolean
  timeout: number
}

export interface ResolvedAuthOptions {
  issuer: string
  discoveryUrl: string
  jwksUri: string | undefined
  audience: string | string[] | undefined
  algorithms: string[]
  clockTolerance: number
  maxTokenLength: number
  cacheSize: number
  jwksCooldown: number
  jwksMaxAge: number
  jwksTimeout: number
  revocations: RevocationList
  ownsRevocations: boolean
  maxStaleness: number
  failOpen: boolean
  introspection: ResolvedIntrospection | undefined
  onFailure: ((reason: AuthFailureReason) => void) | undefined
  realm: string
  clock: Clock
  log: RevocationLog | undefined
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function url (name: string, value: unknown): string {
  if (typeof value !== 'string') throw new AuthOptionsError(name, 'must be an http(s) URL string')
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new AuthOptionsError(name, `must be an http(s) URL, got ${JSON.stringify(value)}`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new AuthOptionsError(name, 'must be an http(s) URL')
  return value
}

function number (name: string, value: unknown, fallback: number, { min = 0, integer = false } = {}): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new AuthOptionsError(name, `must be a finite ${integer ? 'integer' : 'number'} >= ${min}`)
  }
  return value
}

function boolean (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new AuthOptionsError(name, 'must be a boolean')
  return value
}

function nonEmptyString (name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new AuthOptionsError(name, 'must be a non-empty string')
  return value
}

/** A string or a non-empty array of non-empty strings (several `aud` values, RFC 7519 4.1.3). */
export function parseAudience (name: string, value: unknown): string | string[] | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string' && value !== '') return value
  if (Array.isArray(value) && value.length > 0 && value.every((a) => typeof a === 'string' && a !== '')) {
    return [...value] as string[]
  }
  throw new AuthOptionsError(name, 'must be a non-empty string or a non-empty array of them')
}

function parseAlgorithms (value: unknown): string[] {
  if (value === undefined) return DEFAULT_ALGORITHMS
  if (!Array.isArray(value) || value.length === 0) throw new AuthOptionsError('options.algorithms', 'must be a non-empty array')
  for (const alg of value) {
    if (!SUPPORTED_ALGORITHMS.includes(alg)) {
      // RFC 8725 3.1: `none` and shared-secret algorithms have no place where keys are public.
      throw new AuthOptionsError('options.algorithms', `may hold only ${SUPPORTED_ALGORITHMS.join(', ')}; got ${JSON.stringify(alg)}`)
    }
  }
  return [...value] as string[]
}

function parseRevocations (value: unknown): RevocationList | undefined {
  if (value === undefined) return undefined
  if (!isObject(value) || typeof value.isRevoked !== 'function' || !('staleness' in value)) {
    throw new AuthOptionsError('options.revocations', 'must be a RevocationList (isRevoked(), staleness)')
  }
  return value as unknown as RevocationList
}

function parseIntrospection (value: IntrospectionOptions | undefined): ResolvedIntrospection | undefined {
  if (value === undefined) return undefined
  if (!isObject(value)) throw new AuthOptionsError('options.introspection', 'must be an object')
  return {
    endpoint: value.endpoint === undefined ? undefined : url('options.introspection.endpoint', value.endpoint),
    clientId: nonEmptyString('options.introspection.clientId', value.clientId),
    clientSecret: nonEmptyString('options.introspection.clientSecret', value.clientSecret),
    cacheTtl: number('options.introspection.cacheTtl', value.cacheTtl, 30),
    cacheSize: number('options.introspection.cacheSize', value.cacheSize, 10_000, { integer: true }),
    negativeCacheTtl: number('options.introspection.negativeCacheTtl', value.negativeCacheTtl, 10),
    negativeCacheSize: number('options.introspection.negativeCacheSize', value.negativeCacheSize, 1000, { integer: true }),
    opaqueTokens: boolean('options.introspection.opaqueTokens', value.opaqueTokens, false),
    timeout: number('options.introspection.timeout', value.timeout, 2000, { min: 1 })
  }
}

/** Validates every option and applies the defaults documented on {@link AuthOptions}. */
export function parseAuthOptions (options: AuthOptions): ResolvedAuthOptions {
  if (!isObject(options)) throw new AuthOptionsError('options', 'must be an object')
  const issuer = url('options.issuer', options.issuer)
  const realm = options.realm ?? 'gatehouse'
  // RFC 6750 3 / RFC 9110 11.2: the realm is a quoted-string; keep it plain printable ASCII.
  if (typeof realm !== 'string' || !/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/.test(realm)) {
    throw new AuthOptionsError('options.realm', 'must be printable ASCII without " or \\')
  }
  if (options.onFailure !== undefined && typeof options.onFailure !== 'function') {
    throw new AuthOptionsError('options.onFailure', 'must be a function')
  }
  if (options.failOpen !== undefined && typeof options.failOpen !== 'boolean') {
    throw new AuthOptionsError('options.failOpen', 'must be a boolean')
  }
  if (options.clock !== undefined && typeof options.clock?.now !== 'function') {
    throw new AuthOptionsError('options.clock', 'must have a now() method')
  }
  if (options.log !== undefined && typeof options.log?.warn !== 'function') {
    throw new AuthOptionsError('options.log', 'must have a warn() method')
  }
  const revocations = parseRevocations(options.revocations)
  return {
    issuer,
    // OIDC Discovery 1.0 4 / RFC 8414 3: the document lives under the issuer, trailing slash removed.
    discoveryUrl: `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
    jwksUri: options.jwksUri === undefined ? undefined : url('options.jwksUri', options.jwksUri),
    audience: parseAudience('options.audience', options.audience),
    algorithms: parseAlgorithms(options.algorithms),
    clockTolerance: number('options.clockTolerance', options.clockTolerance, 5),
    maxTokenLength: number('options.maxTokenLength', options.maxTokenLength, 8192, { min: 16, integer: true }),
    cacheSize: number('options.cacheSize', options.cacheSize, 10_000, { integer: true }),
    jwksCooldown: number('options.jwksCooldown', options.jwksCooldown, 30_000),
    jwksMaxAge: number('options.jwksMaxAge', options.jwksMaxAge, 60_000, { min: 1 }),
    jwksTimeout: number('options.jwksTimeout', options.jwksTimeout, 2000, { min: 1 }),
    revocations: revocations ?? new MemoryRevocationList(),
    ownsRevocations: revocations === undefined,
    maxStaleness: number('options.maxStaleness', options.maxStaleness, 30_000),
    failOpen: options.failOpen ?? false,
    introspection: parseIntrospection(options.introspection),
    onFailure: options.onFailure,
    realm,
    clock: options.clock ?? systemClock,
    log: options.log
  }
}

/** Checks a route's requirements when `requireAuth(route)` is called, i.e. at boot. */
export function parseRouteAuth (route: RouteAuth | undefined, introspection: boolean): void {
  if (route === undefined) return
  if (!isObject(route)) throw new AuthOptionsError('route', 'must be an object')
  if (route.mode !== undefined && route.mode !== 'required' && route.mode !== 'optional') {
    throw new AuthOptionsError('route.mode', "must be 'required' or 'optional'")
  }
  if (route.audience !== null) parseAudience('route.audience', route.audience)
  if (route.checkRevocation !== undefined && typeof route.checkRevocation !== 'boolean') {
    throw new AuthOptionsError('route.checkRevocation', 'must be a boolean')
  }
  if (route.scopes !== undefined && (!Array.isArray(route.scopes) ||
    // RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    !route.scopes.every((s) => typeof s === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)))) {
    throw new AuthOptionsError('route.scopes', 'must be an array of scope tokens (RFC 6749 3.3)')
  }
  if (route.validation !== undefined && route.validation !== 'local' && route.validation !== 'introspect') {
    throw new AuthOptionsError('route.validation', "must be 'local' or 'introspect'")
  }
  if (route.validation === 'introspect' && !introspection) {
    throw new AuthOptionsError('route.validation', "is 'introspect' but options.introspection is not set")
  }
}
