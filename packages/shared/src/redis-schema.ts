/** The `redis` section shared by the issuer's and the gateway's YAML (TypeBox). */
import { Type } from '@sinclair/typebox'

const Strict = { additionalProperties: false } as const

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
  options: Type.Optional(PassThrough)
}, { ...Strict, description: 'Shared state in Redis (codes, refresh tokens, sessions, signing keys, revocation list, rate limits). Exactly one of url, sentinel, cluster.' })
