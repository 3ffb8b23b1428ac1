/**
 * The demo client app's CLI, the only place that reads argv:
 *
 *   node packages/demo/bin/demo-client-app.js [--issuer URL] [--gateway URL] [--port N] [--host H]
 *
 * Defaults: issuer http://127.0.0.1:4000, gateway http://127.0.0.1:8080, 127.0.0.1:3000 (the
 * demo clients' registered redirect URIs). Stops cleanly on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util'
import { buildClientApp } from './client-app/app.ts'
import { portOption, serveUntilSignal } from './serve.ts'

const { values } = parseArgs({
  options: {
    issuer: { type: 'string', default: 'http://127.0.0.1:4000' },
    gateway: { type: 'string', default: 'http://127.0.0.1:8080' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '3000' }
  }
})
// Not 0: the redirect URIs registered at the issuer name the port.
const port = portOption(values.port, 1)

let app: ReturnType<typeof buildClientApp>
try {
  app = buildClientApp({ url: `http://${values.host.includes(':') ? `[${values.host}]` : values.host}:${port}`, issuer: values.issuer, gateway: values.gateway })
} catch (err) {
  console.error((err as Error).message)
  process.exit(2)
}
await serveUntilSignal(app, values.host, port)
