/** How long the issuer's tokens live, and so how long Shared Signals events must be kept. */
import type { IssuerConfig } from '../config.ts'

/** Seconds: the longest any access token can live (the default or a client's own lifetime). */
export function longestAccessTokenTtl (config: Pick<IssuerConfig, 'tokens' | 'clients'>): number {
  return Math.max(config.tokens.accessTokenTtl, ...config.clients.map((c) => c.accessTokenTtl ?? 0))
}

/** Events are kept at least an hour by default, so a receiver restarting misses nothing. */
const MIN_DEFAULT_RETENTION = 3600

/**
 * Seconds an event stays in the log: `sharedSignals.retention`, by default the longest access
 * token lifetime and at least an hour. A revocation older than every token it can concern
 * is moot, so nothing a receiver needs is dropped (load-config refuses a shorter setting).
 */
export function signalRetention (config: Pick<IssuerConfig, 'tokens' | 'clients' | 'sharedSignals'>): number {
  return config.sharedSignals.retention ?? Math.max(longestAccessTokenTtl(config), MIN_DEFAULT_RETENTION)
}
