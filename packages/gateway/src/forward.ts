/**
 * The proxy hop: one request to one upstream through undici's dispatcher, the answer written
 * straight to the client's response.
 *
 * Until issue 14 the gateway forwarded with @fastify/reply-from (the engine under
 * @fastify/http-proxy). Per request that copied the headers three times, JSON-encoded a cache
 * key for a URL it then parsed, wrapped undici's answer in a stream, piped that stream through
 * Fastify's send path (end-of-stream listeners on both ends) and awaited the reply through one
 * more: about a third of what a proxied request cost. Here undici's own handler interface is
 * used as it is: one header object each way, the status and headers written with `writeHead`,
 * each chunk with `write`, backpressure through undici's pause and resume. Everything the
 * gateway did around reply-from (failover, health, metrics, tracing, the access log at the
 * response's `finish`) stays in proxy.ts.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import type { Readable } from 'node:stream'
import { Agent, type Dispatcher } from 'undici'
import { answerHeaders } from './forward-headers.ts'
import { upstreamConnector } from './upstreams.ts'

export type ClientResponse = ServerResponse | Http2ServerResponse

/** One request to an upstream. */
export interface UpstreamRequest {
  /** `http://host:port` */
  origin: string
  /** Path and query, as the upstream gets them. */
  path: string
  method: string
  headers: IncomingHttpHeaders
  body: Readable | undefined
  /** Milliseconds for the answer's headers, and between two chunks of its body. */
  timeout: number
  /** The client speaks HTTP/2 (its answer may carry no Host field). */
  http2: boolean
}

/** What the caller does at each step of one exchange. */
export interface ExchangeListener {
  /**
   * The upstream's final answer is in: the headers to write for it, or an Error to answer with
   * instead (then nothing of the upstream's answer is sent). Called at most once.
   */
  answer: (status: number, headers: OutgoingHttpHeaders) => OutgoingHttpHeaders | Error
  /** The answer's headers were written: the caller's response has begun. */
  started: (status: number) => void
  /**
   * The exchange failed before any of its answer was written (the caller may still answer, or
   * try elsewhere); `clientGone` when the client left, which the upstream is not to blame for.
   * The request body lent to it is given up (destroyed) before this is called.
   */
  failed: (error: Error, clientGone: boolean) => void
}

/** Raised by the gateway itself to stop an exchange whose client left (the request log names it). */
export class ClientGone extends Error {
  constructor () {
    super('the client went away')
    this.name = 'ClientGone'
  }
}

/** An answer cut short by its upstream (reset, stalled past the timeout): the request log's error. */
export class UpstreamCut extends Error {
  constructor (cause: Error) {
    super(`the upstream failed during its answer: ${cause.message}`, { cause })
    this.name = 'UpstreamCut'
  }
}

/** Statuses whose answer has no body (RFC 9110 15.3.5, 15.4.5), whatever Content-Length says. */
const bodyless = (status: number): boolean => status === 204 || status === 304

/** Whether the client's side of the exchange is gone (Node 20's HTTP/2 response has no `destroyed`). */
function isClosed (res: ClientResponse): boolean {
  const stream = (res as Http2ServerResponse).stream as Http2ServerResponse['stream'] | undefined
  return stream === undefined ? (res as ServerResponse).destroyed : stream.destroyed || stream.closed
}

const noop = (): void => {}

/**
 * One exchange, as undici's dispatch handler (its plain callback interface: the raw headers,
 * no parsed copy). Written for one response; never reused. It listens for the client's close
 * from the start, so a client that leaves while the upstream thinks stops the upstream request.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #res: ClientResponse
  readonly #http2: boolean
  readonly #body: Readable | undefined
  readonly #listener: ExchangeListener
  #abort: ((reason?: Error) => void) | undefined
  #resume: (() => void) | undefined
  /** The answer's headers are written. */
  #started = false
  /** Settled: true when answered in full, the error when it failed or was stopped. */
  #done: Error | boolean = false
  #onDrain: (() => void) | undefined
  readonly #onClose = (): void => {
    if (this.#done === false) this.#stop(new ClientGone())
  }

  constructor (res: ClientResponse, http2: boolean, body: Readable | undefined, listener: ExchangeListener) {
    this.#res = res
    this.#http2 = http2
    this.#body = body
    this.#listener = listener
    res.on('close', this.#onClose)
  }

  onConnect (abort: (reason?: Error) => void): void {
    // Stopped before undici got this far: stop it now.
    if (this.#done instanceof Error) abort(this.#done)
    else this.#abort = abort
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx (102 Processing, 103 Early Hints): informational, the final answer follows.
    if (statusCode < 200) return true
    if (this.#done !== false) return false
    const res = this.#res
    if (isClosed(res)) {
      this.#stop(new ClientGone())
      return false
    }
    const headers = this.#listener.answer(statusCode, answerHeaders(rawHeaders, this.#http2))
    if (headers instanceof Error) {
      this.#stop(headers)
      return false
    }
    try {
      // Node refuses what it cannot write (a control character in a value; over HTTP/2, a
      // single-value field sent twice): a 502, with none of the upstream's fields on it.
      (res as ServerResponse).writeHead(statusCode, headers)
    } catch (err) {
      for (const name of res.getHeaderNames()) res.removeHeader(name)
      this.#stop(err as Error)
      return false
    }
    this.#started = true
    this.#resume = resume
    this.#listener.started(statusCode)
    if (bodyless(statusCode)) {
      // Done here: undici may yet fail such an answer for the Content-Length it carries.
      this.#done = true
      res.end()
    }
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#done !== false) return false
    if ((this.#res as ServerResponse).write(chunk)) return true
    if (isClosed(this.#res)) {
      this.#stop(new ClientGone())
      return false
    }
    // The client reads slower than the upstream writes: undici pauses until the drain.
    this.#onDrain ??= () => { this.#resume?.() }
    this.#res.once('drain', this.#onDrain)
    return false
  }

  onComplete (): void {
    if (this.#done !== false) return
    this.#done = true
    this.#res.end()
  }

  onError (error: Error): void {
    // Called after our own abort too: that outcome was already settled by #stop.
    if (this.#done !== false) return
    this.#done = error
    this.#fail(error)
  }

  /** Ends the exchange on the gateway's side: the client left, or the answer is refused. */
  #stop (reason: Error): void {
    if (this.#done !== false) return
    this.#done = reason
    this.#abort?.(reason)
    this.#fail(reason)
  }

  #fail (reason: Error): void {
    // The lent body is given up: undici's dispatch leaves that to its owner.
    if (this.#body !== undefined && !this.#body.destroyed) {
      this.#body.on('error', noop)
      this.#body.destroy()
    }
    const res = this.#res
    if (this.#started) {
      // The answer is cut: the request's log line says why (Fastify listens for the response's
      // 'error'), and the client sees its connection (or stream) reset, never a short answer
      // passed off as whole.
      if (res.listenerCount('error') > 0) res.emit('error', reason instanceof ClientGone ? reason : new UpstreamCut(reason))
      res.destroy()
    } else {
      res.removeListener('close', this.#onClose)
      this.#listener.failed(reason, reason instanceof ClientGone)
    }
  }
}

/** The gateway's connections to its upstreams: one pool per origin, shared by every route. */
export class Forwarder {
  readonly #agent: Agent

  /** `connectTimeout` in milliseconds; certificates are checked (upstreams.ts). */
  constructor (connectTimeout: number) {
    this.#agent = new Agent({ connections: 256, pipelining: 1, connect: upstreamConnector(connectTimeout) })
  }

  /** Sends `request`; the answer goes to `res`, each step to `listener`. Never throws. */
  forward (request: UpstreamRequest, res: ClientResponse, listener: ExchangeListener): void {
    this.#agent.dispatch({
      origin: request.origin,
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers as Record<string, string>,
      body: request.body ?? null,
      headersTimeout: request.timeout,
      bodyTimeout: request.timeout
    }, new Exchange(res, request.http2, request.body, listener))
  }

  /**
   * Closes the connections. Called once the server has closed (Fastify closes it before the
   * plugins' onClose hooks), so no client waits on any of them any more.
   */
  async close (): Promise<void> {
    await this.#agent.destroy()
  }
}
