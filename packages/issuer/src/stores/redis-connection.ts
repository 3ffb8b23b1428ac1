/** The Redis connection lives in @gatehouse/shared (the gateway uses it too). */
export { createRedisClient, createSubscriberClient, type RedisClient, type RedisConnectionOptions, type RedisNode } from '@gatehouse/shared/redis'
