// A keep-alive connection whose request was in flight when the close began ends as soon as
// that request is answered, not at the keep-alive timeout (72 s): SIGTERM under load exited 1
// after the 30 s grace before this.
import t from 'tap'
import Fastify from 'fastify'
import { closeIdleWhileClosing } from '../src/drain.ts'

async function closeTime (drain: boolean): Promise<number> {
  const app = Fastify({ logger: false })
  if (drain) closeIdleWhileClosing(app)
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let arrived: () => void = () => {}
  const inHandler = new Promise<void>((resolve) => { arrived = resolve })
  app.get('/slow', async () => { arrived(); await held; return { done: true } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  // A keep-alive client (fetch's undici) with a second, idle connection to the app.
  await (await fetch(`http://127.0.0.1:${port}/none`)).arrayBuffer()
  const answered = fetch(`http://127.0.0.1:${port}/slow`).then(async (res) => { await res.arrayBuffer(); return res.status })
  await inHandler
  const closed = app.close()
  // The close under way (the port no longer listening) while the request is still in flight.
  while (app.server.listening) await new Promise((resolve) => setTimeout(resolve, 5))
  release()
  t.equal(await answered, 200, 'the request in flight is answered')
  const started = performance.now()
  const bound = new Promise<'bound'>((resolve) => setTimeout(() => resolve('bound'), 10_000).unref())
  const result = await Promise.race([closed.then(() => 'closed' as const), bound])
  await closed
  return result === 'closed' ? performance.now() - started : Infinity
}

t.test('the close ends a keep-alive connection as its last request is answered', async (t) => {
  const ms = await closeTime(true)
  t.ok(ms < 10_000, `closed ${Math.round(ms)} ms after the answer`)
})
