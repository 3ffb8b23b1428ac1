/** The `redis` section shared by the issuer's and the gateway's YAML (TypeBox). */
import { Type } from '@sinclair/typebox'

const Strict = { additionalProperties: false } as const

/**
 * How long one Redis command may take, queued or sent, before it fails. Redis answers in well
 * under a millisecond; a command still waiting after this long means a stalled server, a lost
 * network or a failover, and the caller must hear so while the request can still be answered.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000

const HostPort = Type.Object({
  host: Type.String({ description: 'Host name or address.' }),
  port: Type.Integer({ minimum: 1, maximum: 65535, description: 'TCP port.' })
}, Strict)

const PassThrough = Type.Object({}, {
  additionalProperties: true,
  description: 'Passed through to ioredis unchanged.'
})

export const RedisSchema = Type.Object({
  url: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Single node, `redis://host:port/db` (the `REDIS_URL` environment variable sets this).' })),
  sentinel: Type.Optional(Type.Object({
    name: Type.String({ description: 'Name of the monitored master.' }),
    sentinels: Type.Array(HostPort, { minItems: 1, description: 'Sentinel addresses.' }),
    options: Type.Optional(PassThrough)
  }, { ...Strict, description: 'Redis Sentinel.' })),
  cluster: Type.Optional(Type.Object({
    nodes: Type.Array(HostPort, { minItems: 1, description: 'Seed nodes of the cluster.' }),
    options: Type.Optional(PassThrough)
  }, { ...Strict, description: 'Redis Cluster.' })),
  commandTimeoutMs: Type.Optional(Type.Integer({
    minimum: 1,
    default: DEFAULT_COMMAND_TIMEOUT_MS,
    description: 'Milliseconds a Redis command may wait (for a reply, or for a connection while reconnecting; pub/sub and Cluster included) before it fails. Past it the issuer answers 503 `temporarily_unavailable` with `Retry-After`, the gateway serves from its revocation mirror and skips Redis rate limits, and a logout answers 503.'
  })),
  options: Type.Optional(PassThrough)
}, { ...Strict, description: 'Shared state in Redis (codes, refresh tokens, sessions, signing keys, revocation list, rate limits). Exactly one of url, sentinel, cluster.' })
