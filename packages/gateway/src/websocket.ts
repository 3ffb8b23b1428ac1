/**
 * WebSockets through the gateway, on routes with `websocket`.
 *
 * The upgrade request goes through Fastify like any request (the trick @fastify/websocket uses:
 * the server's `upgrade` event hands the request to `app.routing` with a response bound to the
 * socket), so the catch-all route normalises its path, finds its route, checks its token as a
 * GET (scopes included), applies the rate limit, and answers refusals as plain HTTP (401, 403,
 * 429) before any upstream connection. Then the gateway opens the upstream WebSocket with the
 * identity headers, and completes the client's handshake only once the upstream accepted (so an
 * upstream that is down is a 502, not an open-then-closed socket); messages are relayed both
 * ways, text and binary, with close codes.
 *
 * Beyond what other gateways do: every open connection keeps the claims it was opened with, and
 * a sweep every SWEEP_MS closes those whose session or token was revoked (logout here, a Shared
 * Signals event, an entry from Redis: whatever reaches the revocation mirror) or whose token
 * expired, or whose token's signing key was revoked (an emergency key rollover), with close
 * code 1008. So a logout ends the session's live connections too, within
 * the mirror's delay plus SWEEP_MS.
 *
 * Browsers cannot set Authorization on a WebSocket: they offer the token as a subprotocol,
 * `gatehouse.bearer.<token>`, next to `gatehouse.bearer` (which the gateway then selects when
 * the upstream selects none) or the application's own subprotocols. That entry never reaches
 * the upstream and is never echoed back.
 *
 * Oversized messages (`maxMessageSize`) close that connection with 1009, malformed frames with
 * 1002: the `ws` library enforces both; other connections are untouched.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { audit } from '@gatehouse/shared/audit'
import WebSocket, { WebSocketServer } from 'ws'
import type { AccessClaims, TokenVerifier } from '@gatehouse/fastify-auth'
import type { Clock, RevocationList } from '@gatehouse/fastify-auth/revocation'
import { badGateway, badRequest, gatewayTimeout } from './errors.ts'
import type { GatewayMetrics } from './metrics.ts'
import type { Upstream } from './route-table.ts'

/** How often open connections are checked against the revocation mirror and their token's exp. */
export const SWEEP_MS = 250
/** The subprotocol prefix that carries a token from a browser. */
export const BEARER_PROTOCOL = 'gatehouse.bearer'
const BEARER_PREFIX = `${BEARER_PROTOCOL}.`

const kUpgrade = Symbol('gatehouse.upgrade')
interface UpgradeContext { socket: Duplex, head: Buffer, upgraded: boolean, closed: boolean }
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: UpgradeContext }

/** True when this request arrived as an HTTP upgrade (handled by `proxyWebSocket`). */
export function isUpgrade (request: FastifyRequest): boolean {
  return (request.raw as UpgradeRequest)[kUpgrade] !== undefined
}

/**
 * The Authorization header to check: the request's own, else the token offered as a
 * subprotocol. Undefined when there is neither.
 */
export function upgradeAuthorization (request: FastifyRequest): string | undefined {
  if (request.headers.authorization !== undefined) return request.headers.authorization
  const offered = offeredProtocols(request.headers['sec-websocket-protocol'])
  const token = offered.find((p) => p.startsWith(BEARER_PREFIX))
  return token === undefined ? undefined : `Bearer ${token.slice(BEARER_PREFIX.length)}`
}

function offeredProtocols (header: string | string[] | undefined): string[] {
  if (header === undefined) return []
  return String(header).split(',').map((p) => p.trim()).filter((p) => p !== '')
}

const KEY = /^[+/0-9A-Za-z]{22}==$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * The client's handshake as `ws` would check it (RFC 6455 4.2.1), so a handshake it would refuse
 * is a 400 before any upstream connection: GET, a key, version 13 (or 8), and subprotocols that
 * are distinct tokens. Returns the subprotocols offered.
 */
function checkHandshake (request: FastifyRequest): string[] {
  if (request.method !== 'GET') throw badRequest('only GET is upgraded to a WebSocket')
  const key = request.headers['sec-websocket-key']
  if (typeof key !== 'string' || !KEY.test(key)) throw badRequest('missing or invalid Sec-WebSocket-Key')
  const version = request.headers['sec-websocket-version']
  if (version !== '13' && version !== '8') throw badRequest('unsupported Sec-WebSocket-Version: use 13')
  const offered = offeredProtocols(request.headers['sec-websocket-protocol'])
  const header = request.headers['sec-websocket-protocol']
  if (header !== undefined && (offered.length === 0 || String(header).split(',').some((p) => p.trim() === ''))) throw badRequest('malformed Sec-WebSocket-Protocol')
  if (offered.some((p) => !TOKEN.test(p)) || new Set(offered).size !== offered.length) throw badRequest('malformed Sec-WebSocket-Protocol: tokens, each once')
  return offered
}

/** Request headers the `ws` client sets itself, or that describe the client's own handshake. */
const HANDSHAKE_HEADERS = new Set(['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length'])

interface OpenConnection {
  client: WebSocket
  upstream: WebSocket
  claims: AccessClaims | null
  /** The `kid` the token was signed with, if any. */
  kid: string | undefined
  route: string
}

/** The `kid` of a JWS compact token's header, or undefined. */
function kidOf (authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const token = authorization.slice(authorization.indexOf(' ') + 1)
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString()) as { kid?: unknown }
    return typeof header.kid === 'string' ? header.kid : undefined
  } catch {
    return undefined
  }
}

/** A close code that may be sent in a close frame (1005, 1006 and 1015 are only reported). */
function sendableCode (code: number): number {
  return code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999) ? code : 1000
}

/** Bytes relayed but not yet written out past which the sending side stops being read. */
const HIGH_WATER = 4 * 1024 * 1024
const LOW_WATER = 1024 * 1024

/**
 * Relays `from`'s messages to `to`, with backpressure: while more than HIGH_WATER bytes wait to
 * be written to a slow reader, the other side is not read (TCP then slows the sender), so a
 * fast producer cannot fill the gateway's memory.
 */
function pipe (from: WebSocket, to: WebSocket): void {
  let pending = 0
  let paused = false
  from.on('message', (data, isBinary) => {
    if (to.readyState !== WebSocket.OPEN) return
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength
    pending += size
    to.send(data, { binary: isBinary }, () => {
      pending -= size
      if (paused && pending <= LOW_WATER) {
        paused = false
        from.resume()
      }
    })
    if (!paused && pending > HIGH_WATER) {
      paused = true
      from.pause()
    }
  })
}

export interface WebSocketOptions {
  revocations: RevocationList
  /** Says whether a token's signing key was revoked since it was checked. */
  verifier: Pick<TokenVerifier, 'isKeyRevoked'>
  clock: Clock
  /** Seconds of tolerance on exp, as for requests. */
  clockTolerance: number
  /** Milliseconds the mirror may go unheard from; past that, without `failOpen`, connections close (1013). */
  maxStaleness: number
  failOpen: boolean
  metrics: Pick<GatewayMetrics, 'countRequest'>
}

export class WebSocketProxy {
  readonly #app: FastifyInstance
  readonly #options: WebSocketOptions
  readonly #open = new Set<OpenConnection>()
  /** Handshake servers, one per `maxMessageSize` in use. */
  readonly #servers = new Map<number, WebSocketServer>()
  #sweeper: NodeJS.Timeout | undefined

  readonly #metrics: WebSocketOptions['metrics']

  constructor (app: FastifyInstance, options: WebSocketOptions) {
    this.#app = app
    this.#options = options
    this.#metrics = options.metrics
    app.server.on('upgrade', (request: UpgradeRequest, socket: Duplex, head: Buffer) => { this.#onUpgrade(request, socket, head) })
    // Open connections end before the server waits for its connections to close.
    app.addHook('preClose', (done) => {
      this.closeAll(1001, 'gateway shutting down')
      done()
    })
  }

  /** Number of open proxied connections. */
  get size (): number {
    return this.#open.size
  }

  /** Connections closed because their session or token was revoked, or their token expired. */
  closedInvalid = 0

  /**
   * Hands an upgrade request to Fastify's router, with a response bound to its socket. Only a
   * WebSocket upgrade is one to us; any other (`Upgrade: h2c`, say) is served as the plain
   * request it also is, as Node does without an upgrade listener, on a connection then closed.
   */
  #onUpgrade (request: UpgradeRequest, socket: Duplex, head: Buffer): void {
    // Node drops its own error listener before emitting `upgrade`: keep the socket guarded.
    socket.on('error', () => { socket.destroy() })
    const isWebSocket = String(request.headers.upgrade).toLowerCase() === 'websocket'
    if (!isWebSocket && (head.length > 0 || request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0)) {
      // Its body went to `head`, out of the request's stream: nothing could forward it.
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 75\r\n\r\n{"error":"invalid_request","error_description":"unsupported Upgrade request"}')
      return
    }
    const context: UpgradeContext = { socket, head, upgraded: false, closed: false }
    socket.once('close', () => { context.closed = true })
    if (isWebSocket) request[kUpgrade] = context
    const response = new ServerResponse(request)
    response.shouldKeepAlive = false
    response.assignSocket(socket as never)
    // An answer sent as HTTP (a refusal, or a plain request) ends the connection once written.
    response.once('finish', () => { if (!context.upgraded) socket.end() })
    try {
      this.#app.routing(request, response)
    } catch (err) {
      this.#app.log.warn({ err }, 'upgrade request failed')
      socket.destroy()
    }
  }

  /**
   * Called by the catch-all once the route, token and rate limit passed: checks the handshake,
   * connects the upstream, then completes the client's handshake and relays. Refusals throw
   * (sent as HTTP); an upstream connection never outlives a client that is gone.
   */
  async proxy (request: FastifyRequest, reply: FastifyReply, target: { upstream: Upstream, path: string, headers: Record<string, unknown>, claims: AccessClaims | null, route: string, maxMessageSize: number, timeout: number }): Promise<void> {
    const raw = request.raw as UpgradeRequest & { selectedProtocol?: string | false }
    const context = raw[kUpgrade]
    if (context === undefined) throw new Error('unreachable: not an upgrade')
    // What `ws` would refuse, refused before any upstream connection.
    const offered = checkHandshake(request)
    const forwarded = offered.filter((p) => p !== BEARER_PROTOCOL && !p.startsWith(BEARER_PREFIX))
    if (context.closed) throw badRequest('the client went away')
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(target.headers)) {
      if (value !== undefined && !HANDSHAKE_HEADERS.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : String(value)
    }
    const url = (target.upstream.origin.startsWith('https:') ? 'wss:' : 'ws:') + target.upstream.origin.slice(target.upstream.origin.indexOf('//')) + target.path

    const upstream = new WebSocket(url, forwarded, { headers, perMessageDeflate: false, maxPayload: target.maxMessageSize, handshakeTimeout: target.timeout, followRedirects: false })
    let relayed = false
    // From here on, a client that leaves takes the upstream connection with it.
    context.socket.once('close', () => { if (!relayed) upstream.terminate() })
    try {
      await new Promise<void>((resolve, reject) => {
        upstream.once('open', () => {
          // Not read until the client's handshake is done: nothing is buffered meanwhile.
          upstream.pause()
          resolve()
        })
        upstream.once('unexpected-response', (_req, res) => {
          res.resume()
          // It answered: up, whatever it said (proxy.ts counts it so).
          reject(Object.assign(badGateway(`the upstream refused the WebSocket upgrade (${String(res.statusCode)})`), { upstreamAnswered: true }))
        })
        upstream.once('error', (err) => {
          // The cause tells proxy.ts what failed (and that another upstream may be tried).
          const error = /timed out/i.test(err.message) ? gatewayTimeout('the upstream did not accept the WebSocket in time') : badGateway()
          error.cause = err
          reject(error)
        })
        context.socket.once('close', () => { reject(badRequest('the client went away')) })
      })
    } catch (err) {
      upstream.terminate()
      throw err
    }
    // The upstream's choice among what the client offered; else `gatehouse.bearer` if offered.
    raw.selectedProtocol = upstream.protocol !== '' ? upstream.protocol : offered.includes(BEARER_PROTOCOL) ? BEARER_PROTOCOL : false
    context.upgraded = true
    reply.hijack()
    context.socket.removeAllListeners('error')
    this.#serverFor(target.maxMessageSize).handleUpgrade(raw, context.socket, context.head, (client) => {
      relayed = true
      const kid = target.claims === null ? undefined : kidOf(upgradeAuthorization(request))
      this.#relay({ client, upstream, claims: target.claims, kid, route: target.route })
      this.#metrics.countRequest(target.route, 101)
      request.log.info({
        route: target.route,
        statusCode: 101,
        ...(target.claims === null ? {} : { client_id: target.claims.client_id, sub: target.claims.sub }),
        ...(raw.selectedProtocol === false ? {} : { protocol: raw.selectedProtocol })
      }, 'WebSocket opened')
    })
  }

  #serverFor (maxPayload: number): WebSocketServer {
    let server = this.#servers.get(maxPayload)
    if (server === undefined) {
      server = new WebSocketServer({
        noServer: true,
        maxPayload,
        perMessageDeflate: false,
        clientTracking: false,
        handleProtocols: (_offered, request) => (request as UpgradeRequest & { selectedProtocol?: string | false }).selectedProtocol ?? false
      })
      this.#servers.set(maxPayload, server)
    }
    return server
  }

  #relay (connection: OpenConnection): void {
    const { client, upstream } = connection
    this.#open.add(connection)
    this.#startSweeping()
    pipe(client, upstream)
    pipe(upstream, client)
    upstream.resume()
    const end = (other: WebSocket) => (code: number, reason: Buffer): void => {
      this.#open.delete(connection)
      if (other.readyState === WebSocket.OPEN || other.readyState === WebSocket.CONNECTING) other.close(sendableCode(code), reason.subarray(0, 123))
    }
    client.on('close', end(upstream))
    upstream.on('close', end(client))
    // A protocol error (oversized or malformed frame) closes that side with its code; the close
    // event then ends the other side. Nothing else to do but keep the error from being thrown.
    client.on('error', (err) => { this.#app.log.info({ err: err.message, route: connection.route }, 'WebSocket client error') })
    upstream.on('error', (err) => { this.#app.log.info({ err: err.message, route: connection.route }, 'WebSocket upstream error') })
  }

  #startSweeping (): void {
    if (this.#sweeper !== undefined) return
    this.#sweeper = setInterval(() => { this.sweep() }, SWEEP_MS)
    this.#sweeper.unref()
  }

  /** Closes connections whose session or token was revoked, or whose token expired. */
  sweep (): void {
    if (!this.#options.failOpen && this.#options.revocations.staleness > this.#options.maxStaleness) {
      // As requests are refused (503) while the mirror is too stale to trust, so are connections.
      for (const connection of this.#open) {
        if (connection.claims === null) continue
        this.#open.delete(connection)
        this.#app.log.warn({ route: connection.route }, 'WebSocket closed: the revocation list is stale')
        connection.client.close(1013, 'revocations stale')
        connection.upstream.close(1001, 'revocations stale')
      }
    }
    const now = this.#options.clock.now()
    const tolerance = this.#options.clockTolerance * 1000
    for (const connection of this.#open) {
      const { claims } = connection
      if (claims === null) continue
      const reason = this.#options.revocations.isRevoked(claims)
        ? 'session revoked'
        : now >= claims.exp * 1000 + tolerance
          ? 'token expired'
          : connection.kid !== undefined && this.#options.verifier.isKeyRevoked(connection.kid) ? 'signing key revoked' : undefined
      if (reason === undefined) continue
      this.#open.delete(connection)
      this.closedInvalid++
      audit(this.#app.log, 'websocket.closed', { route: connection.route, reason: reason.replace(/ /g, '_'), client_id: claims.client_id, sub: claims.sub, jti: claims.jti, sid: claims.sid })
      connection.client.close(1008, reason)
      connection.upstream.close(1000, reason)
    }
    if (this.#open.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
    }
  }

  /** Closes every open connection (shutdown). */
  closeAll (code: number, reason: string): void {
    for (const connection of this.#open) {
      connection.client.close(code, reason)
      connection.upstream.close(code, reason)
    }
    this.#open.clear()
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }
}
