/**
 * Builds the ioredis client from config: one URL, a Sentinel group or a Cluster. The stores
 * take whatever this returns; every key they use carries a hash tag, so the same code runs on
 * all three.
 */
import { Redis, Cluster, type ClusterNode, type ClusterOptions, type Command, type RedisOptions } from 'ioredis'
import { DEFAULT_COMMAND_TIMEOUT_MS } from './redis-schema.ts'
import { UnusableStoreError } from './store-error.ts'
import { traceRedisCommands } from './tracing.ts'

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
  /** Milliseconds a command may wait, queued or sent, before it fails; default 2000. */
  commandTimeoutMs?: number
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
 * A Redis that stops answering without closing (a paused or overloaded server, a network that
 * drops packets) never fails a retry: only `commandTimeout` ends those waits. ioredis arms it
 * when a command is issued, so it also bounds commands waiting in the offline queue for a
 * reconnect, handshake and pub/sub commands (SUBSCRIBE, the subscriber's PING), and QUIT at
 * shutdown. Gatehouse issues no blocking commands (BLPOP, XREAD BLOCK...), which would need a
 * longer bound. Cluster keeps an offline queue of its own that ioredis does not time out:
 * {@link BoundedCluster} arms the same timer there.
 */
const DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000
}

/**
 * A Cluster whose commands time out from the moment they are issued, also while the cluster
 * itself is not ready (its own offline queue), not only once a node's connection sends them.
 * A command's timer is armed once, so the deadline spans redirections and retries.
 */
class BoundedCluster extends Cluster {
  readonly #startupNodes: ClusterNode[]

  constructor (startupNodes: ClusterNode[], options: ClusterOptions) {
    super(startupNodes, options)
    this.#startupNodes = startupNodes
  }

  override sendCommand (command: Command, stream?: Parameters<Cluster['sendCommand']>[1], node?: unknown): unknown {
    // Read from the options, not a field: the base constructor may send before fields exist.
    const timeoutMs = this.options.redisOptions?.commandTimeout
    if (typeof timeoutMs === 'number') command.setTimeout(timeoutMs)
    return super.sendCommand(command, stream, node)
  }

  /** Same as Cluster's, but bounded too (pub/sub connections are duplicates). */
  override duplicate (overrideStartupNodes: ClusterNode[] = [], overrideOptions: ClusterOptions = {}): Cluster {
    const nodes = overrideStartupNodes.length > 0 ? overrideStartupNodes : this.#startupNodes.slice(0)
    return new BoundedCluster(nodes, { ...this.options, ...overrideOptions })
  }
}

/**
 * Creates the client; it connects at once and reconnects on its own. Attach an 'error'
 * listener (to log): without one ioredis prints every failed reconnect to stderr. While an
 * OpenTelemetry SDK is registered, its commands are traced (tracing.ts).
 */
export function createRedisClient (config: RedisConnectionOptions): RedisClient {
  const chosen = [config.url, config.sentinel, config.cluster].filter((v) => v !== undefined)
  if (chosen.length !== 1) {
    throw new TypeError('redis: set exactly one of url, sentinel, cluster')
  }
  const commandTimeout = config.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  const options: RedisOptions = { ...DEFAULTS, commandTimeout, ...config.options }
  if (config.url !== undefined) return traceRedisCommands(new Redis(config.url, options))
  if (config.sentinel !== undefined) {
    const { name, sentinels } = config.sentinel
    if (sentinels.length === 0) throw new TypeError('redis: sentinel.sentinels is empty')
    return traceRedisCommands(new Redis({ ...options, ...config.sentinel.options, name, sentinels }))
  }
  const { nodes, options: clusterOptions = {} } = config.cluster!
  if (nodes.length === 0) throw new TypeError('redis: cluster.nodes is empty')
  const redisOptions = { ...options, ...(clusterOptions.redisOptions as RedisOptions | undefined) }
  return traceRedisCommands(new BoundedCluster(nodes, { ...clusterOptions, redisOptions } as ClusterOptions))
}

/**
 * A second connection with the same settings, for pub/sub: a subscribed connection can run no
 * other command. ioredis resubscribes it after a reconnect.
 */
export function createSubscriberClient (client: RedisClient): RedisClient {
  return client.duplicate()
}

/** Where `config` points, for messages: hosts and ports only, never a user name or password. */
export function describeRedis (config: RedisConnectionOptions): string {
  const hosts = (nodes: RedisNode[]): string => nodes.map((n) => `${n.host}:${n.port}`).join(', ')
  if (config.sentinel !== undefined) return `sentinel master "${config.sentinel.name}" via ${hosts(config.sentinel.sentinels)}`
  if (config.cluster !== undefined) return `cluster ${hosts(config.cluster.nodes)}`
  try {
    const url = new URL(config.url ?? '')
    return `${url.hostname}:${url.port === '' ? '6379' : url.port}${url.pathname.length > 1 ? url.pathname : ''}`
  } catch {
    return 'the configured url'
  }
}

/**
 * Resolves once `client` answers PING. Otherwise rejects with an {@link UnusableStoreError}
 * naming the Redis and the cause, e.g. `Redis at 127.0.0.1:6390 cannot be used: connect
 * ECONNREFUSED 127.0.0.1:6390`. Bounded by the client's retries and command timeout.
 */
export async function checkRedis (client: RedisClient, config: RedisConnectionOptions): Promise<void> {
  // The first connection error says more than the retry error that ends the PING.
  let cause: Error | undefined
  const onError = (err: Error): void => { cause ??= err }
  client.on('error', onError)
  try {
    await client.ping()
  } catch (err) {
    // Cluster wraps the node's error: "Failed to refresh slots cache" says less than its cause.
    const reason = (cause as { lastNodeError?: Error } | undefined)?.lastNodeError ?? cause ?? (err as Error)
    const timeoutMs = client instanceof Cluster ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout
    const message = reason.message === 'Command timed out' ? `no answer within ${timeoutMs ?? '?'} ms (redis.commandTimeoutMs)` : reason.message
    throw new UnusableStoreError(`Redis at ${describeRedis(config)} cannot be used: ${message.split('\n')[0] ?? ''}`)
  } finally {
    client.off('error', onError)
  }
}
