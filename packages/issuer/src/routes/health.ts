/** GET /healthz (the process answers), GET /readyz (keys loaded, store reachable), GET /metrics. */
import type { FastifyInstance } from 'fastify'
import { CONTENT_TYPE } from '@gatehouse/shared/metrics'
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
    app.get(ctx.config.metrics.path, async (_request, reply) => {
      const text = await ctx.metrics.render({ signingKeys: ctx.keys.describe().length })
      return await reply.header('content-type', CONTENT_TYPE).header('cache-control', 'no-store').send(text)
    })
  }
}
