/** `@gatehouse/fastify-auth/revocation`: the revocation-list contract and its two stores. */
export type { Clock, KeyChange, RevocationEntry, RevocationList, RevocationLog } from './types.ts'
export { MemoryRevocationList, type MemoryRevocationListOptions } from './memory.ts'
export { RedisRevocationList, type RedisRevocationListOptions } from './redis.ts'
