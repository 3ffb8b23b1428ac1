/**
 * `Expect: 100-continue` (RFC 9110 10.1.1): the client sends its headers and waits for a
 * `100 Continue` before the body. Node answers 100 at once unless the server listens for
 * 'checkContinue'; the gateway listens, so the proxy route checks the token and the rate limit
 * first and only then tells the client to go on. A request refused there gets its final status
 * with no 100, its body is never sent, and Node closes the connection after the answer.
 *
 * The gateway's own routes (logout, health, metrics) read their body as usual: they get the
 * 100 before their body is parsed. `Expect` is never forwarded (forward-headers.ts): undici
 * refuses it, and the upstream's 100 would come too late to matter.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route sends the 100 itself, once its checks passed (the proxy). */
    continuesAfterChecks?: boolean
  }
}

/** Node's own test (`_http_server.js`): HTTP/1.1 and a `100-continue` expectation. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i

function isWaitingForContinue (raw: IncomingMessage): boolean {
  const expect = raw.headers.expect
  // HTTP/2 (listen.http2) has 1xx answers too, and its 'checkContinue' is held the same way.
  return (raw.httpVersion === '1.1' || raw.httpVersionMajor === 2) && typeof expect === 'string' && CONTINUE.test(expect)
}

/** Sends the `100 Continue` a waiting client needs, unless a final answer went out already. */
export function sendContinue (request: FastifyRequest, reply: FastifyReply): void {
  if (isWaitingForContinue(request.raw) && !reply.raw.headersSent && !reply.raw.writableEnded) reply.raw.writeContinue()
}

/** Holds every `100 Continue` until the route decides; call once, right after `Fastify()`. */
export function holdContinue (app: FastifyInstance): void {
  app.server.on('checkContinue', (req, res) => { app.server.emit('request', req, res) })
  app.addHook('preParsing', (request, reply, payload, done) => {
    if (request.routeOptions.config.continuesAfterChecks !== true) sendContinue(request, reply)
    done(null, payload)
  })
}
