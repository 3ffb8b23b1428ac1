/** What every endpoint reaches for, built once by `build()`. */
import type { Clock } from './clock.ts'
import type { ClientRegistry, UserDirectory } from './clients.ts'
import type { IssuerConfig } from './config.ts'
import type { ScopePolicy } from './checks/scope.ts'
import type { KeyManager } from './keys/key-manager.ts'
import type { IssuerMetrics } from './metrics.ts'
import type { IssuerStores } from './stores/types.ts'
import type { SharedSignals } from './ssf/transmitter.ts'
import type { TokenService } from './tokens/token-service.ts'

export interface IssuerContext {
  readonly config: IssuerConfig
  readonly clock: Clock
  readonly clients: ClientRegistry
  readonly users: UserDirectory
  readonly scopes: ScopePolicy
  readonly keys: KeyManager
  readonly tokens: TokenService
  readonly stores: IssuerStores
  readonly metrics: IssuerMetrics
  /** The Shared Signals transmitter: every revocation is emitted through it. */
  readonly signals: SharedSignals
}

/** RFC 6749 5.1 */
export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
  refresh_token?: string
  id_token?: string
}
