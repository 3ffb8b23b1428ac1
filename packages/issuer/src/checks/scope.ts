/**
 * Scope and audience resolution. Requested scopes never exceed the client's (or, on refresh,
 * the grant's); RFC 8707 `resource` narrows the audience and with it the scopes.
 */
import type { Client } from '../clients.ts'
import type { IssuerConfig } from '../config.ts'
import { OAuthError, invalidScope } from '../errors.ts'

/** CAEP interoperability profile: managing streams takes `ssf.manage`, reading them `ssf.read` too. */
export const SSF_MANAGE_SCOPE = 'ssf.manage'
export const SSF_READ_SCOPE = 'ssf.read'

type ScopeConfig = IssuerConfig['scopes'][number]

/**
 * The scopes the issuer knows: the configured ones, plus `ssf.manage` and `ssf.read` (audience:
 * the issuer, whose SSF endpoints they open) when Shared Signals is enabled and the config does
 * not declare them itself.
 */
export function declaredScopes (config: Pick<IssuerConfig, 'issuer' | 'scopes' | 'sharedSignals'>): ScopeConfig[] {
  if (!config.sharedSignals.enabled) return [...config.scopes]
  const names = new Set(config.scopes.map((s) => s.name))
  const builtIn: ScopeConfig[] = [
    { name: SSF_MANAGE_SCOPE, description: 'Manage Shared Signals streams and receive their events', audience: config.issuer },
    { name: SSF_READ_SCOPE, description: 'Read Shared Signals stream configurations', audience: config.issuer }
  ]
  return [...config.scopes, ...builtIn.filter((s) => !names.has(s.name))]
}

/** Scopes that only make sense with a user (never for client_credentials). */
export const USER_SCOPES = new Set(['openid', 'profile', 'email', 'address', 'phone', 'offline_access'])

export interface Grant {
  scope: string[]
  audience: string[]
}

export class ScopePolicy {
  readonly #audienceOf = new Map<string, string>()
  readonly #known = new Set<string>()
  readonly #descriptions = new Map<string, string>()
  readonly #audiences = new Set<string>()
  readonly #defaultAudience: string | undefined

  constructor (config: Pick<IssuerConfig, 'issuer' | 'scopes' | 'tokens' | 'sharedSignals'>) {
    for (const s of declaredScopes(config)) {
      this.#known.add(s.name)
      this.#descriptions.set(s.name, s.description)
      if (s.audience !== undefined) {
        this.#audienceOf.set(s.name, s.audience)
        this.#audiences.add(s.audience)
      }
    }
    this.#defaultAudience = config.tokens.defaultAudience
    if (this.#defaultAudience !== undefined) this.#audiences.add(this.#defaultAudience)
  }

  get supported (): string[] {
    return [...this.#known]
  }

  /** Plain words for the consent page ('' when the config gives none). */
  description (scope: string): string | undefined {
    const text = this.#descriptions.get(scope)
    return text === undefined || text === '' ? undefined : text
  }

  /**
   * The scopes to grant: the requested ones (each known and allowed), or all `allowed` when
   * none are requested. `allowed` is the client's scopes, or a refresh grant's.
   */
  select (requested: string | undefined, allowed: Iterable<string>, options: { userless?: boolean } = {}): string[] {
    const allowedSet = new Set(allowed)
    if (requested === undefined) {
      return [...allowedSet].filter((s) => this.#known.has(s) && !(options.userless === true && USER_SCOPES.has(s)))
    }
    const names = requested.split(' ')
    if (names.some((n) => n === '' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(n))) throw invalidScope('malformed scope')
    const unique = [...new Set(names)]
    for (const n of unique) {
      if (!this.#known.has(n) || !allowedSet.has(n)) throw invalidScope(`scope "${n}" is not allowed for this client`)
      if (options.userless === true && USER_SCOPES.has(n)) throw invalidScope(`scope "${n}" needs a user`)
    }
    return unique
  }

  /**
   * Audience for the scopes. With RFC 8707 resources, each must be an audience the scopes
   * reach (else invalid_target), and scopes are narrowed to those resources.
   */
  audience (scopes: string[], resources: string[], client: Client, grantAudience?: string[]): Grant {
    const reachable = new Set<string>()
    for (const s of scopes) {
      const aud = this.#audienceOf.get(s)
      if (aud !== undefined) reachable.add(aud)
    }
    if (resources.length === 0) {
      if (grantAudience !== undefined) return { scope: scopes, audience: grantAudience }
      const audience = reachable.size > 0 ? [...reachable] : [this.#defaultAudience ?? client.id]
      return { scope: scopes, audience }
    }
    const fallback = this.#defaultAudience ?? client.id
    for (const r of resources) {
      const allowed = grantAudience !== undefined ? grantAudience.includes(r) : reachable.has(r) || r === fallback
      if (!allowed) throw new OAuthError('invalid_target', 400, `resource "${r}" is not available to this request`)
    }
    const narrowed = scopes.filter((s) => {
      const aud = this.#audienceOf.get(s)
      return aud === undefined || resources.includes(aud)
    })
    return { scope: narrowed, audience: resources }
  }
}
