/**
 * The revocation list the gateway reads (and writes on logout): the Redis mirror when Redis is
 * configured, else the in-memory list for one instance. One Redis connection for commands
 * (revocations, rate limits) and one subscriber, owned by the list.
 */
import { MemoryRevocationList, RedisRevocationList, type RevocationList, type RevocationLog } from '@gatehouse/fastify-auth/revocation'
import { checkRedis, createRedisClient, createSubscriberClient, type RedisClient } from '@gatehouse/shared/redis'
import type { GatewayConfig } from './config.ts'

export interface RevocationSetup {
  revocations: RevocationList
  /** The command connection, when Redis is configured (rate limits use it too). */
  redis: RedisClient | undefined
  /** Resolves once Redis answers; an UnusableStoreError naming it otherwise (no-op without Redis). */
  check (): Promise<void>
  /** Closes the list, then the connection. */
  close (): Promise<void>
}

/** How long boot waits for the first full copy of the list before serving (and reporting not ready). */
const FIRST_SYNC_MS = 5000

export function createRevocations (config: GatewayConfig, log: RevocationLog & { info (obj: object, msg: string): void }): RevocationSetup {
  if (config.redis === undefined) {
    const revocations = new MemoryRevocationList({ log })
    return { revocations, redis: undefined, check: async () => {}, close: async () => await revocations.close() }
  }
  const redis = createRedisClient(config.redis)
  // Without a listener ioredis prints every failed reconnect; the mirror's staleness tells the rest.
  redis.on('error', (err: Error) => { log.warn({ err: err.message }, 'redis connection error') })
  const revocations = new RedisRevocationList({ redis, subscriber: () => createSubscriberClient(redis), log })
  const redisConfig = config.redis
  return {
    revocations,
    redis,
    check: async () => { await checkRedis(redis, redisConfig) },
    close: async () => {
      await revocations.close()
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
 * `revocation.maxStaleness` and `failOpen`.
 */
export async function firstSync (setup: RevocationSetup, log: RevocationLog): Promise<void> {
  await setup.check()
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
