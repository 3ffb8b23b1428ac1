/**
 * The demo resource server's CLI, the only place that reads argv:
 *
 *   node packages/demo/bin/demo-resource-server.js [--issuer URL] [--port N] [--host H] [--audience AUD]
 *
 * Defaults: issuer http://127.0.0.1:4000, 127.0.0.1:4001, audience demo-api. Stops cleanly on
 * SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util'
import { buildResourceServer } from './resource-server.ts'

const { values } = parseArgs({
  options: {
    issuer: { type: 'string', default: 'http://127.0.0.1:4000' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '4001' },
    audience: { type: 'string', default: 'demo-api' }
  }
})
const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be a TCP port, got ${values.port}`)
  process.exit(2)
}

const app = await buildResourceServer({ issuer: values.issuer, audience: values.audience })
let closing = false
const shutdown = (signal: string): void => {
  if (closing) return
  closing = true
  app.log.info({ signal }, 'shutting down')
  app.close().then(() => process.exit(0), () => process.exit(1))
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
await app.listen({ host: values.host, port })
