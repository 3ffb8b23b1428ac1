/**
 * Load, build, listen; stop cleanly on SIGINT/SIGTERM. At start the store must be usable (Redis
 * answering, the signing-keys file readable), else `build` throws an UnusableStoreError (one
 * line, exit 1: the start policy in @gatehouse/shared/cli); once running, an outage is a 503.
 * With `listen.tls` the certificate files must load at start (a located ConfigError otherwise)
 * and are reloaded when they change.
 */
import { dirname } from 'node:path'
import type { KeyChange } from '@gatehouse/fastify-auth/revocation'
import { listenAdmin } from '@gatehouse/shared/admin'
import { packageVersion } from '@gatehouse/shared/cli'
import { startTracing } from '@gatehouse/shared/tracing'
import { loadTls } from '@gatehouse/shared/tls'
import { CertificateReloader } from '@gatehouse/shared/tls-reloader'
import { build } from './app.ts'
import { loadIssuerConfig } from './load-config.ts'
import { keyManagerFor, type KeyManager } from './keys/key-manager.ts'
import { systemClock } from './clock.ts'
import { createStores } from './stores/index.ts'
import { loggerOptions } from './logging.ts'
import pino, { type LoggerOptions } from 'pino'

export async function serve (file: string): Promise<void> {
  const config = loadIssuerConfig(file)
  const tls = loadTls(config.listen.tls, file)
  // OTEL_* variables switch tracing on (docs/operations.md, Tracing); without them no SDK is
  // loaded. Before the app: its hooks and Redis clients are traced only when an SDK is there.
  // Its own logger, like the app's: what the SDK says while it starts is not lost.
  const tracing = await startTracing({ name: 'gatehouse-issuer', version: packageVersion(new URL('../package.json', import.meta.url)) }, pino(loggerOptions(config.log.level) as LoggerOptions))
  const app = await build(config, { baseDir: dirname(file), ...(tls === undefined ? {} : { tls }) })
  const certificates = tls === undefined ? undefined : new CertificateReloader(app.server, tls, app.log)
  app.addHook('onClose', async () => { certificates?.close() })
  // Spans still buffered are sent before the process exits.
  if (tracing !== undefined) app.addHook('onClose', async () => { await tracing.shutdown() })
  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    // In-flight requests finish; new connections are refused (return503OnClosing).
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
  // A habitual `kill -HUP` must not stop the issuer (Node's default): it reloads the certificate.
  process.on('SIGHUP', () => {
    if (certificates !== undefined) certificates.reload('SIGHUP', true)
    else app.log.info({}, 'SIGHUP: nothing to reload (the configuration is read at start; certificates are reloaded when listen.tls is set)')
  })
  await app.listen({ host: config.listen.host, port: config.listen.port })
  await listenAdmin(app, config.admin)
  certificates?.watch()
}

/** Runs `fn` with the key manager of the configured store (for `keys rotate|list`). */
export async function withKeyManager (file: string, fn: (keys: KeyManager) => Promise<void>): Promise<void> {
  const config = loadIssuerConfig(file)
  const log = pino({ level: 'error' })
  const stores = await createStores(config, { clock: systemClock, log, baseDir: dirname(file) })
  try {
    const keys = keyManagerFor(config, stores.keys, systemClock)
    await keys.start()
    keys.stop()
    const changes: KeyChange[] = []
    keys.onChange((found) => { changes.push(...found) })
    try {
      await fn(keys)
    } finally {
      // Also after a rotation that failed half-way: what was stored is announced. With Redis,
      // on the channel at once: issuers re-read (and announce over Shared Signals), gateways
      // refetch the JWKS and drop a revoked key. The embedded issuer notices the file itself.
      await keys.reload().catch(() => {})
      for (const change of changes) {
        await stores.revocations.announceKeyChange?.(change).catch((err: unknown) => {
          console.error(`could not announce ${change.change} ${change.kid} on Redis (${String(err)}): issuers and gateways learn it at their next key refresh`)
        })
      }
    }
  } finally {
    await stores.close()
  }
}
