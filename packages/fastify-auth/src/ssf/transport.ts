/**
 * The one way the receiver talks to a transmitter: fetch with a deadline (and the receiver's
 * own abort signal, so close() cuts a held poll), JSON in and out, the status left to the caller.
 */

/** The transmitter could not be used: unreachable, timed out, or an answer we cannot read. */
export class TransmitterError extends Error {
  /** The HTTP status, when the transmitter answered. */
  readonly status: number | undefined

  constructor (message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TransmitterError'
    this.status = status
  }
}

/**
 * The other side is no SSF transmitter for us: no metadata there (404), or its authorization
 * server will not give this client the scope `ssf.manage`. Retrying does not help.
 */
export class NotOfferedError extends TransmitterError {
  constructor (message: string, status?: number) {
    super(message, status)
    this.name = 'NotOfferedError'
  }
}

export interface Answer {
  status: number
  /** The parsed JSON body; undefined when empty or not JSON. */
  body: unknown
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'DELETE'
  /** A JSON body, or a form (client credentials). */
  json?: unknown
  form?: URLSearchParams
  authorization?: string
  timeoutMs: number
  /** Aborts the request early (the receiver closing). */
  signal?: AbortSignal
}

/** Largest answer read: a poll may carry up to 1000 SETs. */
const MAX_BODY = 16 * 1024 * 1024

/** The URL without its query, for messages (a query could carry a stream id, never a secret, but keep it short). */
const where = (url: string): string => url.split('?')[0] ?? url

export async function request (url: string, options: RequestOptions): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json' }
  let body: string | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = options.form.toString()
  }
  if (options.authorization !== undefined) headers.authorization = options.authorization
  const deadline = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal])
  let text: string
  let status: number
  try {
    const response = await fetch(url, { method: options.method ?? 'GET', headers, body, redirect: 'error', signal })
    status = response.status
    text = await response.text()
  } catch (cause) {
    // undici's "fetch failed" hides the reason (ECONNREFUSED, ...) in its cause.
    const inner = (cause as { cause?: { code?: unknown, message?: unknown } }).cause
    const detail = typeof inner?.code === 'string' ? inner.code : typeof inner?.message === 'string' ? inner.message : (cause as Error).message
    const reason = deadline.aborted ? `no answer within ${options.timeoutMs} ms` : detail
    throw new TransmitterError(`${where(url)}: ${reason}`, undefined, { cause })
  }
  if (text.length > MAX_BODY) throw new TransmitterError(`${where(url)}: answer larger than ${MAX_BODY} bytes`, status)
  let parsed: unknown
  if (text !== '') {
    try {
      parsed = JSON.parse(text)
    } catch {}
  }
  return { status, body: parsed }
}

/** The answer's JSON object, or a TransmitterError naming what was expected. */
export function expectObject (url: string, answer: Answer, statuses: readonly number[]): Record<string, unknown> {
  const { status, body } = answer
  if (!statuses.includes(status)) {
    // RFC 6749 5.2 / RFC 8936 2.4: `error` or `err` is a short code; safe to name, clipped.
    const code = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).error ?? (body as Record<string, unknown>).err : undefined
    const detail = typeof code === 'string' ? ` (${code.slice(0, 64)})` : ''
    throw new TransmitterError(`${where(url)}: HTTP ${status}${detail}`, status)
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TransmitterError(`${where(url)}: the answer is not a JSON object`, status)
  }
  return body as Record<string, unknown>
}

/** An http(s) URL member of a document, or a TransmitterError. */
export function urlMember (url: string, document: Record<string, unknown>, name: string): string {
  const value = document[name]
  try {
    if (typeof value === 'string' && /^https?:$/.test(new URL(value).protocol)) return value
  } catch {}
  throw new TransmitterError(`${where(url)}: ${name} is missing or not an http(s) URL`)
}
