/**
 * `redis.commandTimeoutMs` bounds every command the services send, on a real redis-server
 * paused with SIGSTOP (connections stay open, nothing answers) and on a Redis that is not
 * there at all: sent commands, pub/sub, commands waiting for a reconnect, and Cluster's own
 * offline queue. Each check runs while Redis is still paused or gone, so a command that waited
 * for it would never settle; the race against a generous bound then fails the check.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { DEFAULT_COMMAND_TIMEOUT_MS } from '../src/redis-schema.ts'
import { checkRedis, createRedisClient, createSubscriberClient, describeRedis, type RedisClient } from '../src/redis-connection.ts'
import { freePort, startRedis } from '@gatehouse/test-kit/redis-harness'
import { UnusableStoreError } from '../src/store-error.ts'

const TIMEOUT_MS = 200
/** Far above the timeout: only a command that waits for Redis gets here. */
const HANG_MS = 20 * TIMEOUT_MS

/** How `promise` settles, or 'still waiting' after HANG_MS. */
async function outcome (promise: Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('still waiting'), HANG_MS) })
  try {
    return await Promise.race([promise.then((value) => `resolved ${String(value)}`, (err: Error) => `rejected: ${err.message}`), hang])
  } finally {
    clearTimeout(timer)
  }
}

function track (t: Test, client: RedisClient): RedisClient {
  client.on('error', () => { /* reconnect noise */ })
  t.teardown(() => client.disconnect())
  return client
}

t.test('the timeout: 2000 ms by default, commandTimeoutMs sets it', async (t) => {
  t.equal(DEFAULT_COMMAND_TIMEOUT_MS, 2000)
  const port = await freePort()
  const plain = track(t, createRedisClient({ url: `redis://127.0.0.1:${port}` })) as Redis
  t.equal(plain.options.commandTimeout, 2000)
  const set = track(t, createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 750 })) as Redis
  t.equal(set.options.commandTimeout, 750)
})

t.test('a paused Redis: commands, pub/sub and QUIT give up; it serves again once resumed', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.stop() })
  const client = track(t, createRedisClient({ url: redis.url, commandTimeoutMs: TIMEOUT_MS }))
  const subscriber = track(t, createSubscriberClient(client))
  const closing = track(t, createRedisClient({ url: redis.url, commandTimeoutMs: TIMEOUT_MS }))
  await subscriber.subscribe('gatehouse:test')
  t.equal(await client.ping(), 'PONG')
  t.equal(await closing.ping(), 'PONG')

  await redis.pause()
  t.equal(await outcome(client.get('k')), 'rejected: Command timed out', 'a command')
  t.equal(await outcome(client.eval('return 1', 0)), 'rejected: Command timed out', 'a script')
  t.equal(await outcome(subscriber.ping()), 'rejected: Command timed out', 'the subscriber\'s PING')
  t.equal(await outcome(subscriber.subscribe('gatehouse:other')), 'rejected: Command timed out', 'a SUBSCRIBE')
  t.equal(await outcome(closing.quit()), 'rejected: Command timed out', 'QUIT at shutdown')
  const late = track(t, createRedisClient({ url: redis.url, commandTimeoutMs: TIMEOUT_MS }))
  t.equal(await outcome(late.ping()), 'rejected: Command timed out', 'a new connection (the kernel accepts it, nobody answers)')
  t.ok(redis.isPaused, 'all while Redis was paused')

  redis.resume()
  t.equal(await client.ping(), 'PONG', 'the same connection serves again')
  t.equal(await client.publish('gatehouse:test', 'x'), 1, 'and the subscriber is still subscribed')
})

t.test('no Redis: a command waiting for a reconnect gives up too', async (t) => {
  const port = await freePort()
  // No retry limit (as an `options` override could set): only the timeout ends the wait.
  const client = track(t, createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: TIMEOUT_MS, options: { maxRetriesPerRequest: null } }))
  t.equal(await outcome(client.get('k')), 'rejected: Command timed out')
})

t.test('Cluster: a paused node, and no node at all (the cluster\'s own offline queue)', async (t) => {
  const node = await startRedis({
    // Without an announced IP a lone node lists itself as "" in CLUSTER SLOTS.
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(t.testdir(), 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1']
  })
  t.teardown(async () => { await node.stop() })
  const admin = new Redis(node.url)
  t.teardown(() => admin.disconnect())
  await admin.cluster('ADDSLOTSRANGE', 0, 16383)
  const deadline = Date.now() + 10_000
  while (!(await admin.cluster('INFO') as string).includes('cluster_state:ok')) {
    if (Date.now() > deadline) throw new Error('the one-node cluster never reached cluster_state:ok')
    await sleep(20)
  }

  const cluster = track(t, createRedisClient({ cluster: { nodes: [{ host: '127.0.0.1', port: node.port }] }, commandTimeoutMs: TIMEOUT_MS }))
  await cluster.set('{t}k', 'v')
  await node.pause()
  t.equal(await outcome(cluster.get('{t}k')), 'rejected: Command timed out', 'a command to the paused node')
  node.resume()
  t.equal(await cluster.get('{t}k'), 'v', 'served again once resumed')

  const nowhere = { cluster: { nodes: [{ host: '127.0.0.1', port: await freePort() }] }, commandTimeoutMs: TIMEOUT_MS }
  const lost = track(t, createRedisClient(nowhere))
  t.equal(await outcome(lost.get('{t}k')), 'rejected: Command timed out', 'a command queued while no node is reachable')
  const subscriber = track(t, createSubscriberClient(lost))
  t.equal(await outcome(subscriber.subscribe('gatehouse:test')), 'rejected: Command timed out', 'its pub/sub duplicate too')
})

t.test('checkRedis names the Redis and the cause, never a credential', async (t) => {
  const port = await freePort()
  const config = { url: `redis://admin:hunter2-secret@127.0.0.1:${port}/2`, commandTimeoutMs: TIMEOUT_MS }
  t.equal(describeRedis(config), `127.0.0.1:${port}/2`)
  t.equal(describeRedis({ sentinel: { name: 'main', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }] } }), 'sentinel master "main" via s1:26379, s2:26379')
  t.equal(describeRedis({ cluster: { nodes: [{ host: 'r1', port: 7000 }] } }), 'cluster r1:7000')
  const client = track(t, createRedisClient(config))
  const err = await checkRedis(client, config).then(() => undefined, (e: unknown) => e)
  t.type(err, UnusableStoreError)
  t.match((err as Error).message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${port}/2 cannot be used: connect ECONNREFUSED`))
  t.notMatch((err as Error).message, 'hunter2')
})
