/**
 * Load, build, listen; reload the routes on SIGHUP and when the file changes (and the TLS
 * certificate, with `listen.tls`, when its files change); stop cleanly on SIGINT/SIGTERM (no
 * new connections, requests in flight finish, Redis closed).
 * At start Redis must answer, else `build` throws an UnusableStoreError (one line, exit 1: the
 * start policy in @gatehouse/shared/cli); the issuer's keys may come later (/readyz 503).
 */
import { IssuerMismatchError } from '@gatehouse/fastify-auth'
import { listenAdmin } from '@gatehouse/shared/admin'
import { packageVersion } from '@gatehouse/shared/cli'
import { startTracing } from '@gatehouse/shared/tracing'
import { loadTls } from '@gatehouse/shared/tls'
import { CertificateReloader } from '@gatehouse/shared/tls-reloader'
import { build } from './app.ts'
import { issuerMismatchProblem, loadGatewayConfig } from './load-config.ts'
import { ConfigReloader } from './reloader.ts'
import { loggerOptions } from './logging.ts'
import { batchedLogOutput } from './log-output.ts'
import pino, { type LoggerOptions } from 'pino'
import type { FastifyLoggerOptions } from 'fastify'

/** How long shutdown waits for requests in flight before exiting anyway. */
const SHUTDOWN_GRACE_MS = 30_000

export async function serve (file: string): Promise<void> {
  const config = loadGatewayConfig(file)
  const tls = loadTls(config.listen.tls, file)
  // OTEL_* variables switch tracing on (docs/operations.md, Tracing); without them no SDK is
  // loaded. Before the app: its hooks and Redis clients are traced only when an SDK is there.
  // Its own logger, like the app's: what the SDK says while it starts is not lost.
  const tracing = await startTracing({ name: 'gatehouse-gateway', version: packageVersion(new URL('../package.json', import.meta.url)) }, pino(loggerOptions(config.log.level) as LoggerOptions))
  // The request log batched (log-output.ts): every line still written, at shutdown and crash-exit too.
  const logger = { ...(loggerOptions(config.log.level) as FastifyLoggerOptions), stream: batchedLogOutput() }
  const app = await build(config, tls === undefined ? { logger } : { tls, logger }).catch((err: unknown) => {
    throw err instanceof IssuerMismatchError ? issuerMismatchProblem(file, err) : err
  })
  const reloader = new ConfigReloader(app, file)
  const certificates = tls === undefined ? undefined : new CertificateReloader(app.server, tls, app.log)
  app.addHook('onClose', async () => {
    reloader.close()
    certificates?.close()
  })
  // Spans still buffered are sent before the process exits.
  if (tracing !== undefined) app.addHook('onClose', async () => { await tracing.shutdown() })

  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    setTimeout(() => {
      app.log.warn({}, 'requests still in flight after the grace period; exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS).unref()
    // New connections are refused and new requests get 503 (return503OnClosing); in-flight
    // requests finish; then the onClose hooks close Redis.
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
  process.on('SIGHUP', () => {
    reloader.reload('SIGHUP', true)
    certificates?.reload('SIGHUP', true)
  })
  await app.listen({ host: config.listen.host, port: config.listen.port })
  await listenAdmin(app, config.admin)
  reloader.watch()
  certificates?.watch()
}
