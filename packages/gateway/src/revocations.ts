/**
 * The revocation list the gateway reads (and writes on logout): the Redis mirror when Redis is
 * configured, else the in-memory list for one instance, fed as well by Shared Signals receivers
 * (the issuer's stream, other transmitters). One Redis connection for commands (revocations,
 * rate limits) and one subscriber, owned by the list.
 */
import { MemoryRevocationList, RedisRevocationList, type RevocationList, type RevocationLog } from '@gatehouse/fastify-auth/revocation'
import { SignalReceiver, withSignalSources } from '@gatehouse/fastify-auth/ssf'
import { checkRedis, createRedisClient, createSubscriberClient, type RedisClient } from '@gatehouse/shared/redis'
import type { GatewayConfig } from './config.ts'

/** A Shared Signals transmitter this gateway holds a stream at. */
export interface SignalSource {
  /** The transmitter's issuer (metrics label, log field). */
  transmitter: string
  receiver: SignalReceiver
}

export interface RevocationSetup {
  /** What the verifier reads: the list, with the staleness of its worst source. */
  revocations: RevocationList
  /** Shared Signals streams feeding the list (started by `start()`). */
  signals: SignalSource[]
  /** The command connection, when Redis is configured (rate limits use it too). */
  redis: RedisClient | undefined
  /** Resolves once Redis answers; an UnusableStoreError naming it otherwise (no-op without Redis). */
  check (): Promise<void>
  /** Starts the Shared Signals receivers (in the background). */
  start (): void
  /** Closes the receivers (deleting their streams), the list, then the connection. */
  close (): Promise<void>
}

type Log = RevocationLog & { info (obj: object, msg: string): void }

/** The receivers the config asks for: the issuer's stream (with `client`), then the other transmitters. */
export function signalSources (config: GatewayConfig, list: RevocationList, log: Log): SignalSource[] {
  const common = { revocations: list, entryTtl: config.revocation.sidTtl, pollWait: config.sharedSignals.pollWait, log }
  const sources: SignalSource[] = []
  const { fromIssuer, transmitters } = config.sharedSignals
  if (fromIssuer && config.client !== undefined) {
    sources.push({
      transmitter: config.issuer,
      // optional: an issuer that is no transmitter (another product) or will not give the client
      // ssf.manage is logged once and left alone, rather than making the gateway fail closed.
      receiver: new SignalReceiver({ ...common, issuer: config.issuer, clientId: config.client.id, clientSecret: config.client.secret, appliesTo: [config.issuer], optional: true })
    })
  } else if (fromIssuer && config.redis === undefined) {
    log.warn({}, 'no client configured: revocations made at the issuer (logout there, token revocation, refresh reuse) do not reach this gateway; configure client (Shared Signals) or redis')
  }
  for (const t of transmitters) {
    sources.push({
      transmitter: t.issuer,
      receiver: new SignalReceiver({
        ...common,
        issuer: t.issuer,
        appliesTo: t.appliesTo ?? [config.issuer],
        ...(t.metadataUrl === undefined ? {} : { metadataUrl: t.metadataUrl }),
        ...(t.client === undefined ? {} : { clientId: t.client.id, clientSecret: t.client.secret }),
        ...(t.tokenEndpoint === undefined ? {} : { tokenEndpoint: t.tokenEndpoint }),
        ...(t.bearerToken === undefined ? {} : { bearerToken: t.bearerToken })
      })
    })
  }
  return sources
}

async function closeSources (sources: SignalSource[]): Promise<void> {
  await Promise.all(sources.map(async (s) => { await s.receiver.close() }))
}

/** How long boot waits for the first full copy of the list before serving (and reporting not ready). */
const FIRST_SYNC_MS = 5000

export function createRevocations (config: GatewayConfig, log: Log): RevocationSetup {
  if (config.redis === undefined) {
    const list = new MemoryRevocationList({ log })
    const signals = signalSources(config, list, log)
    return {
      revocations: withSignalSources(list, signals.map((s) => s.receiver)),
      signals,
      redis: undefined,
      check: async () => {},
      start: () => { for (const s of signals) s.receiver.start() },
      close: async () => {
        await closeSources(signals)
        await list.close()
      }
    }
  }
  const redis = createRedisClient(config.redis)
  // Without a listener ioredis prints every failed reconnect; the mirror's staleness tells the rest.
  redis.on('error', (err: Error) => { log.warn({ err: err.message }, 'redis connection error') })
  const list = new RedisRevocationList({ redis, subscriber: () => createSubscriberClient(redis), log })
  const signals = signalSources(config, list, log)
  const redisConfig = config.redis
  return {
    revocations: withSignalSources(list, signals.map((s) => s.receiver)),
    signals,
    redis,
    check: async () => { await checkRedis(redis, redisConfig) },
    start: () => { for (const s of signals) s.receiver.start() },
    close: async () => {
      await closeSources(signals)
      await list.close()
      await redis.quit().catch(() => redis.disconnect())
    }
  }
}

/**
 * At start Redis must answer (else an UnusableStoreError: the CLI prints one line and exits 1,
 * as the issuer does, docs/operations.md "At start"): a gateway started without Redis would know no
 * revocation at all, and a fail-open one would serve every revoked token. Then waits for the
 * first full copy, at most FIRST_SYNC_MS (a long list goes on loading in the background,
 * /readyz not ready meanwhile). Once running, an outage is ridden out per
 * `revocation.maxStaleness` and `failOpen`. The Shared Signals streams start here too, and the
 * same wait covers their catch-up (a new stream replays every retained event).
 */
export async function firstSync (setup: RevocationSetup, log: RevocationLog): Promise<void> {
  await setup.check()
  setup.start()
  const { revocations } = setup
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), FIRST_SYNC_MS) })
  try {
    const result = await Promise.race([revocations.ready().then(() => 'ok' as const), timeout])
    if (result === 'timeout') log.warn({}, 'revocation list not synced yet; continuing in the background')
  } catch (err) {
    log.warn({ err }, 'revocation list sync failed; retrying in the background')
  } finally {
    clearTimeout(timer)
  }
}
