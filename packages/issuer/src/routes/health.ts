/** GET /healthz (the process answers) and GET /readyz (keys loaded, store reachable). */
import type { FastifyInstance } from 'fastify'
import type { IssuerContext } from '../context.ts'

const READY_TIMEOUT_MS = 1000

export function healthRoutes (ctx: IssuerContext) {
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (request, reply) => {
      const problems: string[] = []
      if (!ctx.keys.isLoaded) problems.push('signing keys not loaded')
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          ctx.stores.ping(),
          new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS) })
        ])
      } catch (err) {
        request.log.warn({ err }, 'store not reachable')
        problems.push('store not reachable')
      } finally {
        clearTimeout(timer)
      }
      if (problems.length > 0) return await reply.code(503).send({ status: 'unavailable', problems })
      return { status: 'ready', store: ctx.stores.kind }
    })
  }
}
