/**
 * Chooses the stores: the embedded in-memory default (one process; signing keys in the data
 * directory), or Redis when `redis` is configured (every instance shares all state).
 */
import { resolve } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { MemoryRevocationList, RedisRevocationList } from '@gatehouse/fastify-auth/revocation'
import type { Clock } from '../clock.ts'
import type { IssuerConfig } from '../config.ts'
import type { IssuerStores } from './types.ts'
import { FileKeyStore } from './file-key-store.ts'
import { MemoryRefreshTokenStore } from './memory.ts'
import { MemoryCodeStore } from './memory-codes.ts'
import { MemoryFailureCounter } from './memory-failures.ts'
import { MemoryConsentStore, MemorySessionStore } from './memory-sessions.ts'
import { RedisKeyStore, RedisRefreshTokenStore } from './redis.ts'
import { RedisCodeStore } from './redis-codes.ts'
import { RedisFailureCounter } from './redis-failures.ts'
import { RedisConsentStore, RedisSessionStore } from './redis-sessions.ts'
import { RedisSignalStore } from './redis-signals.ts'
import { FileSignalStore } from './file-signals.ts'
import { checkRedis, createRedisClient, createSubscriberClient, type RedisClient } from './redis-connection.ts'

function watchConnection (client: RedisClient, name: string, log: FastifyBaseLogger): void {
  let down = false
  client.on('error', (err: Error) => {
    if (!down) log.warn({ err: { message: err.message } }, `${name} connection error`)
    down = true
  })
  client.on('ready', () => {
    if (down) log.info(`${name} connection restored`)
    down = false
  })
}

export interface StoreOptions {
  clock: Clock
  log: FastifyBaseLogger
  /** Relative `dataDir` is resolved against this. */
  baseDir: string
}

export async function createStores (config: IssuerConfig, options: StoreOptions): Promise<IssuerStores> {
  if (config.redis === undefined) return createMemoryStores(config, options)
  const redis = createRedisClient(config.redis)
  const subscriber = createSubscriberClient(redis)
  // Without a listener ioredis prints every failed reconnect; log them once per state change.
  watchConnection(redis, 'redis', options.log)
  watchConnection(subscriber, 'redis subscriber', options.log)
  // At start the store must answer (one readable line and exit 1 otherwise, docs/operations.md
  // "At start"); once running, an outage is a 503 with Retry-After and /readyz at 503.
  try {
    await checkRedis(redis, config.redis)
  } catch (err) {
    subscriber.disconnect()
    redis.disconnect()
    throw err
  }
  const revocations = new RedisRevocationList({ redis, subscriber, clock: options.clock, log: options.log })
  const signals = new RedisSignalStore({ redis, subscriber, log: options.log })
  return {
    kind: 'redis',
    keys: new RedisKeyStore(redis),
    refreshTokens: new RedisRefreshTokenStore(redis),
    codes: new RedisCodeStore(redis),
    sessions: new RedisSessionStore(redis),
    consents: new RedisConsentStore(redis),
    authFailures: new RedisFailureCounter(redis),
    revocations,
    signals,
    redis,
    ping: async () => { await redis.ping() },
    close: async () => {
      await signals.close()
      await revocations.close()
      subscriber.disconnect()
      redis.disconnect()
    }
  }
}

export function createMemoryStores (config: Pick<IssuerConfig, 'dataDir'>, options: StoreOptions): IssuerStores {
  options.log.warn('embedded in-memory store: codes, sessions, consents, refresh tokens, revocations and sign-in failure counts live in this process only (signing keys and the Shared Signals event log are kept in dataDir); set REDIS_URL to share state between instances')
  const revocations = new MemoryRevocationList({ clock: options.clock })
  const dataDir = resolve(options.baseDir, config.dataDir)
  // Opened only when used (the Shared Signals transmitter), so a CLI run beside a running
  // issuer never touches its event log.
  const signals = new FileSignalStore(dataDir, options.log)
  return {
    kind: 'memory',
    keys: new FileKeyStore(dataDir),
    refreshTokens: new MemoryRefreshTokenStore(options.clock),
    codes: new MemoryCodeStore(options.clock),
    sessions: new MemorySessionStore(options.clock),
    consents: new MemoryConsentStore(options.clock),
    authFailures: new MemoryFailureCounter(options.clock),
    revocations,
    signals,
    ping: async () => {},
    close: async () => {
      await signals.close()
      await revocations.close()
    }
  }
}
