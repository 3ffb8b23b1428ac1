/**
 * The admin listener's lifecycle (review finding): while the app drains its requests on
 * shutdown, the admin /readyz says 503 so load balancers stop sending, while /healthz still
 * answers; the admin server closes with the app. Real HTTP on both listeners.
 */
import t from 'tap'
import Fastify from 'fastify'
import { listenAdmin, operationalServer } from '../src/admin.ts'
import { closeIdleWhileClosing } from '../src/drain.ts'

t.test('/readyz on the admin port is 503 from the moment the app starts closing', async (t) => {
  const app = Fastify({ logger: false })
  // As the services do: a keep-alive connection whose request ends during the close ends then.
  closeIdleWhileClosing(app)
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let arrived: () => void = () => {}
  const inHandler = new Promise<void>((resolve) => { arrived = resolve })
  app.get('/slow', async () => { arrived(); await held; return { done: true } })
  const admin = { listen: { host: '127.0.0.1', port: 0 } }
  await operationalServer(app, admin, async (server) => {
    server.get('/healthz', async () => ({ status: 'ok' }))
    server.get('/readyz', async () => ({ status: 'ready' }))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await listenAdmin(app, admin)
  const adminAddress = app.admin?.server.address()
  const adminUrl = `http://127.0.0.1:${typeof adminAddress === 'object' && adminAddress !== null ? adminAddress.port : 0}`
  const appAddress = app.server.address()
  const appUrl = `http://127.0.0.1:${typeof appAddress === 'object' && appAddress !== null ? appAddress.port : 0}`
  t.equal((await fetch(`${appUrl}/readyz`)).status, 404, 'not on the public port')
  t.equal((await fetch(`${adminUrl}/readyz`)).status, 200, 'ready while serving')

  const inFlight = fetch(`${appUrl}/slow`)
  await inHandler
  const closed = app.close()
  const draining = await fetch(`${adminUrl}/readyz`)
  t.equal(draining.status, 503, 'draining: not ready')
  t.match(await draining.json(), { status: 'unavailable', problems: ['shutting down'] })
  t.equal((await fetch(`${adminUrl}/healthz`)).status, 200, 'but alive')
  release()
  t.equal((await inFlight).status, 200, 'the request in flight finishes')
  await closed
  await t.rejects(fetch(`${adminUrl}/healthz`), 'the admin server closed with the app')
})
