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
import { portOption, serveUntilSignal } from './serve.ts'

const { values } = parseArgs({
  options: {
    issuer: { type: 'string', default: 'http://127.0.0.1:4000' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '4001' },
    audience: { type: 'string', default: 'demo-api' }
  }
})
const port = portOption(values.port)
await serveUntilSignal(await buildResourceServer({ issuer: values.issuer, audience: values.audience }), values.host, port)
