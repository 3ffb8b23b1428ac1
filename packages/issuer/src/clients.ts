/** Registered clients and users, compiled once from the config for fast lookups. */
import { availableParallelism } from 'node:os'
import type { ClientConfig, IssuerConfig, UserConfig } from './config.ts'
import { originOf } from '@gatehouse/shared/origin'
import { PasswordCheckLimit } from './password-check-limit.ts'
import { DUMMY_PASSWORD_HASH, secretMatcher, verifyPassword } from './secrets.ts'

export type GrantName = ClientConfig['grants'][number]
export type AuthMethodName = 'client_secret_basic' | 'client_secret_post' | 'none'

export interface Client {
  readonly id: string
  readonly name: string
  readonly isPublic: boolean
  /** Authentication methods this client may use at the token endpoint. */
  readonly authMethods: ReadonlySet<AuthMethodName>
  readonly grants: ReadonlySet<GrantName>
  readonly scopes: ReadonlySet<string>
  readonly redirectUris: readonly string[]
  readonly postLogoutRedirectUris: readonly string[]
  /** Origins whose scripts may call the issuer's JSON endpoints for this client (CORS). */
  readonly webOrigins: ReadonlySet<string>
  readonly consentRequired: boolean
  readonly requirePkce: boolean
  readonly backchannelLogoutUri?: string
  readonly accessTokenTtl: number
  readonly revokesAnyToken: boolean
  matchesSecret (presented: string): boolean
}

export interface User {
  readonly username: string
  readonly subject: string
  readonly claims: Readonly<Record<string, unknown>>
  readonly passwordHash: string
}

/** `webOrigins` with `+` expanded to the origins of the redirect URIs. */
function webOriginsOf (c: ClientConfig): ReadonlySet<string> {
  const origins = new Set<string>()
  for (const entry of c.webOrigins) {
    if (entry !== '+') origins.add(entry)
    else for (const uri of c.redirectUris) { const origin = originOf(uri); if (origin !== undefined) origins.add(origin) }
  }
  return origins
}

export class ClientRegistry {
  readonly #clients = new Map<string, Client>()
  readonly #dummy = secretMatcher({ secret: 'gatehouse-no-such-client-secret' })

  constructor (clients: readonly ClientConfig[], defaultAccessTokenTtl: number) {
    for (const c of clients) {
      const hasSecret = c.secret !== undefined || c.secretHash !== undefined
      const authMethods: AuthMethodName[] = c.tokenEndpointAuthMethod !== undefined
        ? [c.tokenEndpointAuthMethod]
        : hasSecret ? ['client_secret_basic', 'client_secret_post'] : ['none']
      const isPublic = authMethods.includes('none')
      const matcher = secretMatcher(c)
      this.#clients.set(c.clientId, {
        id: c.clientId,
        name: c.name ?? c.clientId,
        isPublic,
        authMethods: new Set(authMethods),
        grants: new Set(c.grants),
        scopes: new Set(c.scopes),
        redirectUris: c.redirectUris,
        postLogoutRedirectUris: c.postLogoutRedirectUris,
        webOrigins: webOriginsOf(c),
        consentRequired: c.consentRequired,
        requirePkce: isPublic || c.requirePkce === true,
        ...(c.backchannelLogoutUri === undefined ? {} : { backchannelLogoutUri: c.backchannelLogoutUri }),
        accessTokenTtl: c.accessTokenTtl ?? defaultAccessTokenTtl,
        revokesAnyToken: c.revokesAnyToken,
        matchesSecret: matcher
      })
    }
  }

  get (clientId: string): Client | undefined {
    return this.#clients.get(clientId)
  }

  /** Burns the time of one secret comparison, so unknown clients answer as fast as wrong secrets. */
  burnSecretCheck (presented: string): void {
    this.#dummy(presented)
  }

  all (): Iterable<Client> {
    return this.#clients.values()
  }
}

export class UserDirectory {
  readonly #users = new Map<string, User>()
  /** Bounds the password checks running at once (rateLimit.passwordHashConcurrency). */
  readonly checks: PasswordCheckLimit

  constructor (users: readonly UserConfig[], checks: PasswordCheckLimit) {
    this.checks = checks
    for (const u of users) {
      this.#users.set(u.username, { username: u.username, subject: u.subject ?? u.username, claims: u.claims, passwordHash: u.passwordHash })
    }
  }

  bySubject (subject: string): User | undefined {
    for (const u of this.#users.values()) if (u.subject === subject) return u
    return undefined
  }

  /**
   * The user when the password matches, else null. Unknown users cost a full scrypt too,
   * so timing does not tell which usernames exist. Throws `PasswordChecksBusy` (a 503) when
   * too many checks are running and waiting already.
   */
  async authenticate (username: string, password: string): Promise<User | null> {
    const user = this.#users.get(username)
    const ok = await this.checks.run(async () => await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH))
    return ok && user !== undefined ? user : null
  }
}

/** Builds both from a config. */
export function compileDirectory (config: IssuerConfig): { clients: ClientRegistry, users: UserDirectory } {
  return {
    clients: new ClientRegistry(config.clients, config.tokens.accessTokenTtl),
    users: new UserDirectory(config.users, new PasswordCheckLimit(config.rateLimit.passwordHashConcurrency ?? availableParallelism(), config.rateLimit.passwordHashQueue))
  }
}
