/**
 * Shutdown with HTTP/2 (`listen.http2`). Fastify's close waits for every HTTP/2 session to
 * end, and on Node before 24 nothing ends an idle one: Fastify closes sessions only with
 * `forceCloseConnections: true`, which also cuts HTTP/1.1 requests in flight. A browser keeps
 * its connection open for minutes, so SIGTERM would wait out the grace period. Instead, at
 * preClose every session gets a GOAWAY (`session.close()`): streams in flight finish, no new
 * ones start, then the session closes.
 */
import type { FastifyInstance } from 'fastify'
import type { Http2Session } from 'node:http2'

/** Call once, right after `Fastify()`, on an app built with `listen.http2`. */
export function closeSessionsOnClose (app: FastifyInstance): void {
  const sessions = new Set<Http2Session>()
  app.server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => { sessions.delete(session) })
  })
  app.addHook('preClose', (done) => {
    for (const session of sessions) session.close()
    done()
  })
}
