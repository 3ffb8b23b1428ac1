/**
 * Shutdown with HTTP/1.1 keep-alive. Fastify's close ends the connections that are idle at that
 * moment (`forceCloseConnections: 'idle'`), but a connection whose request was still in flight
 * becomes idle only afterwards, and then nothing ends it: the close waited out the keep-alive
 * timeout (72 s), past the services' 30 s grace, so a SIGTERM under load ended in exit 1.
 * While the app closes, connections that fall idle are closed as they do (every 50 ms), and
 * answers sent meanwhile say `Connection: close`.
 */
import type { FastifyInstance } from 'fastify'
import type { Server } from 'node:http'

const EVERY_MS = 50

/** Call once on an app (and on each extra server it closes with it). */
export function closeIdleWhileClosing (app: FastifyInstance): void {
  let timer: NodeJS.Timeout | undefined
  app.addHook('preClose', (done) => {
    const server = app.server as Server
    if (typeof server.closeIdleConnections === 'function') {
      timer = setInterval(() => { server.closeIdleConnections() }, EVERY_MS).unref()
    }
    done()
  })
  app.addHook('onClose', (_instance, done) => {
    clearInterval(timer)
    done()
  })
}
