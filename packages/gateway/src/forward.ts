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
   * The upstream answered: the headers to write for it, or an Error to answer with instead
   * (then nothing of the upstream's answer is sent). Called at most once.
   */
  answer: (status: number, headers: OutgoingHttpHeaders) => OutgoingHttpHeaders | Error
  /** The headers were written (the caller's response has begun). */
  started: () => void
  /**
   * The exchange failed before any of its answer was written (the caller may still answer, or
   * try elsewhere); `clientGone` when the client left, which the upstream is not to blame for.
   */
  failed: (error: Error, clientGone: boolean) => void
  /** The upstream failed after the answer had begun: the client's response was cut short. */
  cut: (error: Error) => void
}

/** Raised by the gateway itself to stop an exchange whose client left. */
class ClientGone extends Error {
  constructor () {
    super('the client went away')
    this.name = 'ClientGone'
  }
}

/**
 * One exchange, as undici's dispatch handler (its plain callback interface: the raw headers,
 * no parsed copy). Written for one response; never reused.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #res: ClientResponse
  readonly #http2: boolean
  readonly #listener: ExchangeListener
  #abort: ((reason?: Error) => void) | undefined
  #resume: (() => void) | undefined
  /** The answer's headers are written. */
  #started = false
  /** Settled: answered in full, failed, or stopped by us. */
  #done = false
  #onDrain: (() => void) | undefined
  readonly #onClose = (): void => {
    if (!this.#done) this.#stop(new ClientGone())
  }

  constructor (res: ClientResponse, http2: boolean, listener: ExchangeListener) {
    this.#res = res
    this.#http2 = http2
    this.#listener = listener
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const res = this.#res
    if (res.destroyed) {
      this.#stop(new ClientGone())
      return false
    }
    const headers = this.#listener.answer(statusCode, answerHeaders(rawHeaders, this.#http2))
    if (headers instanceof Error) {
      this.#stop(headers)
      return false
    }
    try {
      // Node refuses what it cannot write (a value with a control character): a 502.
      (res as ServerResponse).writeHead(statusCode, headers)
    } catch (err) {
      this.#stop(err as Error)
      return false
    }
    this.#started = true
    this.#resume = resume
    res.on('close', this.#onClose)
    this.#listener.started()
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#done) return false
    if ((this.#res as ServerResponse).write(chunk)) return true
    // The client reads slower than the upstream writes: undici pauses until the drain.
    this.#onDrain ??= () => { this.#resume?.() }
    this.#res.once('drain', this.#onDrain)
    return false
  }

  onComplete (): void {
    if (this.#done) return
    this.#done = true
    this.#res.end()
  }

  onError (error: Error): void {
    // Called after our own abort too: that outcome was already settled by #stop.
    if (this.#done) return
    this.#done = true
    if (this.#started) {
      this.#listener.cut(error)
      this.#res.destroy()
    } else {
      this.#listener.failed(error, false)
    }
  }

  /** Ends the exchange on the gateway's side: the client left, or the answer is refused. */
  #stop (reason: Error): void {
    if (this.#done) return
    this.#done = true
    this.#abort?.(reason)
    if (this.#started) this.#res.destroy()
    else this.#listener.failed(reason, reason instanceof ClientGone)
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
    }, new Exchange(res, request.http2, listener))
  }

  /** Closes the connections once the requests on them are answered. */
  async close (): Promise<void> {
    await this.#agent.close()
  }
}
