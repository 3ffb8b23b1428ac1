/**
 * The revocation list the gateway reads (and writes on logout): the Redis mirror when Redis is
 * configured, else the in-memory list for one instance. One Redis connection for commands
 * (revocations, rate limits) and one subscriber, owned by the list.
 */
import { MemoryRevocationList, RedisRevocationList, type RevocationList, type RevocationLog } from '@gatehouse/fastify-auth/revocation'
import { createRedisClient, createSubscriberClient, type RedisClient } from '@gatehouse/shared/redis'
import type { GatewayConfig } from './config.ts'

export interface RevocationSetup {
  revocations: RevocationList
  /** The command connection, when Redis is configured (rate limits use it too). */
  redis: RedisClient | undefined
  /** Closes the list, then the connection. */
  close (): Promise<void>
}

/** How long boot waits for the first full copy of the list before serving (and reporting not ready). */
const FIRST_SYNC_MS = 5000

export function createRevocations (config: GatewayConfig, log: RevocationLog & { info (obj: object, msg: string): void }): RevocationSetup {
  if (config.redis === undefined) {
    const revocations = new MemoryRevocationList({ log })
    return { revocations, redis: undefined, close: async () => await revocations.close() }
  }
  const redis = createRedisClient(config.redis)
  // Without a listener ioredis prints every failed reconnect; the mirror's staleness tells the rest.
  redis.on('error', (err: Error) => { log.warn({ err: err.message }, 'redis connection error') })
  const revocations = new RedisRevocationList({ redis, subscriber: () => createSubscriberClient(redis), log })
  return {
    revocations,
    redis,
    close: async () => {
      await revocations.close()
      await redis.quit().catch(() => redis.disconnect())
    }
  }
}

/**
 * Waits for the first sync, at most FIRST_SYNC_MS: a gateway whose Redis is down still starts
 * (its /readyz says not ready, and tokens are refused or served per `revocation.failOpen`).
 */
export async function firstSync (revocations: RevocationList, log: RevocationLog): Promise<void> {
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
