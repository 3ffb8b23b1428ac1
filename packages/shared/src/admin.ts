/**
 * The admin listener (`admin.listen`), shared by the issuer and the gateway: a second, small
 * Fastify server for `/metrics`, `/healthz` and `/readyz`, as Kong (8001), KrakenD (8090) and
 * Oathkeeper (4456) keep theirs off the public port. When it is configured the public port
 * serves none of them: a gateway route with `prefix: /` then reaches its upstream's own
 * `/healthz`, and the counts are not public.
 */
import { closeIdleWhileClosing } from './drain.ts'
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'

export const AdminSchema = Type.Object({
  listen: Type.Object({
    host: Type.String({ default: '127.0.0.1', description: 'Address of the admin listener (keep it private: loopback, or an address only the scraper and the orchestrator reach).' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'Port of the admin listener.' })
  }, { additionalProperties: false, description: 'Where `/metrics`, `/healthz` and `/readyz` are served.' })
}, { additionalProperties: false, description: 'The admin listener: `/metrics`, `/healthz` and `/readyz` on a port of their own, and no longer on the public one. Omitted: they are served on the public port (the default, as before).' })

export type AdminConfig = Static<typeof AdminSchema>

declare module 'fastify' {
  interface FastifyInstance {
    /** The admin listener's server (not listening until main.ts says so), or null without `admin`. */
    admin: FastifyInstance | null
  }
}

/**
 * Where the operational routes go: the app itself without `admin`, else a separate Fastify
 * instance (logging through the app's logger, requests unlogged: scrapes and probes are noise),
 * closed with the app. main.ts listens on it after the app (`listenAdmin`).
 */
export async function operationalServer (app: FastifyInstance, admin: AdminConfig | undefined, routes: FastifyPluginAsync): Promise<void> {
  if (admin === undefined) {
    app.decorate('admin', null)
    await app.register(routes)
    return
  }
  const server = Fastify({ loggerInstance: app.log.child({ listener: 'admin' }), disableRequestLogging: true, return503OnClosing: false })
  server.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ error: 'not_found' }))
  closeIdleWhileClosing(server)
  // While the app drains (its port already refuses new connections), it is not ready: load
  // balancers must stop sending. /healthz and /metrics keep answering until the end.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  server.addHook('onRequest', (request, reply, done) => {
    if (closing && request.url === '/readyz') {
      reply.code(503).header('cache-control', 'no-store').send({ status: 'unavailable', problems: ['shutting down'] })
      return
    }
    done()
  })
  await server.register(routes)
  app.decorate('admin', server)
  app.addHook('onClose', async () => { await server.close() })
}

/** Listens on `admin.listen` when the app has an admin server. */
export async function listenAdmin (app: FastifyInstance, admin: AdminConfig | undefined): Promise<void> {
  if (app.admin === null || admin === undefined) return
  await app.admin.listen({ host: admin.listen.host, port: admin.listen.port })
}
