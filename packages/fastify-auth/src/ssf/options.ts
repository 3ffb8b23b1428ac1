/**
 * The options of a Shared Signals receiver, checked once at construction (a bad option fails at
 * boot, not in the background loop), with their defaults.
 */
import { hostname } from 'node:os'
import { AuthOptionsError, SUPPORTED_ALGORITHMS } from '../options.ts'
import { systemClock } from '../revocation/mirror.ts'
import type { Clock, RevocationList } from '../revocation/types.ts'

/** The subset of a pino logger the receiver uses. */
export interface SignalLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface SignalReceiverOptions {
  /**
   * The transmitter's issuer identifier. Its metadata is read from
   * `/.well-known/ssf-configuration` inserted between the host and the path (SSF 1.0,
   * Obtaining Transmitter Configuration Metadata) and must name exactly this issuer.
   */
  issuer: string
  /** Where the transmitter metadata is, when not at the well-known location. */
  metadataUrl?: string
  /** Client credentials for an access token with scope `ssf.manage` (client credentials grant). */
  clientId?: string
  clientSecret?: string
  /**
   * Token endpoint for the client credentials; default: `token_endpoint` from the transmitter
   * issuer's `/.well-known/openid-configuration`, else its RFC 8414
   * `/.well-known/oauth-authorization-server`.
   */
  tokenEndpoint?: string
  /** A static access token instead of client credentials. */
  bearerToken?: string
  /** Token issuers whose sessions and tokens this transmitter's events may revoke; others are ignored. */
  appliesTo: string[]
  /** Where revocations go: `revoke({ sid } | { jti }, entryTtl)`. */
  revocations: RevocationList
  /** Seconds each entry is kept (at least the longest access token lifetime of the issuers concerned). */
  entryTtl: number
  /** Seconds the transmitter may hold a poll open; the receiver gives up 5 s later. Default 25. */
  pollWait?: number
  /** The stream's description (at most 256 characters). Default `gatehouse receiver <host> <pid>`. */
  description?: string
  /** Asymmetric algorithms accepted on SETs. Default: every one in SUPPORTED_ALGORITHMS (never `none`, never HS*). */
  algorithms?: string[]
  /** Milliseconds to wait for metadata, token and stream management calls (and the JWKS). Default 5000. */
  timeout?: number
  /** Least milliseconds between JWKS refetches triggered by an unknown `kid` in a SET. Default 1000. */
  jwksCooldown?: number
  /**
   * True when the transmitter may turn out not to be one: a 404 for its metadata, or an
   * authorization server refusing the client the scope `ssf.manage` (`invalid_scope`,
   * `unauthorized_client`), stops the receiver for good instead of retrying: it logs why once,
   * reports staleness 0 and resolves ready(). For a gateway's own issuer, which may be another
   * product. Default false: such answers are failures, retried with back-off.
   */
  optional?: boolean
  /** Time source, epoch ms. Default `Date.now`. */
  clock?: Clock
  /** Where the stream's life (created, refused SETs, failures) is reported. Never SETs, tokens or secrets. */
  log?: SignalLog
}

export type Credentials =
  | { kind: 'client', clientId: string, clientSecret: string, tokenEndpoint: string | undefined }
  | { kind: 'bearer', token: string, clientId: string | undefined }

export interface ResolvedSignalOptions {
  issuer: string
  metadataUrl: string
  credentials: Credentials
  appliesTo: ReadonlySet<string>
  revocations: RevocationList
  entryTtl: number
  pollWaitMs: number
  description: string
  algorithms: string[]
  timeoutMs: number
  jwksCooldownMs: number
  optional: boolean
  clock: Clock
  log: SignalLog
}

/** SSF 1.0, Stream Configuration: a transmitter may truncate longer descriptions; we never send one. */
const MAX_DESCRIPTION = 256

const silent: SignalLog = { info () {}, warn () {} }

function httpUrl (name: string, value: unknown): string {
  let parsed: URL | undefined
  try {
    if (typeof value === 'string') parsed = new URL(value)
  } catch {}
  if (parsed === undefined || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new AuthOptionsError(name, 'must be an http(s) URL string')
  }
  return value as string
}

function text (name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new AuthOptionsError(name, 'must be a non-empty string')
  return value
}

/** A finite number > 0 (at most `max`); `fallback` when omitted, required when there is none. */
function positive (name: string, value: unknown, fallback: number | undefined, max = Infinity): number {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new AuthOptionsError(name, `must be a finite number > 0${max === Infinity ? '' : ` and <= ${max}`}`)
  }
  return value
}

/**
 * SSF 1.0, Obtaining Transmitter Configuration Metadata: the well-known segment goes between the
 * host and the issuer's path, whose trailing slash is dropped (`https://tr.example/p` ->
 * `https://tr.example/.well-known/ssf-configuration/p`).
 */
export function metadataUrlOf (issuer: string): string {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return `${url.origin}/.well-known/ssf-configuration${path}`
}

function parseCredentials (options: SignalReceiverOptions): Credentials {
  const { clientId, clientSecret, bearerToken, tokenEndpoint } = options
  if (clientId !== undefined) text('options.clientId', clientId)
  if (bearerToken !== undefined) {
    if (clientSecret !== undefined || tokenEndpoint !== undefined) {
      throw new AuthOptionsError('options.bearerToken', 'excludes clientSecret and tokenEndpoint')
    }
    // RFC 6750 2.1: b64token.
    if (typeof bearerToken !== 'string' || !/^[A-Za-z0-9\-._~+/]+=*$/.test(bearerToken)) {
      throw new AuthOptionsError('options.bearerToken', 'must be a bearer token (RFC 6750 2.1 b64token)')
    }
    return { kind: 'bearer', token: bearerToken, clientId }
  }
  if (clientId === undefined || clientSecret === undefined) {
    throw new AuthOptionsError('options.clientId', 'and options.clientSecret are required unless options.bearerToken is given')
  }
  return {
    kind: 'client',
    clientId,
    clientSecret: text('options.clientSecret', clientSecret),
    tokenEndpoint: tokenEndpoint === undefined ? undefined : httpUrl('options.tokenEndpoint', tokenEndpoint)
  }
}

function parseAlgorithms (value: unknown): string[] {
  if (value === undefined) return [...SUPPORTED_ALGORITHMS]
  if (!Array.isArray(value) || value.length === 0 || !value.every((alg) => SUPPORTED_ALGORITHMS.includes(alg))) {
    // RFC 8725 3.1: `none` and shared-secret algorithms have no place where keys are public.
    throw new AuthOptionsError('options.algorithms', `must be a non-empty array of ${SUPPORTED_ALGORITHMS.join(', ')}`)
  }
  return [...value] as string[]
}

/** Validates every option and applies the defaults documented on {@link SignalReceiverOptions}. */
export function parseSignalOptions (options: SignalReceiverOptions): ResolvedSignalOptions {
  if (typeof options !== 'object' || options === null) throw new AuthOptionsError('options', 'must be an object')
  const issuer = httpUrl('options.issuer', options.issuer)
  const { appliesTo, revocations, description, clock, log } = options
  if (!Array.isArray(appliesTo) || appliesTo.length === 0 || !appliesTo.every((iss) => typeof iss === 'string' && iss !== '')) {
    throw new AuthOptionsError('options.appliesTo', 'must be a non-empty array of token issuers')
  }
  if (typeof revocations !== 'object' || revocations === null || typeof revocations.revoke !== 'function') {
    throw new AuthOptionsError('options.revocations', 'must be a RevocationList (revoke())')
  }
  if (description !== undefined && (typeof description !== 'string' || description.length > MAX_DESCRIPTION)) {
    throw new AuthOptionsError('options.description', `must be a string of at most ${MAX_DESCRIPTION} characters`)
  }
  if (clock !== undefined && typeof clock?.now !== 'function') throw new AuthOptionsError('options.clock', 'must have a now() method')
  if (options.optional !== undefined && typeof options.optional !== 'boolean') throw new AuthOptionsError('options.optional', 'must be a boolean')
  if (log !== undefined && (typeof log?.info !== 'function' || typeof log.warn !== 'function')) {
    throw new AuthOptionsError('options.log', 'must have info() and warn() methods')
  }
  return {
    issuer,
    metadataUrl: options.metadataUrl === undefined ? metadataUrlOf(issuer) : httpUrl('options.metadataUrl', options.metadataUrl),
    credentials: parseCredentials(options),
    appliesTo: new Set(appliesTo),
    revocations,
    entryTtl: positive('options.entryTtl', options.entryTtl, undefined),
    pollWaitMs: positive('options.pollWait', options.pollWait, 25, 3600) * 1000,
    description: description ?? `gatehouse receiver ${hostname()} ${process.pid}`.slice(0, MAX_DESCRIPTION),
    algorithms: parseAlgorithms(options.algorithms),
    timeoutMs: positive('options.timeout', options.timeout, 5000),
    // SETs come over an authenticated channel, so an unknown kid in one is the transmitter's new key
    // far more likely than a flood: fetch soon (a key rollover signs its announcement with the new key).
    jwksCooldownMs: positive('options.jwksCooldown', options.jwksCooldown, 1000),
    optional: options.optional ?? false,
    clock: clock ?? systemClock,
    log: log ?? silent
  }
}
