/**
 * Builds the ioredis client from config: one URL, a Sentinel group or a Cluster. The stores
 * take whatever this returns; every key they use carries a hash tag, so the same code runs on
 * all three.
 */
import { Redis, Cluster, type ClusterOptions, type RedisOptions } from 'ioredis'

/** A standalone/Sentinel client or a Cluster client. */
export type RedisClient = Redis | Cluster

export interface RedisNode {
  host: string
  port: number
}

/** Exactly one of `url`, `sentinel`, `cluster`. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url?: string
  sentinel?: {
    /** The master group name the sentinels monitor. */
    name: string
    sentinels: RedisNode[]
    /** ioredis Sentinel options (`sentinelPassword`, `role`, ...), merged over `options`. */
    options?: Record<string, unknown>
  }
  cluster?: {
    /** Startup nodes; the rest of the cluster is discovered from them. */
    nodes: RedisNode[]
    /** ioredis `ClusterOptions`; its `redisOptions` are merged over `options`. */
    options?: Record<string, unknown>
  }
  /** ioredis `RedisOptions` for every connection (password, tls, ...), over the defaults. */
  options?: Record<string, unknown>
}

/**
 * Fail fast rather than hang. ioredis' default (20 retries per request, each waiting for a
 * reconnect attempt up to 2 s apart) holds a token request for tens of seconds while Redis is
 * down, piling up sockets. With one retry the request fails once two reconnect attempts have
 * failed: milliseconds when the port is closed, about twice the connect timeout when the host
 * does not answer, and the client gets a prompt 5xx. One retry still covers a blip (a
 * failover, an idle connection reset). A reachable Redis connects in milliseconds, so a 2 s
 * connect timeout is generous.
 *
 * On Cluster, `maxRetriesPerRequest` applies per node; a command issued while no node is
 * reachable waits in the cluster's offline queue until it reconnects (ioredis has no per-request
 * limit there), so readiness should rely on `ping()` with its own timeout.
 */
const DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000
}

/**
 * Creates the client; it connects at once and reconnects on its own. Attach an 'error'
 * listener (to log): without one ioredis prints every failed reconnect to stderr.
 */
export function createRedisClient (config: RedisConnectionOptions): RedisClient {
  const chosen = [config.url, config.sentinel, config.cluster].filter((v) => v !== undefined)
  if (chosen.length !== 1) {
    throw new TypeError('redis: set exactly one of url, sentinel, cluster')
  }
  const options: RedisOptions = { ...DEFAULTS, ...config.options }
  if (config.url !== undefined) return new Redis(config.url, options)
  if (config.sentinel !== undefined) {
    const { name, sentinels } = config.sentinel
    if (sentinels.length === 0) throw new TypeError('redis: sentinel.sentinels is empty')
    return new Redis({ ...options, ...config.sentinel.options, name, sentinels })
  }
  const { nodes, options: clusterOptions = {} } = config.cluster!
  if (nodes.length === 0) throw new TypeError('redis: cluster.nodes is empty')
  const redisOptions = { ...options, ...(clusterOptions.redisOptions as RedisOptions | undefined) }
  return new Cluster(nodes, { ...clusterOptions, redisOptions } as ClusterOptions)
}

/**
 * A second connection with the same settings, for pub/sub: a subscribed connection can run no
 * other command. ioredis resubscribes it after a reconnect.
 */
export function createSubscriberClient (client: RedisClient): RedisClient {
  return client.duplicate()
}
