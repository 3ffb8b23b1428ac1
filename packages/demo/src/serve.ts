/** What the demo's two servers' CLIs share: reading --port, and serving until SIGINT/SIGTERM. */
import type { FastifyInstance } from 'fastify'

/** `--port` as a TCP port, or exit 2 with the reason. `min` 1 where the port is registered somewhere. */
export function portOption (value: string, min = 0): number {
  const port = Number(value)
  if (!Number.isInteger(port) || port < min || port > 65535) {
    console.error(`--port must be a TCP port, got ${value}`)
    process.exit(2)
  }
  return port
}

/** Listens; SIGINT/SIGTERM close the app (requests in flight finish) and exit 0. */
export async function serveUntilSignal (app: FastifyInstance, host: string, port: number): Promise<void> {
  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    app.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
  await app.listen({ host, port })
}
