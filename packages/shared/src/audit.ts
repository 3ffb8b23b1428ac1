/**
 * Audit events: one JSON log line per security-relevant act, in the issuer and the gateway
 * alike (docs/operations.md, Audit events). Each line has a stable `event` name (also its `msg`)
 * and fields from one closed list, so the names are the same everywhere and no caller can
 * slip a token, secret, password, code or cookie in under a name of its own.
 */
import type { FastifyBaseLogger } from 'fastify'

/** Every event either service emits. Renaming one breaks operators' queries: add, never rename. */
export type AuditEvent =
  // issuer
  | 'sign_in.succeeded' | 'sign_in.failed' | 'sign_in.throttled'
  | 'client_auth.failed' | 'client_auth.throttled'
  | 'consent.given' | 'consent.denied'
  | 'token.issued' | 'token.revoked'
  | 'refresh_token.reused' | 'authorization_code.replayed'
  | 'session.ended'
  | 'ssf.push.delivered' | 'ssf.push.failed' | 'ssf.push.refused'
  | 'ssf.poll.acknowledged' | 'ssf.poll.set_error'
  // gateway
  | 'token.refused' | 'logout.succeeded' | 'logout.failed' | 'websocket.closed'
  // both
  | 'backchannel_logout.delivered' | 'backchannel_logout.failed'

/**
 * The fields an event may carry; all optional, `undefined` ones are left out. Identifiers only:
 * `jti` and `sid` name a token or a session without being one.
 */
export interface AuditFields {
  /** The client concerned (as presented, for a failed client authentication). */
  client_id?: string
  /** The subject: the user, or the client itself for client_credentials. */
  sub?: string
  /** As typed at a sign-in. */
  username?: string
  /** The caller's address, proxy-aware (`request.ip`). */
  ip?: string
  /** An access token's id, or a Security Event Token's for the `ssf.*` events. */
  jti?: string
  sid?: string
  grant_type?: string
  /** A stable code saying why (see each event). */
  reason?: string
  /** The gateway route's id (or the logout path). */
  route?: string
  /** Space-separated. */
  scope?: string
  /** Where a sign-in happened: `login_page` or `password_grant`. */
  via?: string
  /** How a session ended. */
  how?: string
  /** Another client than `client_id` that did it (a reuse presented by someone else). */
  by?: string
  token_type?: string
  /** What a revocation request found: `revoked`, `session_ended`, `unknown`. */
  outcome?: string
  /** A back-channel logout receiver. */
  audience?: string
  uri?: string
  /** An HTTP status received or sent; null when no answer came. */
  status?: number | null
  stream_id?: string
  retry_after?: number
  /** How many access tokens (or refresh token families) were revoked along. */
  revoked?: number
  /** Deliveries and acknowledgements counted. */
  count?: number
  notified?: number
  failed?: number
  ended?: boolean
  /** Free text from a receiver or an error, shortened. */
  description?: string
}

export type AuditLevel = 'debug' | 'info' | 'warn'

/** Caller-controlled strings (usernames, client ids as presented) are cut to this length. */
const MAX_FIELD_LENGTH = 256

/**
 * The names of AuditFields, checked at run time too: a caller that spreads an object of its own
 * (which TypeScript's excess-property check does not see) cannot add a field under another name.
 */
const FIELD_NAMES: ReadonlySet<string> = new Set(['client_id', 'sub', 'username', 'ip', 'jti', 'sid', 'grant_type', 'reason', 'route', 'scope', 'via', 'how', 'by', 'token_type', 'outcome', 'audience', 'uri', 'status', 'stream_id', 'retry_after', 'revoked', 'count', 'notified', 'failed', 'ended', 'description'] satisfies Array<keyof AuditFields>)

/** A receiver's URL as an audit line may carry it: origin and path (a query may hold a secret). */
export function loggableUri (uri: string): string {
  try {
    const url = new URL(uri)
    return `${url.origin}${url.pathname}`
  } catch {
    return '(unparsable)'
  }
}

/**
 * Logs `event` with `fields` at `level` (info unless said otherwise). Give it `request.log`
 * when there is a request, so the line carries the request id too.
 */
export function audit (log: FastifyBaseLogger, event: AuditEvent, fields: AuditFields, level: AuditLevel = 'info'): void {
  const line: Record<string, unknown> = { event }
  for (const [name, value] of Object.entries(fields) as Array<[string, unknown]>) {
    if (value === undefined || !FIELD_NAMES.has(name)) continue
    line[name] = typeof value === 'string' && value.length > MAX_FIELD_LENGTH ? `${value.slice(0, MAX_FIELD_LENGTH)}...` : value
  }
  // A request's logger may bind the same `ip` already: one key, not two, in the JSON line.
  if (line.ip !== undefined && boundFields(log).ip === line.ip) delete line.ip
  log[level](line, event)
}

/** pino's `bindings()` (not in Fastify's logger type); none for other loggers. */
function boundFields (log: FastifyBaseLogger): Record<string, unknown> {
  const bindings = (log as { bindings?: () => Record<string, unknown> }).bindings
  return typeof bindings === 'function' ? bindings.call(log) : {}
}
