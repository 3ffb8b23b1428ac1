/**
 * The ceiling of bench/gateway.ts: bare @fastify/http-proxy, no auth, no logging. `/api/*` is
 * forwarded to the upstream with the prefix removed, like the gateway's route.
 * Environment: BENCH_PORT, BENCH_UPSTREAM.
 */
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

function required (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is not set`)
  return value
}

const app = Fastify({ logger: false })
// The same upstream pool settings as the gateway's: undici, 256 connections, no pipelining.
await app.register(proxy, { upstream: required('BENCH_UPSTREAM'), prefix: '/api', rewritePrefix: '', undici: { connections: 256, pipelining: 1 } })
app.get('/healthz', async () => ({ status: 'ok' }))
await app.listen({ host: '127.0.0.1', port: Number(required('BENCH_PORT')) })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
