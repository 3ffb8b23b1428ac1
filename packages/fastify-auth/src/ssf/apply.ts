/**
 * What a verified event does: session-revoked puts a `sid` or `jti` on the revocation list;
 * verification and stream-updated are only logged. Every outcome but a refusal is acknowledged.
 */
import type { KeyChange, RevocationList } from '../revocation/types.ts'
import type { SignalLog } from './options.ts'
import type { VerifiedEvent } from './set-verifier.ts'
import { subjectTarget } from './subject.ts'
import { KEYS_CHANGED, SESSION_REVOKED, STREAM_UPDATED, type SetError } from './wire.ts'

export interface ApplyContext {
  /** The transmitter's issuer: the subject's issuer when the subject names none. */
  transmitter: string
  appliesTo: ReadonlySet<string>
  revocations: RevocationList
  entryTtl: number
  streamId: string
  log: SignalLog
  /** The transmitter's own signing keys changed (a verified KEYS_CHANGED event). */
  keyChanged: (change: KeyChange) => void
}

const KEY_CHANGE_NAMES: ReadonlySet<string> = new Set(['published', 'activated', 'retired', 'revoked'])

/** 'applied' (written to the list), 'ignored' (acknowledged, no effect), or a refusal. */
export type Outcome = 'applied' | 'ignored' | { refused: SetError }

/** Ids from a transmitter go into logs clipped: they are not ours to trust. */
export const clip = (value: string): string => value.length > 80 ? `${value.slice(0, 80)}...` : value

/**
 * Applies `event`. Resolves only once the list has taken the entry, so the caller acknowledges
 * what is written and nothing else; rejects when the list's revoke() does.
 */
export async function applyEvent (event: VerifiedEvent, context: ApplyContext): Promise<Outcome> {
  const { transmitter, log } = context
  const fields = { transmitter, jti: clip(event.jti) }
  if (event.type === STREAM_UPDATED) {
    const status = typeof event.event.status === 'string' ? clip(event.event.status) : 'unknown'
    // SSF 1.0, Stream Updated Event: paused keeps events for later, disabled drops them meanwhile.
    if (status === 'enabled') log.info({ ...fields, status }, 'shared signals: the transmitter enabled the stream')
    else log.warn({ ...fields, status, stream_id: context.streamId }, 'shared signals: the transmitter changed the stream status; revocations may not arrive until it is enabled again')
    return 'ignored'
  }
  if (event.type === KEYS_CHANGED) {
    const { change, kid } = event.event
    if (typeof change !== 'string' || !KEY_CHANGE_NAMES.has(change) || typeof kid !== 'string' || kid === '' || kid.length > 200) {
      return { refused: { err: 'invalid_request', description: 'the key change names no known change and kid' } }
    }
    log.info({ ...fields, change, kid: clip(kid) }, 'shared signals: the transmitter\'s signing keys changed')
    context.keyChanged({ change: change as KeyChange['change'], kid })
    return 'applied'
  }
  if (event.type !== SESSION_REVOKED) {
    log.info(fields, 'shared signals: verification event received')
    return 'ignored'
  }
  const target = subjectTarget(event.subId, transmitter)
  if (target.kind === 'invalid') return { refused: { err: 'invalid_request', description: target.description } }
  if (target.kind === 'none') {
    log.info({ ...fields, format: target.format }, 'shared signals: session-revoked names no session or token; nothing to revoke')
    return 'ignored'
  }
  if (!context.appliesTo.has(target.issuer)) {
    log.info({ ...fields, issuer: clip(target.issuer) }, 'shared signals: session-revoked about an issuer this transmitter is not trusted for; ignored')
    return 'ignored'
  }
  await context.revocations.revoke(target.kind === 'sid' ? { sid: target.id } : { jti: target.id }, context.entryTtl)
  return 'applied'
}
