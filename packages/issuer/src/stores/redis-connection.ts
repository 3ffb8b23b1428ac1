/** The Redis connection lives in @gatehouse/shared (the gateway uses it too). */
export { checkRedis, createRedisClient, createSubscriberClient, type RedisClient, type RedisConnectionOptions, type RedisNode } from '@gatehouse/shared/redis'
